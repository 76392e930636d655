"""The cost memo: costs stored beside each call so ``priced_calls`` is a scan, not a join.

Pricing a call needs two range joins against the price periods and DECIMAL(38) arithmetic; on
tens of millions of calls that is seconds per query. The memo keeps each call's costs in
``calls.memo_*`` with the version of the prices (a hash of the ``prices`` table) they were
computed under. ``priced_calls`` trusts the memo only where that version is current and prices
every other row live, so a stale memo can cost speed but never correctness.
"""

from __future__ import annotations

import duckdb

from .queries import REFRESH_MEMO_SQL


def refresh_cost_memo(conn: duckdb.DuckDBPyConnection) -> None:
    """Price the rows whose memo is missing or was computed under other prices.

    Called after every insert (only the new rows are stale) and after ``prices load`` (every
    row is), inside the caller's transaction.
    """
    conn.execute(REFRESH_MEMO_SQL)
