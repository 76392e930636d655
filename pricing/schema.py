"""Ledger migrations owned by pricing: the ``prices`` table, ``price_sheets`` and ``priced_calls``.

Registered in ``ingest.migrations.MIGRATIONS``; each runs once, in a transaction.
"""

from __future__ import annotations

import duckdb

from ingest.migrations import m007_cache_write_tokens

from .memo import refresh_cost_memo
from .queries import (
    ADD_CACHE_WRITE_PRICE_COLUMNS_SQL,
    ADD_MEMO_COLUMNS_SQL,
    FORGET_MEMO_SQL,
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


def _formula_columns(conn: duckdb.DuckDBPyConnection) -> None:
    """The columns today's cost formula reads (m007's and m008's, added when missing): m003 and
    m005 build the view with today's formula, so on a new ledger they need them before m007."""
    m007_cache_write_tokens(conn)
    for statement in ADD_CACHE_WRITE_PRICE_COLUMNS_SQL:
        conn.execute(statement)


def m003_priced_calls(conn: duckdb.DuckDBPyConnection) -> None:
    """The ``priced_calls`` view: every call priced per token and per request."""
    _formula_columns(conn)
    conn.execute(PRICED_CALLS_LIVE_VIEW_SQL)


def m005_cost_memo(conn: duckdb.DuckDBPyConnection) -> None:
    """Costs memoised in ``calls.memo_*`` and ``priced_calls`` reading them where current
    (see pricing.memo); existing calls are priced once here."""
    _formula_columns(conn)
    for statement in ADD_MEMO_COLUMNS_SQL:
        conn.execute(statement)
    conn.execute(PRICED_CALLS_VIEW_SQL)
    refresh_cost_memo(conn)


def m008_cache_write_prices(conn: duckdb.DuckDBPyConnection) -> None:
    """``prices.cache_write`` and ``cache_write_long``, ``priced_calls`` pricing cache writes
    (m007's columns) and never pricing non-billable calls; every memo is recomputed under the
    new formula (the memo's version is a hash of the prices, which may not have changed)."""
    _formula_columns(conn)
    conn.execute(PRICED_CALLS_VIEW_SQL)
    conn.execute(FORGET_MEMO_SQL)
    refresh_cost_memo(conn)
