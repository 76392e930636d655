"""Ledger migrations owned by pricing: ``prices``, ``price_sheets``, ``priced_calls``, budgets,
the cost memo and the rollups.

Registered with the ledger core by :func:`pricing.install` (``ledger.migrations.register``);
each runs once, in a transaction, in number order with the core's own.
"""

from __future__ import annotations

import duckdb

from . import rollup
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


def m004_budgets(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS budgets (scope VARCHAR NOT NULL, target VARCHAR NOT NULL, "
        "monthly DECIMAL(18,6) NOT NULL, note VARCHAR, updated_at TIMESTAMPTZ, "
        "PRIMARY KEY (scope, target))")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS alerts_sent (alert_id VARCHAR, kind VARCHAR, url_hash "
        "VARCHAR, sent_at TIMESTAMPTZ, PRIMARY KEY (alert_id, url_hash))")


def m005_cost_memo(conn: duckdb.DuckDBPyConnection) -> None:
    """Costs memoised in ``calls.memo_*`` and ``priced_calls`` reading them where current
    (see pricing.memo); existing calls are priced once here."""
    for statement in ADD_MEMO_COLUMNS_SQL:
        conn.execute(statement)
    conn.execute(PRICED_CALLS_VIEW_SQL)
    refresh_cost_memo(conn)


def m007_rollups(conn: duckdb.DuckDBPyConnection) -> None:
    """The dashboard's rollups (see pricing.rollup), built over the calls already there; kept
    current after every load by :func:`pricing.rollup.append_new_calls`."""
    rollup.build(conn)


MIGRATIONS = (m002_prices, m003_priced_calls, m004_budgets, m005_cost_memo, m007_rollups)
