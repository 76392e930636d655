"""``callmeter import``: run files through their importers into the ledger, or via the spool.

When another process owns the ledger (see :mod:`ledger.connect`), rows are staged in memory and
written as a finished spool segment, which the owner loads on its next refresh; nothing waits.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import duckdb

from ledger import (
    ADJUSTMENT_COLUMNS,
    ADJUSTMENTS_SUFFIX,
    CALL_COLUMNS,
    CLOSED_SUFFIX,
    SOURCE_ORDER,
    CallmeterError,
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
from .importers.base import head_text
from .importers.jsonio import is_json_document
from .importers.sources import Source, expand, open_sources
from .importers.text_encoding import prepare


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
            conn.execute(f"COPY (SELECT {cols} FROM ({rows_sql}) ORDER BY {SOURCE_ORDER}) "
                         f"TO {sql_literal(tmp)} (FORMAT json)")  # the file's order: first wins
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
    recursive: bool = False,
) -> tuple[list[ImportResult], LedgerLocked | None]:
    """Import every path; return the results and, when the ledger was held, who held it.

    A folder stands for its files, a ``.gz`` / ``.zip`` for its content (ingest.importers.
    sources); each file is made plain UTF-8 first (ingest.importers.text_encoding).
    ``around(conn, label, work)`` wraps each file's work (the CLI passes a progress bar).
    """
    options = options or ImportOptions()
    files = [f for p in paths for f in expand(Path(p), recursive)]
    if fmt != "auto":
        _format(fmt)
    conn, handoff, locked = open_for_import(db, data_path)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="callmeter-import-") as tmp:
            for path in files:
                for source in open_sources(path, Path(tmp)):
                    try:
                        results.append(_import_source(conn, db, source, fmt, options,
                                                      Path(tmp), handoff, around))
                    except (CallmeterError, duckdb.Error, UnicodeError, OSError) as exc:
                        # one unreadable file (or member) must not stop the others
                        results.append(ImportResult(source.label, fmt,
                                                    error=unreadable(source.label, exc)))
    finally:
        conn.close()
    return results, locked


def _import_source(conn: duckdb.DuckDBPyConnection, db: str, source: Source, fmt: str,
                   options: ImportOptions, scratch: Path, handoff: Callable[..., Any] | None,
                   around: Callable[..., Any] | None) -> ImportResult:
    """One file: made UTF-8, its format detected, imported under its label."""
    text = prepare(source.path, scratch, options.encoding,
                   document=is_json_document(head_text(source.path)))
    module = detect_format(text.path, FORMATS, source.label) if fmt == "auto" else _format(fmt)

    def work() -> ImportResult:
        result = import_file(conn, text.path, module, options, rejected_dir(db),
                             handoff=handoff, label=source.label, dropped=text.dropped)
        result.notes[:0] = text.notes
        return result

    name = Path(source.label).name
    return around(conn, f"importing {name}", work) if around else work()


def unreadable(label: str, exc: BaseException) -> str:
    """One or two lines for a file that could not be read at all, never a reader's dump."""
    if isinstance(exc, CallmeterError):
        return str(exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, duckdb.Error):
        first = first.split(": ", 1)[-1][:200]
        return (f"{label}: cannot be read ({first}); check that it is an export in one of the "
                "formats (docs/importers.md) or pass --format")
    return f"{label}: cannot be read ({first[:200]})"


def _format(name: str) -> ImportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ImportFormatError(
            f"unknown format {name!r}; choose one of auto|{'|'.join(FORMATS)}"
        ) from None
