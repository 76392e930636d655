"""The cost memo: costs stored beside each call so ``priced_calls`` is a scan, not a join.

Pricing a call needs two range joins against the price periods and DECIMAL(38) arithmetic; on
tens of millions of calls that is seconds per query. The memo keeps each call's costs in
``calls.memo_*`` with the version of the prices (a hash of the ``prices`` table) they were
computed under. ``priced_calls`` trusts the memo only where that version is current and prices
every other row live, so a stale memo can cost speed but never correctness.
"""

from __future__ import annotations

import duckdb

from .queries import PRICED_COLUMNS_MEMO, PRICES_VERSION_SQL, REFRESH_MEMO_SQL, priced_select


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
