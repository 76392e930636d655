"""Paths DuckDB takes as literal text (COPY … TO, read_json / read_csv file lists, ATTACH) go
through ledger.sql_literal: a --db path with a quote and a space works everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
from importers_helpers import held_ledger

ROOT = Path(__file__).resolve().parents[2]
CSV = "started_at,model,input_tokens,output_tokens\n2025-03-01T10:00:00Z,gpt-4o,100,20\n"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callmeter.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_a_db_path_with_a_quote_and_a_space(tmp_path):
    folder = tmp_path / "it's a folder"
    folder.mkdir()
    db = folder / "o'neil ledger.duckdb"
    logs = folder / "calls it's.csv"
    logs.write_text(CSV)
    done = _cli("load", "--db", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # held by another process: the import hands its rows over as a spool segment (COPY … TO)
    with held_ledger(db):
        done = _cli("import", str(logs), "--db", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "queued for the ledger's owner 1" in done.stdout
    # the loader reads that segment back (read_json over a quoted file list)
    done = _cli("load", "--db", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 new" in done.stdout
    # and a direct import reads the CSV by its quoted name
    done = _cli("import", str(logs), "--db", str(db), "--format", "csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "duplicate 1" in done.stdout
    conn = duckdb.connect(str(db), read_only=True)
    assert conn.execute("SELECT count(*), sum(input_tokens) FROM calls").fetchone() == (1, 100)
    conn.close()
