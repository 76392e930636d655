"""A rich progress bar fed by DuckDB's own query progress, for long single-statement work."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import duckdb
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.progress import run_reporting_progress

T = TypeVar("T")


def with_query_progress(conn: duckdb.DuckDBPyConnection, label: str, work: Callable[[], T],
                        *, enabled: bool = True) -> T:
    """Run ``work`` (which runs queries on ``conn``) while a bar shows DuckDB's progress."""
    if not enabled:
        return work()
    columns = (TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(label, total=100)
        return run_reporting_progress(conn, work,
                                      lambda pct: bar.update(task, completed=pct))
