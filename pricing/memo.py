"""The cost memo: costs stored beside each call so ``priced_calls`` is a scan, not a join.

Pricing a call needs two range joins against the price periods and DECIMAL(38) arithmetic; on
tens of millions of calls that is seconds per query. The memo keeps each call's costs in
``calls.memo_*`` with the version of the prices (a hash of the ``prices`` table) they were
computed under. ``priced_calls`` trusts the memo only where that version is current and prices
every other row live, so a stale memo can cost speed but never correctness.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # hints only: `callmeter proxy` installs pricing and never loads DuckDB
    import duckdb

from ledger import fetch_one

from .queries import (
    PRICED_COLUMNS_MEMO,
    PRICES_VERSION_SQL,
    REFRESH_MEMO_SQL,
    calls_columns_sql,
    priced_select,
)


def refresh_cost_memo(conn: duckdb.DuckDBPyConnection) -> None:
    """Price the rows whose memo is missing or was computed under other prices.

    Called after ``prices load`` (every row is stale then), inside its transaction; inserts
    fill the memo as they go (:func:`priced_insert_sql`).
    """
    conn.execute(REFRESH_MEMO_SQL)


def priced_insert_sql(new_rows_sql: str, columns: str) -> str:
    """``INSERT INTO calls`` of ``new_rows_sql`` (calls ``columns``) with their memo filled."""
    memo = ", ".join(PRICED_COLUMNS_MEMO.values())
    costs = ", ".join(PRICED_COLUMNS_MEMO)
    return (f"INSERT INTO calls ({columns}, {memo}, memo_prices_version) "
            f"SELECT {columns}, {costs}, ({PRICES_VERSION_SQL.strip()}) "
            f"FROM ({priced_select('(' + new_rows_sql + ')')})")


# priced_calls is the memo (calls.memo_*) where it is current UNION ALL the other rows priced
# live. When no call in the period has a stale memo (the normal case: inserts and `prices load`
# keep it current), the memo columns read straight from calls are exactly the rows priced_calls
# returns, without the union and its per-row version join (a scan of a month of 10M calls:
# ~700 ms through the view, ~90 ms from the memo).
STALE_MEMO_SQL = f"""
SELECT count(*) FROM calls
WHERE started_at >= ? AND started_at < ?
  AND memo_prices_version IS DISTINCT FROM ({PRICES_VERSION_SQL.strip()})
"""
MEMO_PRICED_SQL = (
    f"(SELECT {calls_columns_sql()}, "
    + ", ".join(f"{memo} AS {col}" for col, memo in PRICED_COLUMNS_MEMO.items())
    + " FROM calls)")


def priced_source(conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> str:
    """The relation holding priced calls for [start, end): the memo read from ``calls`` when
    every memo in the period is current, else ``priced_calls`` (same rows either way)."""
    stale = fetch_one(conn.execute(STALE_MEMO_SQL, [start, end]))[0]
    return MEMO_PRICED_SQL if stale == 0 else "priced_calls"
