"""The hourly rollup: ``priced_calls`` summed by UTC hour and every dimension the pages filter on.

Pages read this table instead of raw calls whenever a query can be answered from it (every
measure is a sum, a count, a min or a max, so summing the rollup gives exactly what summing the
calls gives: DECIMAL sums are exact). Whole hours in UTC convert to whole hours in every
timezone with a whole-hour offset, so a day in such a zone is a set of rollup hours.

Keeping it fresh: calls are only ever appended, so the rows with a ``rowid`` above the last one
summed are the new ones; their sums are appended as extra rollup rows (queries sum them anyway).
Anything else (rows removed, a new price sheet) rebuilds the table. ``refresh`` returns the
ledger's change marker, which keys the dashboard's query cache.
"""

from __future__ import annotations

import duckdb

TABLE = "rollup_hourly"
STATE = "rollup_state"

DIMENSIONS = (
    "key_id", "key_hint", "key_label", "endpoint", "model", "base_model", "billing_mode",
    "stream", "status", "usage_source", "source", "tags",
)

# rollup column -> aggregate over priced_calls
MEASURES: dict[str, str] = {
    "calls": "sum(requests)",
    "call_rows": "count(*)",
    "input_tokens": "sum(input_tokens)",
    "cached_tokens": "sum(cached_tokens)",
    "output_tokens": "sum(output_tokens)",
    "reasoning_tokens": "sum(reasoning_tokens)",
    "images": "sum(images)",
    "characters": "sum(characters)",
    "audio_seconds": "sum(audio_seconds)",
    "cost": "sum(cost)",
    "cost_as_token": "sum(cost_as_token)",
    "cost_as_request": "sum(cost_as_request)",
    "unpriced_calls": "sum(requests) FILTER (WHERE cost IS NULL)",
    "no_token_price_calls": "sum(requests) FILTER (WHERE cost_as_token IS NULL)",
    "no_request_price_calls": "sum(requests) FILTER (WHERE cost_as_request IS NULL)",
    "unpriced_tokens": "sum(input_tokens + output_tokens) FILTER (WHERE cost IS NULL)",
    "charged": "sum(charged)",
    "charged_calls": "sum(requests) FILTER (WHERE charged IS NOT NULL)",
    "cost_where_charged": "sum(cost) FILTER (WHERE charged IS NOT NULL)",
    "latency_sum": "sum(latency_ms)",
    "latency_n": "count(latency_ms)",
    "first_seen": "min(started_at)",
    "last_seen": "max(started_at)",
}

_SELECT = (
    "SELECT time_bucket(INTERVAL 1 HOUR, started_at) AS hour, "
    + ", ".join(DIMENSIONS) + ", "
    + ", ".join(f"{expr} AS {name}" for name, expr in MEASURES.items())
    + " FROM priced_calls {where} GROUP BY ALL"
)

PRICES_MARKER_SQL = """
SELECT coalesce(md5(string_agg(CAST(p AS VARCHAR), '|' ORDER BY CAST(p AS VARCHAR))), '-')
FROM prices p
"""
CALLS_MARKER_SQL = "SELECT count(*), coalesce(max(rowid), -1) FROM calls"


def ensure(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the state table; the rollup itself is (re)built by :func:`refresh`."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE} (calls_rows BIGINT, max_rowid BIGINT, "
        "prices_marker VARCHAR, built_at TIMESTAMPTZ)"
    )


def _state(conn: duckdb.DuckDBPyConnection) -> tuple | None:
    row = conn.execute(f"SELECT calls_rows, max_rowid, prices_marker FROM {STATE}").fetchone()
    exists = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [TABLE]
    ).fetchone()[0]
    return row if exists else None


def _save(conn, rows: int, max_rowid: int, prices: str) -> None:
    conn.execute(f"DELETE FROM {STATE}")
    conn.execute(f"INSERT INTO {STATE} VALUES (?, ?, ?, now())", [rows, max_rowid, prices])


def rebuild(conn: duckdb.DuckDBPyConnection) -> None:
    """Build the rollup from scratch over all of ``priced_calls``."""
    conn.execute("BEGIN TRANSACTION")
    try:
        rows, max_rowid = conn.execute(CALLS_MARKER_SQL).fetchone()
        prices = conn.execute(PRICES_MARKER_SQL).fetchone()[0]
        conn.execute(f"CREATE OR REPLACE TABLE {TABLE} AS " + _SELECT.format(where="")
                     + " ORDER BY hour")
        _save(conn, rows, max_rowid, prices)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _append_new(conn: duckdb.DuckDBPyConnection, after_rowid: int, rows: int,
                max_rowid: int, prices: str) -> None:
    where = f"WHERE call_id IN (SELECT call_id FROM calls WHERE rowid > {int(after_rowid)})"
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"INSERT INTO {TABLE} " + _SELECT.format(where=where))
        _save(conn, rows, max_rowid, prices)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def refresh(conn: duckdb.DuckDBPyConnection) -> str:
    """Bring the rollup in step with ``calls`` and ``prices``; return the change marker."""
    ensure(conn)
    rows, max_rowid = conn.execute(CALLS_MARKER_SQL).fetchone()
    prices = conn.execute(PRICES_MARKER_SQL).fetchone()[0]
    state = _state(conn)
    if state != (rows, max_rowid, prices):
        appended_only = (
            state is not None and state[2] == prices and rows > state[0]
            and conn.execute("SELECT count(*) FROM calls WHERE rowid > ?",
                             [state[1]]).fetchone()[0] == rows - state[0]
        )
        if appended_only:
            _append_new(conn, state[1], rows, max_rowid, prices)
        else:
            rebuild(conn)
    return f"{rows}:{max_rowid}:{prices}"
