"""A rich progress bar fed by DuckDB's own query progress, for long single-statement work."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import duckdb
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")


def with_query_progress(conn: duckdb.DuckDBPyConnection, label: str, work: Callable[[], T],
                        *, enabled: bool = True) -> T:
    """Run ``work`` (which runs queries on ``conn``) while a bar shows DuckDB's progress."""
    if not enabled:
        return work()
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
    columns = (TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(label, total=100)
        thread.start()
        while not done.wait(0.2):
            try:
                pct = conn.query_progress()
            except duckdb.Error:
                pct = -1
            if pct >= 0:
                bar.update(task, completed=pct)
        bar.update(task, completed=100)
    thread.join()
    if error:
        raise error[0]
    return value[0]
