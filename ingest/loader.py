"""``callmeter load``: bring finished spool segments into the ledger, in bulk, idempotently.

Segments are read by DuckDB's own JSON reader in one statement and inserted with an anti-join
on ``call_id`` inside a transaction; only after the commit are the files removed (or archived).
A crash at any point leaves the files in place, and the next load inserts nothing twice.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ledger import (
    ADJUSTMENTS_SUFFIX,
    CLOSED_SUFFIX,
    OPEN_SUFFIX,
    adjustment_columns_struct,
    calls_added,
    duckdb_columns_struct,
    id_census,
    insert_new_adjustments,
    insert_new_calls,
    lock_segment,
    segment_pid,
    sql_list,
)
from ledger.insert import insert_calls_then_drop_repeats, is_file_ledger

from .normalise import normalised_select


@dataclass
class LoadResult:
    segments: int = 0
    rows: int = 0
    inserted: int = 0
    duplicates: int = 0
    adjustments: int = 0
    set_aside: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"loaded {self.segments} segment(s): {self.rows} record(s), "
                f"{self.inserted} new, {self.duplicates} already in the ledger")
        if self.adjustments:
            text += f", {self.adjustments} new adjustment(s)"
        for note in self.set_aside:
            text += f"\n  set aside: {note}"
        return text


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


EMPTY_GRACE_SECONDS = 10.0  # a writer locks its new segment microseconds after creating it


def _writer_gone(path: Path, fd: int) -> bool:
    """True when nothing writes ``path`` any more: its writer's lock is free (we hold it now)
    and the name still is that file; for an older writer's segment, also its PID is gone."""
    try:
        if not lock_segment(fd):
            return False
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            return False  # closed and replaced meanwhile
    except OSError:  # gone meanwhile, or a file system without locks: never take it
        return False
    pid = segment_pid(path)  # older writers held no lock: their PID is all there is
    if pid is not None and (pid == os.getpid() or _pid_alive(pid)):
        return False
    size = os.fstat(fd).st_size
    return size > 0 or time.time() - os.fstat(fd).st_mtime > EMPTY_GRACE_SECONDS


def recover_abandoned(folder: Path, result: LoadResult) -> None:
    """Close segments whose writer died; keep every complete line, set aside a torn tail."""
    for path in sorted(folder.glob("*" + OPEN_SUFFIX)):
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue  # closed by its writer since the listing
        try:
            if _writer_gone(path, fd):
                _close_abandoned(folder, path, fd, result)
        finally:
            os.close(fd)  # releases the lock, after the rename


def _close_abandoned(folder: Path, path: Path, fd: int, result: LoadResult) -> None:
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut < len(data):
        torn = folder / "torn"
        torn.mkdir(exist_ok=True)
        (torn / (path.name + ".tail")).write_bytes(data[cut:])
        os.ftruncate(fd, cut)
        result.set_aside.append(
            f"{path.name}: half a last line ({len(data) - cut} bytes) left by a crash, "
            f"kept in {torn.name}/{path.name}.tail"
        )
    if cut:
        path.rename(path.with_name(path.name[: -len(".open")]))
    else:
        path.unlink()


def finished_segments(folder: Path) -> list[Path]:
    return sorted(folder.glob("*" + CLOSED_SUFFIX))


def adjustment_segments(folder: Path) -> list[Path]:
    return sorted(folder.glob("*" + ADJUSTMENTS_SUFFIX))


def _load_adjustments(conn: duckdb.DuckDBPyConnection, folder: Path, keep: bool,
                      result: LoadResult) -> None:
    """Adjustment segments (written by an import while another process held the ledger)."""
    paths = adjustment_segments(folder)
    if not paths:
        return
    src = (f"SELECT * FROM read_json({sql_list(paths)}, format='newline_delimited', "
           f"columns={adjustment_columns_struct()})")
    conn.execute("BEGIN TRANSACTION")
    try:
        result.adjustments += insert_new_adjustments(conn, src)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    result.segments += len(paths)
    _retire(paths, folder, keep)


def raw_segments_sql(paths: list[Path]) -> str:
    """The segments as written: every contract column, nothing derived or defaulted."""
    return (f"SELECT * FROM read_json({sql_list(paths)}, format='newline_delimited', "
            f"columns={duckdb_columns_struct()})")


def segments_sql(paths: list[Path]) -> str:
    return normalised_select(raw_segments_sql(paths))


def _insert_batch(conn: duckdb.DuckDBPyConnection, chunk: list[Path],
                  sql: str) -> tuple[int, int]:
    """(records read, calls inserted) for one batch of segments, inside the caller's transaction.

    A DuckDB file: one pass, every record inserted, then the repeats (ids the ledger held, or
    repeated within the batch) deleted when there are any. A lake (whose row ids are not the
    file's) keeps the census of the raw ids, and the per-id window only when an id repeats or
    is missing.
    """
    if is_file_ledger(conn):
        return insert_calls_then_drop_repeats(conn, sql)
    rows, clean = id_census(conn, raw_segments_sql(chunk))
    return rows, insert_new_calls(conn, sql, dedupe_within=not clean)


def load_spool(conn: duckdb.DuckDBPyConnection, folder: Path, *, keep: bool = False,
               batch: int = 256) -> LoadResult:
    """Load every finished segment of ``folder`` into the ledger behind ``conn``."""
    folder = Path(folder)
    result = LoadResult()
    if not folder.exists():
        return result
    recover_abandoned(folder, result)
    _load_adjustments(conn, folder, keep, result)
    segments = finished_segments(folder)
    for start in range(0, len(segments), batch):
        chunk = segments[start:start + batch]
        sql = segments_sql(chunk)
        conn.execute("BEGIN TRANSACTION")
        try:
            rows, inserted = _insert_batch(conn, chunk, sql)
            now = datetime.now(UTC)
            conn.executemany("INSERT INTO spool_loads VALUES (?, ?, ?, ?)",
                             [[p.name, now, None, None] for p in chunk])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        result.segments += len(chunk)
        result.rows += rows
        result.inserted += inserted
        result.duplicates += rows - inserted
        _retire(chunk, folder, keep)
    if result.inserted:
        calls_added(conn)  # registered steps, e.g. pricing's rollup append (ledger.hooks)
    return result


def _retire(paths: list[Path], folder: Path, keep: bool) -> None:
    if keep:
        archive = folder / "loaded"
        archive.mkdir(exist_ok=True)
        for p in paths:
            shutil.move(str(p), archive / p.name)
    else:
        for p in paths:
            p.unlink(missing_ok=True)


def spool_backlog(folder: Path) -> dict[str, Any]:
    """Segments waiting to be loaded and the newest record time, for the Data page."""
    folder = Path(folder)
    if not folder.exists():
        return {"finished": 0, "open": 0, "bytes": 0, "last_write": None}
    closed = finished_segments(folder)
    opened = list(folder.glob("*" + OPEN_SUFFIX))
    files = closed + opened
    last = max((p.stat().st_mtime for p in files), default=None)
    return {
        "finished": len(closed),
        "open": len(opened),
        "bytes": sum(p.stat().st_size for p in files),
        "last_write": datetime.fromtimestamp(last, UTC) if last else None,
    }
