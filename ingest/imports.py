"""``callmeter import``: run files through their importers into the ledger, or via the spool.

When another process owns the ledger (see :mod:`ledger.connect`), rows are staged in memory and
written as a finished spool segment, which the owner loads on its next refresh; nothing waits.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import duckdb

from ledger import (
    ADJUSTMENT_COLUMNS,
    ADJUSTMENTS_SUFFIX,
    CALL_COLUMNS,
    CLOSED_SUFFIX,
    ImportFormatError,
    LedgerLocked,
    fetch_one,
    open_ledger,
    rejected_dir,
    segment_name,
    spool_dir,
    sql_literal,
)

from .importers import (
    FORMATS,
    ImportFormat,
    ImportOptions,
    ImportResult,
    detect_format,
    import_file,
)


def spool_handoff(folder: Path) -> Callable[..., int]:
    """Write normalised rows as one finished spool segment (atomic rename).

    ``handoff(conn, rows_sql, table="calls")``; ``table="adjustments"`` writes an adjustments
    segment (the loader reads both).
    """
    seq = [0]

    def handoff(conn: duckdb.DuckDBPyConnection, rows_sql: str, table: str = "calls") -> int:
        folder.mkdir(parents=True, exist_ok=True)
        seq[0] += 1
        suffix, columns = ((ADJUSTMENTS_SUFFIX, ADJUSTMENT_COLUMNS) if table == "adjustments"
                           else (CLOSED_SUFFIX, CALL_COLUMNS))
        final = folder / (segment_name(seq[0]) + suffix)
        tmp = final.with_name(final.name + ".tmp")
        cols = ", ".join(  # money as text: JSON numbers would pass through a float
            f"CAST({c} AS VARCHAR) AS {c}" if c in ("charged", "amount") else c for c in columns
        )
        n = fetch_one(conn.execute(f"SELECT count(*) FROM ({rows_sql})"))[0]
        if n:
            conn.execute(f"COPY (SELECT {cols} FROM ({rows_sql})) TO {sql_literal(tmp)} "
                         "(FORMAT json)")
            os.replace(tmp, final)
        return int(n)

    return handoff


def open_for_import(db: str, data_path: str | None = None) -> tuple[
        duckdb.DuckDBPyConnection, Callable[..., Any] | None, LedgerLocked | None]:
    """The ledger when it is free; else an in-memory staging connection and a hand-off that
    writes the staged rows to the spool for the ledger's owner (and who that owner is)."""
    try:
        return open_ledger(db, data_path=data_path), None, None
    except LedgerLocked as exc:
        return duckdb.connect(), spool_handoff(spool_dir(db)), exc


def import_paths(
    db: str,
    paths: Iterable[Path],
    fmt: str = "auto",
    options: ImportOptions | None = None,
    around: Callable[..., Any] | None = None,
    data_path: str | None = None,
) -> tuple[list[ImportResult], LedgerLocked | None]:
    """Import every path; return the results and, when the ledger was held, who held it.

    ``around(conn, label, work)`` wraps each file's work (the CLI passes a progress bar).
    """
    options = options or ImportOptions()
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_file():
            raise ImportFormatError(f"{p}: no such file")
    conn, handoff, locked = open_for_import(db, data_path)
    results = []
    try:
        for path in paths:
            module = detect_format(path, FORMATS) if fmt == "auto" else _format(fmt)

            def work(path: Path = path, module: ImportFormat = module) -> ImportResult:
                return import_file(conn, path, module, options, rejected_dir(db),
                                   handoff=handoff)

            results.append(around(conn, f"importing {path.name}", work) if around else work())
    finally:
        conn.close()
    return results, locked


def _format(name: str) -> ImportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ImportFormatError(
            f"unknown format {name!r}; choose one of auto|{'|'.join(FORMATS)}"
        ) from None
