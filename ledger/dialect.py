"""Where the SQL of the two ledger targets differs — the only place it does.

Checked on DuckDB 1.5.5 with DuckLake 1.5.5 (tests/lake/test_dialect.py): the ledger's SQL —
``MAP`` columns, ``DECIMAL(38,12)``, ``NOT NULL`` and ``DEFAULT``, views (``priced_calls``),
``ASOF`` joins, ``QUALIFY`` inside ``INSERT … SELECT``, ``UPDATE``/``DELETE``/``MERGE``,
``ALTER TABLE ADD COLUMN``, ``TEMP`` tables — runs unchanged on a lake. What a lake refuses:
``PRIMARY KEY``/``UNIQUE`` constraints (hence ``ON CONFLICT`` and ``INSERT OR REPLACE``),
indexes, sequences, user-defined types (``ENUM``) and generated columns.

The lake connection passes every statement through :func:`for_lake`: constraints are dropped
from ``CREATE TABLE`` (``calls.call_id`` stays unique by the anti-join under the writer lock,
see :mod:`ledger.lake_lock`) and ``CREATE INDEX`` becomes a no-op (a lake prunes Parquet files
by their min/max statistics instead). Anything else it refuses fails loudly, with this module
named in the message.
"""

from __future__ import annotations

import re

__all__ = ["LAKE_REFUSES", "for_lake", "explain_refusal"]

LAKE_REFUSES = ("PRIMARY KEY/UNIQUE", "ON CONFLICT", "INSERT OR REPLACE", "CREATE INDEX",
                "CREATE SEQUENCE", "CREATE TYPE", "GENERATED columns")

_CREATE_TABLE = re.compile(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?TABLE\b", re.I)
_CREATE_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\b", re.I)
_TABLE_KEY = re.compile(r",\s*(PRIMARY\s+KEY|UNIQUE)\s*\([^)]*\)", re.I)
_COLUMN_KEY = re.compile(r"\s+(PRIMARY\s+KEY|UNIQUE)\b(?!\s*\()", re.I)

# What a lake runs in place of a statement it has no use for.
NO_OP = "SELECT 1 WHERE false"


def for_lake(sql: str) -> str:
    """The statement to run on a DuckLake catalog in place of ``sql``."""
    if _CREATE_INDEX.match(sql):
        return NO_OP
    if _CREATE_TABLE.match(sql):
        return _COLUMN_KEY.sub("", _TABLE_KEY.sub("", sql))
    return sql


def explain_refusal(message: str) -> str | None:
    """A hint for an error DuckLake raises on SQL the embedded file accepts, else None."""
    if "not supported in DuckLake" in message or "DuckLake does not support" in message \
            or "no UNIQUE/PRIMARY KEY constraints" in message:
        return ("this statement works on a DuckDB file but not on a DuckLake lake; "
                "adapt it in ledger/dialect.py (lakes refuse: " + ", ".join(LAKE_REFUSES) + ")")
    return None
