"""Shared helpers for the importer tests: import a sample into a fresh ledger and read it back."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingest.importers import ImportOptions
from ingest.imports import import_paths
from ledger.connect import open_ledger
from ledger.keys import KeyFingerprinter

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"


def options(**kw) -> ImportOptions:
    return ImportOptions(fingerprinter=KeyFingerprinter(b"test-secret-0123456789abcdef"), **kw)


def sample(name: str, tmp_path: Path) -> Path:
    """A copy of a sample file (tests may corrupt or extend it)."""
    dst = tmp_path / name
    shutil.copy(SAMPLES / name, dst)
    return dst


def run_import(db: Path, path: Path, fmt: str = "auto", **kw):
    results, locked = import_paths(str(db), [path], fmt, options(**kw))
    assert locked is None
    return results[0]


def rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    conn = open_ledger(str(db))
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def calls(db: Path, columns: str, order: str = "started_at, call_id") -> list[tuple]:
    return rows(db, f"SELECT {columns} FROM calls ORDER BY {order}")


@contextmanager
def held_ledger(db: Path) -> Iterator[None]:
    """Another process holds the ledger file read-write while the block runs."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time, duckdb; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(60)", str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.terminate()
        holder.wait(10)
