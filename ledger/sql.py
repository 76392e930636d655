"""SQL literals for the few places DuckDB cannot bind a value.

``COPY … TO``, ``ATTACH``, ``LOAD``, ``SET`` and the file list of ``read_json`` / ``read_csv``
take literal text, not a ``?`` parameter. Everything else is bound. Every such value goes
through :func:`sql_literal`, so a path with a quote (``/tmp/o'neil/ledger.duckdb``) or a space
is one string to DuckDB and never ends the statement early.
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type hints only: the proxy imports this module and never needs DuckDB
    import duckdb


def sql_literal(value: str | PathLike[str]) -> str:
    """``value`` as a single-quoted SQL string literal (``'`` doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values: Iterable[str | PathLike[str]]) -> str:
    """A list literal of strings: ``['a', 'b']`` (file lists for DuckDB's readers)."""
    return "[" + ", ".join(sql_literal(v) for v in values) + "]"


def sql_identifier(name: str) -> str:
    """``name`` as a double-quoted identifier (``"`` doubled)."""
    return '"' + name.replace('"', '""') + '"'


def fetch_one(cursor: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The one row a query always returns (an aggregate, a ``count(*)``): typed, never None."""
    row = cursor.fetchone()
    if row is None:
        raise LookupError("the query returned no row")
    return row
