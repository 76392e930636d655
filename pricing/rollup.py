"""Rollups: ``priced_calls`` summed by UTC hour / UTC day and every dimension the pages filter
on, plus a distribution rollup of per-call shapes (tokens, latency, time to first token).

Pages read these tables instead of raw calls whenever a query can be answered from them (every
measure is a sum, a count, a min or a max, so summing the rollup gives exactly what summing the
calls gives: DECIMAL sums are exact). Whole hours in UTC convert to whole hours in every
timezone with a whole-hour offset, so a day in such a zone is a set of rollup hours; a period in
UTC is a set of rollup days.

Both also carry two classes of each call, decided when it is summed: ``unpriced`` and
``recon`` (the reconciliation part its platform charge falls in), so the finance report sums a
month from ``rollup_daily`` (thousands of rows, not millions) and gets what summing the calls
gives; migration ``m012_rollup_classes`` rebuilt older rollups with them. Break-even (the
Billing page) and the month-end forecast (Key detail) read them too, through
:func:`period_source` and :func:`is_current`: break-even sums only the calls priced both ways,
which a rollup row may mix with others, so their sums are columns of their own
(``both_priced_*``, rebuilt into older rollups by ``m014_rollup_break_even``). The
Recommendations engine (pricing.recommend_scan) reads its period's sums from them too, with
the calls each variant prices lower (``*_cheaper_calls``, ``m015_rollup_cheaper_calls``).

``rollup_dist`` keeps, per UTC day × key (fingerprint and label) × model × endpoint × billing
mode × tags × success, how many calls fell in each log-spaced bin: tokens per call (quarter
octaves, with both variants' cost for the break-even chart), latency and time to first token
(eighth octaves, for approximate percentiles). Counts per bin are exact; percentiles read
from bins are approximate.

Keeping them fresh: the tables are created by pricing's migration ``m009_rollups``; calls are
only ever appended, so the rows with a ``rowid`` above the last one summed are the new ones, and
:func:`append_new_calls` (registered with the ledger core as a step after every load, see
``pricing.install``) appends their sums as extra rollup rows (queries sum them anyway).
Anything else (rows removed, a new price sheet) rebuilds the tables on the dashboard's next
refresh. ``refresh`` returns the ledger's change marker, which keys the dashboard's query cache.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # hints only: `callmeter proxy` installs pricing and never loads DuckDB
    import duckdb

from ledger import fetch_one

from .memo import priced_source
from .periods import utc_day_start_sql
from .queries import PRICES_VERSION_SQL, priced_calls_sql

TABLE = "rollup_hourly"
DAILY = "rollup_daily"
DIST = "rollup_dist"
TABLES = (TABLE, DAILY, DIST)
STATE = "rollup_state"

DIMENSIONS = (
    "key_id", "key_hint", "key_label", "endpoint", "model", "base_model", "billing_mode",
    "stream", "status", "usage_source", "source", "tags",
)

# Break-even (pricing.compare) sums only the calls priced both ways, and a rollup row may mix
# them with calls that one variant has no price for (a call billed per request that carries an
# image, which the per-token row does not price: its cost is known, so ``unpriced`` does not
# set it apart): their sums are kept apart, one ``both_priced_*`` column each (migration
# ``m014_rollup_break_even`` rebuilt older rollups with them).
BOTH_PRICED = "cost_as_token IS NOT NULL AND cost_as_request IS NOT NULL"
BOTH_PRICED_MEASURES: dict[str, str] = {
    "rows": "count(*)",
    "calls": "sum(coalesce(requests, 1))",  # a row without ``requests`` is one call
    "input_tokens": "sum(input_tokens)",
    "cached_tokens": "sum(cached_tokens)",
    "cache_write_tokens": "sum(coalesce(cache_write_tokens, 0))",
    "output_tokens": "sum(output_tokens)",
    "token_cost": "sum(cost_as_token)",
    "request_cost": "sum(cost_as_request)",
}

# rollup column -> aggregate over priced_calls
MEASURES: dict[str, str] = {
    "calls": "sum(requests)",
    "call_rows": "count(*)",
    "input_tokens": "sum(input_tokens)",
    "cached_tokens": "sum(cached_tokens)",
    "cache_write_tokens": "sum(cache_write_tokens)",
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
    # which variant prices each call lower (the Recommendations' share of calls on each
    # side of break-even; migration ``m015_rollup_cheaper_calls`` rebuilt older rollups)
    "request_cheaper_calls": "sum(requests) FILTER (WHERE cost_as_request < cost_as_token)",
    "token_cheaper_calls": "sum(requests) FILTER (WHERE cost_as_token < cost_as_request)",
    "latency_sum": "sum(latency_ms)",
    "latency_n": "count(latency_ms)",
    "first_seen": "min(started_at)",
    "last_seen": "max(started_at)",
    **{f"both_priced_{name}": f"{expr} FILTER (WHERE {BOTH_PRICED})"
       for name, expr in BOTH_PRICED_MEASURES.items()},
}

# The finance report's classes, decided per call as the rollup is built or appended, so the
# rollup can be summed per class exactly (pricing.report reads its month from here):
# ``unpriced`` (no price, never 0) and ``recon``, which part of the reconciliation a call's
# ``charged - cost`` belongs to. A call's difference within ROUNDING_TOLERANCE per request is
# rounding (new-api bills in quota units of US$0.000002).
ROUNDING_TOLERANCE = Decimal("0.00001")


def recon_class_sql(tolerance: str) -> str:
    """The reconciliation class of a ``priced_calls`` row; ``tolerance`` is SQL (``?`` binds
    it three times, or a literal). A call without a status (a log or CSV that has none) counts
    as a success, as everywhere else: every charged call falls in exactly one part."""
    return f"""CASE
    WHEN charged IS NULL THEN 'uncharged'
    WHEN coalesce(status, 200) >= 400 THEN 'failed_call_policy'
    WHEN cost IS NOT NULL AND abs(charged - cost) <= {tolerance} * requests THEN 'rounding'
    WHEN cost IS NOT NULL AND abs(charged - cost) > {tolerance} * requests
      AND (usage_source IS DISTINCT FROM 'reported' OR usage_flag IS NOT NULL)
      THEN 'token_mismatch'
    WHEN cost IS NULL OR (abs(charged - cost) > {tolerance} * requests
      AND usage_source = 'reported' AND usage_flag IS NULL)
      THEN 'price_mismatch'
    ELSE 'none'
  END"""


CLASSES: dict[str, str] = {
    "recon": recon_class_sql(f"CAST('{ROUNDING_TOLERANCE}' AS DECIMAL(18,6))"),
    "unpriced": "cost IS NULL",
}
_CLASS_SELECT = ", ".join(f"{expr} AS {name}" for name, expr in CLASSES.items())

_SELECT = (
    "SELECT time_bucket(INTERVAL 1 HOUR, started_at) AS hour, "
    + ", ".join(DIMENSIONS) + ", " + _CLASS_SELECT + ", "
    + ", ".join(f"{expr} AS {name}" for name, expr in MEASURES.items())
    + " FROM {source} GROUP BY ALL"
)
# The daily rollup sums hourly rows (sums of sums, min of mins): exact and far cheaper than
# another pass over the calls.
# (UTC days by epoch arithmetic: ``time_bucket(INTERVAL 1 DAY, timestamptz)`` goes through the
# calendar and was 50x slower.)
_DAY_OF_HOUR = f"{utc_day_start_sql('hour')} AS day"
_DAILY_SELECT = (
    f"SELECT {_DAY_OF_HOUR}, " + ", ".join((*DIMENSIONS, *CLASSES)) + ", "
    + ", ".join(f"{'min' if n == 'first_seen' else 'max' if n == 'last_seen' else 'sum'}({n}) "
                f"AS {n}" for n in MEASURES)
    + " FROM {source} GROUP BY ALL"
)

# Bins: tokens per call in quarter octaves of (1 + tokens), times in eighth octaves of (1 + ms).
TOKENS_PER_CALL = "(input_tokens + output_tokens) / greatest(requests, 1)"
TOKEN_BIN = f"CAST(floor(log2(1 + {TOKENS_PER_CALL}) * 4) AS SMALLINT)"
TOKEN_BINS_PER_OCTAVE, TIME_BINS_PER_OCTAVE = 4, 8
# key_label too: a label-only key (new-api's token name, no fingerprint) is a key of its own
DIST_DIMENSIONS = ("key_id", "key_label", "model", "base_model", "endpoint", "billing_mode",
                   "tags")
_DIST_DIMS = ", ".join(DIST_DIMENSIONS)
_DIST_SELECT = f"""
SELECT {utc_day_start_sql('started_at')} AS day, {_DIST_DIMS}, status < 400 AS ok,
  'tokens' AS kind, {TOKEN_BIN} AS bin, sum(requests) AS calls, count(*) AS call_rows,
  sum(cost_as_token) AS cost_as_token, sum(cost_as_request) AS cost_as_request,
  sum(requests) FILTER (WHERE cost_as_token IS NOT NULL) AS token_priced_calls,
  sum(requests) FILTER (WHERE cost_as_request IS NOT NULL) AS request_priced_calls,
  sum(input_tokens) AS input_tokens, sum(input_tokens + output_tokens) AS tokens
FROM {{priced}} GROUP BY ALL
UNION ALL BY NAME
SELECT {utc_day_start_sql('started_at')} AS day, {_DIST_DIMS}, status < 400 AS ok,
  kind, CAST(floor(log2(1 + ms) * {TIME_BINS_PER_OCTAVE}) AS SMALLINT) AS bin,
  sum(requests) AS calls, count(*) AS call_rows
FROM (SELECT *, unnest([latency_ms, CASE WHEN stream THEN ttft_ms END]) AS ms,
             unnest(['latency', 'ttft']) AS kind FROM {{calls}})
WHERE ms IS NOT NULL GROUP BY ALL
"""


def dist_select(where: str, *, priced: str | None = None, calls: str | None = None) -> str:
    """The distribution rollup's rows for the calls matching ``where`` (a WHERE clause on
    ``priced_calls`` / ``calls`` columns); ``priced`` and ``calls`` replace both sources with
    narrowed ones (the append's new rows)."""
    return _DIST_SELECT.format(priced=priced or f"priced_calls {where}",
                               calls=calls or f"calls {where}")


_DIST_COLUMNS = (f"day TIMESTAMPTZ, {', '.join(c + ' VARCHAR' for c in DIST_DIMENSIONS[:-1])}, "
                 "tags MAP(VARCHAR, VARCHAR), ok BOOLEAN, kind VARCHAR, bin SMALLINT, "
                 "calls HUGEINT, call_rows BIGINT, cost_as_token DECIMAL(38,15), "
                 "cost_as_request DECIMAL(38,15), token_priced_calls HUGEINT, "
                 "request_priced_calls HUGEINT, input_tokens HUGEINT, tokens HUGEINT")

# The prices a rollup was built under: the same version the cost memo is tagged with.
PRICES_MARKER_SQL = PRICES_VERSION_SQL
CALLS_MARKER_SQL = "SELECT count(*), coalesce(max(rowid), -1) FROM calls"


def ensure(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the state table; the rollup itself is (re)built by :func:`refresh`."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE} (calls_rows BIGINT, max_rowid BIGINT, "
        "prices_marker VARCHAR, built_at TIMESTAMPTZ)"
    )


def _state(conn: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """(calls rows, highest rowid, prices marker) the rollups were built for; None when any of
    them (or the state) is missing."""
    names = (*TABLES, STATE)
    exists = fetch_one(conn.execute(
        f"SELECT count(DISTINCT table_name) FROM duckdb_tables() WHERE table_name IN "
        f"({', '.join('?' for _ in names)}) AND NOT temporary", list(names)))[0]
    if exists < len(names):
        return None
    # rollups built by an older callmeter lack a measure or class added since: rebuild them
    wanted = (*MEASURES, *CLASSES)
    have = fetch_one(conn.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name IN (?, ?) AND database_name = "
        "current_database() AND schema_name = current_schema() "
        f"AND column_name IN ({', '.join('?' for _ in wanted)})", [TABLE, DAILY, *wanted]))[0]
    if have < 2 * len(wanted):
        return None
    return conn.execute(f"SELECT calls_rows, max_rowid, prices_marker FROM {STATE}").fetchone()


def is_current(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether the rollups hold exactly the calls and prices the ledger has now (read only:
    the finance report reads them only then, and the calls otherwise)."""
    state = _state(conn)
    if state is None:
        return False
    rows, max_rowid = fetch_one(conn.execute(CALLS_MARKER_SQL))
    return tuple(state) == (rows, max_rowid, fetch_one(conn.execute(PRICES_MARKER_SQL))[0])


def period_source(conn: duckdb.DuckDBPyConnection, since: datetime | None,
                  until: datetime | None) -> tuple[str, str] | None:
    """The current rollup that sums [since, until) exactly, as (table, its time column): the
    daily one when both bounds (UTC; naive is UTC, None is open) are whole UTC days, the
    hourly one when they are whole UTC hours; None (read the calls) for any other bound or
    when the rollups do not hold exactly the ledger's calls and prices."""
    utc = [b.astimezone(UTC) if b.tzinfo else b for b in (since, until) if b is not None]
    if any(b.minute or b.second or b.microsecond for b in utc) or not is_current(conn):
        return None
    return (TABLE, "hour") if any(b.hour for b in utc) else (DAILY, "day")


def summed_source(conn: duckdb.DuckDBPyConnection, since: datetime,
                  until: datetime) -> tuple[str, str]:
    """Where sums over [since, until) are read, as (relation, its time column): the current
    rollup of :func:`period_source` when it sums the period exactly, else the priced calls of
    the period (``started_at``)."""
    return period_source(conn, since, until) or (priced_source(conn, since, until), "started_at")


def _save(conn: duckdb.DuckDBPyConnection, rows: int, max_rowid: int, prices: str) -> None:
    conn.execute(f"DELETE FROM {STATE}")
    conn.execute(f"INSERT INTO {STATE} VALUES (?, ?, ?, now())", [rows, max_rowid, prices])


def build(conn: duckdb.DuckDBPyConnection) -> None:
    """Build the rollups from scratch over all of ``priced_calls``, inside the caller's
    transaction (migration ``m009_rollups`` runs this in its own)."""
    ensure(conn)
    rows, max_rowid = fetch_one(conn.execute(CALLS_MARKER_SQL))
    prices = fetch_one(conn.execute(PRICES_MARKER_SQL))[0]
    conn.execute(f"CREATE OR REPLACE TABLE {TABLE} AS " + _SELECT.format(source="priced_calls")
                 + " ORDER BY hour")
    conn.execute(f"CREATE OR REPLACE TABLE {DAILY} AS "
                 + _DAILY_SELECT.format(source=TABLE) + " ORDER BY day")
    conn.execute(f"CREATE OR REPLACE TABLE {DIST} ({_DIST_COLUMNS})")
    conn.execute(f"INSERT INTO {DIST} BY NAME " + dist_select(""))
    _save(conn, rows, max_rowid, prices)


def rebuild(conn: duckdb.DuckDBPyConnection) -> None:
    """Build the rollups from scratch over all of ``priced_calls``, in one transaction."""
    conn.execute("BEGIN TRANSACTION")
    try:
        build(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _append_new(conn: duckdb.DuckDBPyConnection, after_rowid: int, rows: int,
                max_rowid: int, prices: str) -> None:
    # The new rows by rowid, priced from their memo: not a semi-join of every call through
    # ``priced_calls`` (0.82 s of a 4.6 s load of 1M records into an empty ledger, and growing
    # with the ledger)
    new = f"rowid > {int(after_rowid)}"
    priced = f"({priced_calls_sql(new)}) new_calls"
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("CREATE OR REPLACE TEMP TABLE _rollup_new AS "
                     + _SELECT.format(source=priced))
        conn.execute(f"INSERT INTO {TABLE} BY NAME SELECT * FROM _rollup_new")
        conn.execute(f"INSERT INTO {DAILY} BY NAME "
                     + _DAILY_SELECT.format(source="_rollup_new"))
        conn.execute(f"INSERT INTO {DIST} BY NAME "
                     + dist_select("", priced=priced, calls=f"calls WHERE {new}"))
        conn.execute("DROP TABLE _rollup_new")
        _save(conn, rows, max_rowid, prices)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def append_new_calls(conn: duckdb.DuckDBPyConnection) -> bool:
    """Append calls added since the rollups were last brought up to date, when that is all that
    changed; anything else (no rollup yet, a new price sheet, removed rows) is left to the
    dashboard, which rebuilds on open. ``load`` calls this so the rollups stay current."""
    state = _state(conn)
    if state is None:
        return False
    rows, max_rowid = fetch_one(conn.execute(CALLS_MARKER_SQL))
    prices = fetch_one(conn.execute(PRICES_MARKER_SQL))[0]
    if not _appended_only(conn, state, rows, prices):
        return False
    _append_new(conn, state[1], rows, max_rowid, prices)
    return True


def _appended_only(conn: duckdb.DuckDBPyConnection, state: tuple[Any, ...] | None, rows: int,
                   prices: str) -> bool:
    return (state is not None and state[2] == prices and rows > state[0]
            and fetch_one(conn.execute("SELECT count(*) FROM calls WHERE rowid > ?",
                             [state[1]]))[0] == rows - state[0])


def refresh(conn: duckdb.DuckDBPyConnection) -> str:
    """Bring the rollup in step with ``calls`` and ``prices``; return the change marker."""
    ensure(conn)
    rows, max_rowid = fetch_one(conn.execute(CALLS_MARKER_SQL))
    prices = fetch_one(conn.execute(PRICES_MARKER_SQL))[0]
    state = _state(conn)
    if state != (rows, max_rowid, prices):
        if state is not None and _appended_only(conn, state, rows, prices):
            _append_new(conn, state[1], rows, max_rowid, prices)
        else:
            rebuild(conn)
    return f"{rows}:{max_rowid}:{prices}"
