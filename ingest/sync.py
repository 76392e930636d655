"""``callmeter sync``: pull the account's consumption log from the platform, incrementally.

A run reads ``GET /api/status`` (the platform's ``quota_per_unit``: quota units per US$1, and
the currency its console displays), then the log of ``GET /api/log/self`` for log types 2
(consume), 5 (error) and 6 (refund) over a frozen window ``[start, end]``: ``end`` is fixed a
second before the run starts, so rows arriving during the run are the next run's. How a window
is read so that no row is missed or doubled, whichever new-api / one-api build answers, is in
:mod:`ingest.log_pages`.

The next run starts ``overlap`` seconds before this run's ``end``: late rows are caught, and the
rows fetched twice are dropped by their idempotent ``call_id``. Where a run stopped is kept in a
small JSON file beside the ledger, not in the ledger, so a sync works (through the spool) while
another process owns the ledger. Rows go through the ``newapi`` importer unchanged, so a synced
row and the same row in a console export (admin or user route) get the same ``call_id``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from ledger import (
    CallmeterError,
    Settings,
    fingerprinter_for,
    ledger_companion,
    rejected_dir,
)

from .importers import FORMATS, ImportFormat, ImportOptions, ImportResult, import_file
from .importers.base import Handoff
from .imports import open_for_import
from .log_pages import LOG_PATH, PAGE_SIZE, LogWalker, Progress, WalkStats
from .platform import (
    PlatformClient,
    PlatformError,
    console_base,
    load_token,
    quota_unit,
    read_json_object,
)

__all__ = ["LOG_PATH", "SyncResult", "fetch_slices", "fetch_window", "last_sync", "read_state",
           "state_file", "sync_now"]

LOG_TYPES = (2, 5, 6)      # 2 consume, 5 error (one-api: channel test), 6 refund
BATCH_ROWS = 5000          # rows per file handed to the importer (whole slices only)
FIRST_START = 1            # "everything": 0 would let some forks default to the last 7 days


@dataclass
class SyncResult:
    """One run: the window asked for, what came back, and what reached the ledger."""

    platform: str
    user_id: str | None
    window_start: int
    window_end: int
    started_at: str = ""
    finished_at: str = ""
    status: str = "running"          # ok | error
    error: str = ""                  # exception name when status is error
    message: str = ""
    pages: int = 0
    passes: int = 0
    requests: int = 0
    retries: int = 0
    read: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped: int = 0
    rejected: int = 0
    queued: int = 0
    expected: int = 0
    adjustments: int = 0
    quota_per_unit: str = ""         # quota units per US$1 the charges were computed with
    notes: list[str] = field(default_factory=list)
    rejected_files: list[str] = field(default_factory=list)

    @property
    def rows_added(self) -> int:
        return self.imported + self.queued + self.adjustments

    def summary(self) -> str:
        def day(ts: int) -> str:
            return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")

        text = (f"{self.platform}: {day(self.window_start)} → {day(self.window_end)} UTC, "
                f"{self.pages} page(s): read {self.read}, imported {self.imported}, "
                f"duplicate {self.duplicates}, skipped {self.skipped}, "
                f"rejected {self.rejected}")
        if self.adjustments:
            text += f", adjustments {self.adjustments}"
        if self.queued:
            text += f", queued for the ledger's owner {self.queued}"
        if self.retries:
            text += f" ({self.retries} retried request(s))"
        return text


# --- reading ------------------------------------------------------------------------------

def fetch_slices(client: PlatformClient, start: int, end: int, *,
                 types: tuple[int, ...] = LOG_TYPES, page_size: int = PAGE_SIZE,
                 result: SyncResult | None = None,
                 on_page: Progress | None = None) -> Iterator[list[dict[str, Any]]]:
    """Every row of ``[start, end]`` of each log type once, as slices (see ingest.log_pages)."""
    result = result or SyncResult(client.base_url, None, start, end)
    stats = WalkStats()
    try:
        for log_type in types:
            for rows in LogWalker(client, log_type, page_size=page_size, stats=stats,
                                  on_page=on_page).slices(start, end):
                result.read += len(rows)
                yield rows
    finally:
        result.pages += stats.requests
        result.passes += stats.passes
        result.expected += stats.expected


def fetch_window(client: PlatformClient, start: int, end: int, **kw: Any
                 ) -> Iterator[dict[str, Any]]:
    """Every row of ``[start, end]`` once (see :func:`fetch_slices`)."""
    for rows in fetch_slices(client, start, end, **kw):
        yield from rows


# --- state ---------------------------------------------------------------------------------

def state_file(db: str) -> Path:
    """``data/callmeter.duckdb`` → ``data/callmeter.sync.json``."""
    return ledger_companion(db, ".sync.json")


def read_state(db: str) -> dict[str, Any]:
    return read_json_object(state_file(db))


def _write_state(db: str, state: dict[str, Any]) -> None:
    path = state_file(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _account(platform: str, user_id: str | None) -> str:
    return f"{console_base(platform)}#{user_id or ''}"


def _record(db: str, result: SyncResult, next_start: int | None) -> None:
    state = read_state(db)
    accounts = state.setdefault("accounts", {})
    entry = accounts.setdefault(_account(result.platform, result.user_id), {})
    entry.update(platform=result.platform, user_id=result.user_id, last_run=asdict(result))
    if next_start is not None:
        entry["next_start"] = next_start
    state["last"] = _account(result.platform, result.user_id)
    state["platform"] = result.platform
    state["user_id"] = result.user_id
    _write_state(db, state)


def _db_path(db: str | duckdb.DuckDBPyConnection) -> str:
    if isinstance(db, str):
        return db
    row = db.execute("SELECT path FROM duckdb_databases() "
                     "WHERE database_name = current_database()").fetchone()
    if not row or not row[0]:
        raise CallmeterError("this ledger connection has no file; pass the --db path instead")
    return str(row[0])


def last_sync(db: str | duckdb.DuckDBPyConnection, platform: str | None = None,
              user_id: str | None = None) -> SyncResult | None:
    """The latest run (for ``platform`` when given), or None when the ledger was never synced."""
    state = read_state(_db_path(db))
    key = _account(platform, user_id) if platform else state.get("last")
    run = state.get("accounts", {}).get(key or "", {}).get("last_run")
    if not run:
        return None
    return SyncResult(**run)


# --- one run -------------------------------------------------------------------------------

def parse_since(value: str | date | datetime | None) -> int | None:
    """``2025-05-01`` (UTC midnight), an ISO time, or unix seconds → unix seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CallmeterError(f"--since {text!r}: give a date (2025-05-01) or an ISO time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


class _Importer:
    """Hands batches of rows to the ``newapi`` importer: into the ledger, or via the spool.

    A batch holds whole slices only: identical rows of one second are always in one slice, so
    they reach the importer together and are told apart (see importers.base ``_repeat_rank``).
    """

    def __init__(self, db: str | duckdb.DuckDBPyConnection, settings: Settings,
                 result: SyncResult, folder: Path, quota_per_unit: Decimal) -> None:
        self.module = FORMATS["newapi"]
        self.db_path = _db_path(db)
        self.result = result
        self.folder = folder
        self.handoff = None
        self.owned = isinstance(db, str)
        if isinstance(db, str):
            self.conn, self.handoff, _ = open_for_import(db)
        else:
            self.conn = db
        self.options = ImportOptions(quota_per_unit=quota_per_unit,
                                     fingerprinter=fingerprinter_for(self.db_path, settings))
        self.batch: list[dict[str, Any]] = []
        self.files = 0

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.batch.extend(rows)
        if len(self.batch) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        self.files += 1
        path = self.folder / f"log-self-{self.result.window_end}-{self.files:04d}.json"
        page = {"success": True, "message": "",
                "data": {"items": self.batch, "total": len(self.batch)}}
        path.write_text(json.dumps(page, ensure_ascii=False, default=str), encoding="utf-8")
        self.batch = []
        self._merge(import_page_file(self.conn, path, self.module, self.options,
                                     rejected_dir(self.db_path), self.handoff))

    def _merge(self, r: ImportResult) -> None:
        res = self.result
        res.imported += r.imported
        res.duplicates += r.duplicates
        res.skipped += r.skipped
        res.rejected += r.rejected
        res.queued += r.queued
        res.adjustments += r.adjustments
        if r.rejected_file:
            res.rejected_files.append(r.rejected_file)

    def close(self) -> None:
        if self.owned:
            self.conn.close()


def import_page_file(conn: duckdb.DuckDBPyConnection, path: Path, module: ImportFormat,
                     options: ImportOptions,
                     rejected: Path, handoff: Handoff | None = None) -> ImportResult:
    """The one hand-off to the importer: a file shaped exactly like a ``/api/log/self`` answer."""
    return import_file(conn, path, module, options, rejected, handoff=handoff)


def sync_now(db: str | duckdb.DuckDBPyConnection, settings: Settings, *,
             since: str | date | datetime | None = None, on_page: Progress | None = None,
             client: PlatformClient | None = None, now: float | None = None) -> SyncResult:
    """Pull new log rows from ``settings.platform_url`` into the ledger; never raises for a
    platform failure (the result says ``status='error'``), so pages can show it."""
    platform = settings.platform_url
    if not platform:
        raise CallmeterError("no platform URL: pass --platform URL or set CALLMETER_PLATFORM_URL")
    platform = console_base(platform)
    db_path = _db_path(db)
    user_id = settings.platform_user_id
    state = read_state(db_path).get("accounts", {}).get(_account(platform, user_id), {})
    start = parse_since(since)
    if start is None:
        start = int(state.get("next_start") or FIRST_START)
    # the second now running is the next run's: rows of it may still be written
    end = int(time.time() if now is None else now) - 1
    result = SyncResult(platform, user_id, start, end,
                        started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    token = settings.platform_token or load_token(db_path, platform)
    own_client = client is None
    client = client or PlatformClient(platform, token, user_id)
    importer = None
    try:
        unit = quota_unit(client, settings.quota_per_unit)
        qpu, result.notes = unit.value, list(unit.notes)
        result.quota_per_unit = str(qpu)
        with tempfile.TemporaryDirectory(prefix="callmeter-sync-") as tmp:
            importer = _Importer(db, settings, result, Path(tmp), qpu)
            try:
                for rows in fetch_slices(client, start, end, result=result, on_page=on_page):
                    importer.add(rows)
            finally:
                importer.flush()    # rows already fetched are kept even when a page failed
        result.status = "ok"
        next_start = max(FIRST_START, end - settings.sync_overlap_seconds)
    except (PlatformError, CallmeterError, duckdb.Error, OSError) as exc:
        result.status = "error"
        result.error = type(exc).__name__
        result.message = str(exc)
        next_start = None       # keep the old start: the whole window is asked for again
    finally:
        if importer is not None:
            importer.close()
        result.requests, result.retries = client.requests, client.retries
        if own_client:
            client.close()
        result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    _record(db_path, result, next_start)
    return result
