"""Long DuckDB work on a worker thread while the caller reports DuckDB's own query progress.

One runner for every front end: the CLI draws a rich bar (callmeter.progress), the dashboard's
Data page an ``st.progress`` bar (its updates must come from the page's own thread, so the work
is what moves to the worker).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import duckdb

from ledger import fetch_one

T = TypeVar("T")


def run_reporting_progress(conn: duckdb.DuckDBPyConnection, work: Callable[[], T],
                           report: Callable[[float], None], every: float = 0.2) -> T:
    """Run ``work`` (queries on ``conn``) on a thread; every ``every`` s call ``report`` with
    the running statement's progress in percent (0–100; statements DuckDB cannot measure are
    not reported), then once with 100 when done. Re-raises what ``work`` raised.

    DuckDB measures progress only while its progress bar is enabled (off by default in Python,
    so ``query_progress()`` said -1 and bars sat at 0 % until the end): it is enabled, without
    printing, for the duration."""
    before = fetch_one(conn.execute(
        "SELECT current_setting('enable_progress_bar'), "
        "current_setting('enable_progress_bar_print')"))
    conn.execute("SET enable_progress_bar = true")
    conn.execute("SET enable_progress_bar_print = false")
    try:
        return _run(conn, work, report, every)
    finally:
        conn.execute(f"SET enable_progress_bar = {bool(before[0])}")
        conn.execute(f"SET enable_progress_bar_print = {bool(before[1])}")


def _run(conn: duckdb.DuckDBPyConnection, work: Callable[[], T],
         report: Callable[[float], None], every: float) -> T:
    done = threading.Event()
    value: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            value.append(work())
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while not done.wait(every):
        try:
            pct = conn.query_progress()
        except duckdb.Error:
            pct = -1
        if pct >= 0:
            report(min(float(pct), 100.0))
    thread.join()
    if error:
        raise error[0]
    report(100.0)
    return value[0]
