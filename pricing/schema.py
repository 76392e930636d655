"""Ledger migrations owned by pricing: ``prices``, ``price_sheets``, ``priced_calls``, budgets,
the cost memo and the rollups.

Registered with the ledger core by :func:`pricing.install` (``ledger.migrations.register``);
each runs once, in a transaction, in number order with the core's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # hints only: `callmeter proxy` installs pricing and never loads DuckDB
    import duckdb

from ledger.migrations import m007_cache_write_tokens

from . import rollup
from .memo import refresh_cost_memo
from .queries import (
    ADD_CACHE_WRITE_PRICE_COLUMNS_SQL,
    ADD_MEMO_COLUMNS_SQL,
    FORGET_MEMO_SQL,
    KEEP_SHEET_ROWS_SQL,
    LATEST_PRICE_SHEET_SQL,
    PRICE_SHEET_ROWS_TABLE_SQL,
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


def m009_rollups(conn: duckdb.DuckDBPyConnection) -> None:
    """The dashboard's rollups (see pricing.rollup), built over the calls already there; kept
    current after every load by :func:`pricing.rollup.append_new_calls`."""
    rollup.build(conn)


def m010_unbilled_and_snapshots(conn: duckdb.DuckDBPyConnection) -> None:
    """``priced_calls`` treating a call without a model as not billed (cost 0, priced) and
    pricing a dated snapshot from its base model's row, with ``price_model`` (memoised as
    ``memo_price_model``) naming the row that priced each call; every memo is recomputed."""
    for statement in ADD_MEMO_COLUMNS_SQL:
        conn.execute(statement)
    conn.execute(PRICED_CALLS_VIEW_SQL)
    conn.execute(FORGET_MEMO_SQL)
    refresh_cost_memo(conn)


def m011_price_sheet_rows(conn: duckdb.DuckDBPyConnection) -> None:
    """``price_sheet_rows``: each loaded sheet's rows by sha256 (undo to the sheet before);
    the sheet loaded now is kept at once."""
    conn.execute(PRICE_SHEET_ROWS_TABLE_SQL)
    latest = conn.execute(LATEST_PRICE_SHEET_SQL).fetchone()
    if latest is not None:
        conn.execute(KEEP_SHEET_ROWS_SQL, [latest[1], latest[1]])


def m012_rollup_classes(conn: duckdb.DuckDBPyConnection) -> None:
    """The rollups rebuilt with each call's ``unpriced`` and reconciliation class
    (``recon``) as dimensions, so the finance report sums a month from ``rollup_daily``
    instead of the calls (see pricing.rollup)."""
    rollup.build(conn)


def m013_rollups_rebuilt(conn: duckdb.DuckDBPyConnection) -> None:
    """The rollups rebuilt for two fixes: a charged call without a status is reconciled as a
    success (it was in no part of the reconciliation, so the finance headline's parts missed
    its difference), and ``rollup_dist`` keeps the key's label (a page filtered on a
    label-only key showed none of its calls from it)."""
    rollup.build(conn)


def m014_rollup_break_even(conn: duckdb.DuckDBPyConnection) -> None:
    """The rollups rebuilt with break-even's sums over the calls priced both ways
    (``both_priced_*``), so the Billing page's break-even reads them instead of the calls
    (see pricing.compare)."""
    rollup.build(conn)


def m015_rollup_cheaper_calls(conn: duckdb.DuckDBPyConnection) -> None:
    """The rollups rebuilt with the calls each billing variant prices lower
    (``request_cheaper_calls``, ``token_cheaper_calls``), so the Recommendations engine reads
    its period's sums from them instead of the calls (see pricing.recommend_scan)."""
    rollup.build(conn)


MIGRATIONS = (m002_prices, m003_priced_calls, m004_budgets, m005_cost_memo,
              m008_cache_write_prices, m009_rollups, m010_unbilled_and_snapshots,
              m011_price_sheet_rows, m012_rollup_classes, m013_rollups_rebuilt,
              m014_rollup_break_even, m015_rollup_cheaper_calls)
