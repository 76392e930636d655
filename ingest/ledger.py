"""Opening the ledger: one DuckDB connection, migrated, with a clear answer when it is held.

Ownership (DuckDB lets one process hold a file read-write, and then no other process can open it
at all): whichever process opens the ledger first owns it. The proxy never opens it; it appends
to the spool. ``callmeter dashboard`` owns it while it runs and loads the spool on every refresh.
``callmeter load`` and ``import`` try to open it; when another process holds it, ``load`` says who
does (that process loads the spool itself) and ``import`` writes its normalised rows to the spool
for the owner to load. Read-only commands (``report``, ``recommend``) say who holds it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import duckdb

from .config import is_lake_target
from .errors import LedgerError, LedgerLocked
from .migrations import migrate

_LOCK_RE = re.compile(r"Conflicting lock is held in (?P<prog>.*?) \(PID (?P<pid>\d+)\)")


def _process_name(pid: int, fallback: str) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return fallback
    parts = [p.decode(errors="replace") for p in raw.split(b"\0") if p]
    for i, part in enumerate(parts):
        if (part.endswith("callmeter") or part == "callmeter.cli") and i + 1 < len(parts):
            return "callmeter " + parts[i + 1]
    return " ".join(parts[:3]) or fallback


def locked_error(path: str, exc: Exception) -> LedgerLocked | None:
    """Translate DuckDB's lock error into :class:`LedgerLocked` naming the holder."""
    m = _LOCK_RE.search(str(exc))
    if not m:
        return None
    pid = int(m.group("pid"))
    return LedgerLocked(path, _process_name(pid, m.group("prog")), pid)


def connect_file(path: str, *, read_only: bool = False, wait_seconds: float = 0.0
                 ) -> duckdb.DuckDBPyConnection:
    """Open a ledger file, retrying briefly when it is held; raise LedgerLocked otherwise."""
    p = Path(path).expanduser()
    if not read_only:
        p.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return duckdb.connect(str(p), read_only=read_only)
        except duckdb.IOException as exc:
            locked = locked_error(str(p), exc)
            if locked is None:
                raise LedgerError(f"cannot open the ledger {p}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise locked from None
            time.sleep(0.1)


def open_ledger(db: str, *, read_only: bool = False, wait_seconds: float = 0.0,
                data_path: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open (and migrate) the ledger named by ``--db``: a DuckDB file or a DuckLake target."""
    if is_lake_target(db):
        from .lake import connect_lake  # optional dependency: the `lake` extra

        conn = connect_lake(db, data_path=data_path, read_only=read_only)
    else:
        conn = connect_file(db, read_only=read_only, wait_seconds=wait_seconds)
    if not read_only:
        try:
            migrate(conn, where=db)
        except BaseException:
            conn.close()  # a refused ledger must not stay held by this process
            raise
    return conn
