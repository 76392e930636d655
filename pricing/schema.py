"""Ledger migrations owned by pricing: the ``prices`` table, ``price_sheets`` and ``priced_calls``.

Registered in ``ingest.migrations.MIGRATIONS``; each runs once, in a transaction.
"""

from __future__ import annotations

import duckdb

from .memo import refresh_cost_memo
from .queries import (
    ADD_MEMO_COLUMNS_SQL,
    PRICE_SHEETS_TABLE_SQL,
    PRICED_CALLS_LIVE_VIEW_SQL,
    PRICED_CALLS_VIEW_SQL,
    PRICES_TABLE_SQL,
)


def m002_prices(conn: duckdb.DuckDBPyConnection) -> None:
    """``prices`` (the loaded sheet, one row per model × effective_from × tier) and
    ``price_sheets`` (which sheet was loaded when)."""
    conn.execute(PRICES_TABLE_SQL)
    conn.execute(PRICE_SHEETS_TABLE_SQL)


def m003_priced_calls(conn: duckdb.DuckDBPyConnection) -> None:
    """The ``priced_calls`` view: every call priced per token and per request."""
    conn.execute(PRICED_CALLS_LIVE_VIEW_SQL)


def m005_cost_memo(conn: duckdb.DuckDBPyConnection) -> None:
    """Costs memoised in ``calls.memo_*`` and ``priced_calls`` reading them where current
    (see pricing.memo); existing calls are priced once here."""
    for statement in ADD_MEMO_COLUMNS_SQL:
        conn.execute(statement)
    conn.execute(PRICED_CALLS_VIEW_SQL)
    refresh_cost_memo(conn)
