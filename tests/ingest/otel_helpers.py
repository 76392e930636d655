"""Helpers of the `callmeter otel` tests: the receiver in a thread, the instrumented app in a
process of its own (tests/otel_sender.py), the ledger read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from upstream import ThreadedServer

from ingest.loader import load_spool
from ledger.config import Settings, ledger_home, spool_dir
from ledger.connect import open_ledger
from ledger.keys import SECRET_FILE_NAME, KeyFingerprinter, load_or_create_secret

TESTS = Path(__file__).resolve().parents[1]
SENDER = TESTS / "otel_sender.py"


class OtelServer(ThreadedServer):
    """The receiver of ``callmeter otel --db db`` on a free loopback port, in a thread."""

    name = "callmeter otel"

    def __init__(self, db, spool_folder: Path | None = None, **settings) -> None:
        from ingest.otel import build_receiver, receiver_config

        self.db = str(db)
        self.spool_folder = spool_folder or spool_dir(self.db)
        secret = load_or_create_secret(ledger_home(self.db) / SECRET_FILE_NAME)
        self.app = build_receiver(self.spool_folder, KeyFingerprinter(secret),
                                  Settings(db=self.db, **settings))
        self._serve(receiver_config(self.app, "127.0.0.1", 0))

    @property
    def traces_url(self) -> str:
        return self.origin + "/v1/traces"

    def flush(self) -> None:
        self.app.spool.close()

    def rows(self, sql: str = "SELECT * FROM calls ORDER BY started_at") -> list[dict]:
        """Close the current segment, load the spool, return the ledger's rows."""
        self.flush()
        return ledger(self.db, sql)


def send(instrumentation: str, endpoint: str, base_url: str, *, exporter: str = "proto",
         compression: str | None = None, calls: str = "scenario") -> list[dict]:
    """Run the instrumented app once; what its SDK saw for each call."""
    args = [sys.executable, str(SENDER), "--instrumentation", instrumentation,
            "--exporter", exporter, "--endpoint", endpoint, "--base-url", base_url,
            "--calls", calls]
    if compression:
        args += ["--compression", compression]
    done = subprocess.run(args, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise AssertionError(f"sender exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])["calls"]


def ledger(db: str | Path, sql: str = "SELECT * FROM priced_calls ORDER BY started_at",
           params: list | None = None) -> list[dict]:
    """Load the spool beside ``db`` and return rows of ``sql`` as dicts."""
    conn = open_ledger(str(db))
    try:
        load_spool(conn, spool_dir(str(db)))
        cur = conn.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()
