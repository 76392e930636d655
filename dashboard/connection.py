"""One ledger connection per dashboard process, and the refresh done on every page load.

The dashboard owns the ledger while it runs (see ``ledger.connect``): it opens it read-write
once, loads the proxy's finished spool segments on each refresh, and keeps the hourly rollup in
step. Streamlit runs sessions on threads, so each read takes its own cursor.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import streamlit as st

from ingest.loader import LoadResult, load_spool
from ledger import Settings, open_ledger, settings_from_env, spool_dir
from pricing import rollup

# Loading the spool costs a directory listing; once a second is fresh enough.
REFRESH_EVERY_SECONDS = 1.0
# DuckDB takes 80 % of RAM by default; the dashboard stays small and lets big aggregates spill
# (a rollup rebuild over 10M calls reached 18 GB without a limit and was OOM-killed).
MEMORY_LIMIT = "1GB"


@dataclass
class Ledger:
    """The process's connection plus what the last refresh found."""

    settings: Settings
    conn: duckdb.DuckDBPyConnection
    lock: threading.Lock = field(default_factory=threading.Lock)
    marker: str = ""
    checked_at: float = 0.0
    last_load: LoadResult | None = None

    @property
    def db(self) -> str:
        return self.settings.db

    @property
    def spool(self) -> Path:
        return spool_dir(self.settings.db)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.conn.cursor()

    def refresh(self, force: bool = False) -> str:
        """Load finished spool segments, bring the rollup up to date, return the change marker."""
        with self.lock:
            now = time.monotonic()
            if not force and self.marker and now - self.checked_at < REFRESH_EVERY_SECONDS:
                return self.marker
            cur = self.conn.cursor()
            self.last_load = load_spool(cur, self.spool)
            self.marker = rollup.refresh(cur)
            self.checked_at = now
            return self.marker


def open_dashboard_ledger(settings: Settings) -> Ledger:
    """Open (and migrate) the ledger for the dashboard; raises LedgerLocked when it is held."""
    conn = open_ledger(settings.db, wait_seconds=2.0, memory_limit=MEMORY_LIMIT)
    conn.execute("SET preserve_insertion_order = false")
    rollup.ensure(conn)
    return Ledger(settings=settings, conn=conn)


@st.cache_resource(show_spinner="Opening the ledger…")
def get_ledger(db: str | None = None) -> Ledger:
    """The process-wide ledger (``CALLMETER_DB`` or the default), opened once."""
    return open_dashboard_ledger(settings_from_env(db))
