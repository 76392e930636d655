"""Opening the ledger: one DuckDB connection, migrated, with a clear answer when it is held.

Ownership (DuckDB lets one process hold a file read-write, and then no other process can open it
at all): whichever process opens the ledger first owns it. The proxy never opens it; it appends
to the spool. ``callmeter dashboard`` owns it while it runs and loads the spool on every refresh.
``callmeter load`` and ``import`` try to open it; when another process holds it, ``load`` says who
does and ``import`` writes its normalised rows to the spool; both then say what will happen to
the spool (:func:`spool_fate`): only a running ``callmeter dashboard`` loads it by itself.
Read-only commands (``report``, ``recommend``) say who holds it.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import time
from pathlib import Path
from typing import cast

import duckdb

from .config import is_lake_target
from .errors import LedgerError, LedgerLocked
from .migrations import check_complete, migrate
from .sql import sql_literal

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


_FLOCK = "hhqqi"  # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid


def _held_read_only(path: str, message: str) -> bool:
    """Whether the holder has the file read-only: DuckDB takes a shared (read) fcntl lock for
    read-only connections and an exclusive one otherwise; F_GETLK says which conflicts. DuckDB
    itself adds "you would be able to open this database in read-only mode" then."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return "read-only mode" in message
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        kind = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))[0]
    except OSError:
        return "read-only mode" in message
    finally:
        os.close(fd)
    return bool(kind == fcntl.F_RDLCK)


def locked_error(path: str, exc: Exception) -> LedgerLocked | None:
    """Translate DuckDB's lock error into :class:`LedgerLocked` naming the holder and how."""
    m = _LOCK_RE.search(str(exc))
    if not m:
        return None
    pid = int(m.group("pid"))
    return LedgerLocked(path, _process_name(pid, m.group("prog")), pid,
                        read_only=_held_read_only(path, str(exc)))


def spool_fate(locked: LedgerLocked, spool: Path) -> str:
    """What will happen to the spool's segments while ``locked.holder`` holds the ledger."""
    if not locked.read_only and locked.holder == "callmeter dashboard":
        return ("callmeter dashboard loads the spool by itself, at most a second after one of "
                "its pages is next opened or refreshed")
    later = (f"the segments wait in {spool} (nothing is lost) until `callmeter load` runs "
             "while the ledger is free, or a `callmeter dashboard` owns it")
    if locked.read_only:
        return f"a read-only holder never loads the spool: {later}"
    if (locked.holder or "").startswith("callmeter "):
        return (f"{locked.holder} does not load segments written after it started: {later}; "
                "run `callmeter load` again once it has finished")
    return f"that process does not load the spool: {later}"


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
                data_path: str | None = None,
                memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open (and migrate) the ledger named by ``--db``: a DuckDB file or a DuckLake target.

    Refused (nothing opened or created) when a layer above the core never registered its
    migrations: see :func:`ledger.migrations.check_complete`. ``memory_limit`` (DuckDB's
    setting) applies before the migrations: a migration that rebuilds the rollups of 100M
    calls peaked at 5.7 GB in the dashboard's process before its 1 GB limit was set.
    """
    check_complete()
    if is_lake_target(db):
        from .lake import connect_lake  # optional dependency: the `lake` extra

        # a LakeConnection has every DuckDBPyConnection method callmeter calls (it delegates
        # the rest), so the code above it is written once, for DuckDB's connection type
        conn = cast(duckdb.DuckDBPyConnection,
                    connect_lake(db, data_path=data_path, read_only=read_only))
    else:
        conn = connect_file(db, read_only=read_only, wait_seconds=wait_seconds)
    if memory_limit is not None:
        conn.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
    if not read_only:
        try:
            migrate(conn, where=db)
        except BaseException:
            conn.close()  # a refused ledger must not stay held by this process
            raise
    return conn
