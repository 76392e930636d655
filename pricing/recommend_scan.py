"""Two passes over a period's calls for every recommendation (issue 20), or one and a rollup.

The engine used to scan the period's calls once per question (variant sums, medians, shapes,
workload days, cache, failures, estimated usage) and once more per cheaper-model candidate. Now
:func:`period_scan` sums the period once into a TEMP table at the finest grain any question
needs (key x labels x model x endpoint x billing mode x UTC day x the conditions the questions
filter on: success, 429, estimated usage, any input), and every figure is a sum of its sums:
DECIMAL and integer sums of sums are exact, so the figures are those of the per-question scans
(tests/pricing/test_recommend_exact.py compares them with the previous implementation).

The sums include the calls each billing variant prices lower (a per-call comparison, summed
per row). The quantiles of tokens per call are the one thing sums cannot carry: one pass over
``calls`` per workload (key x base model x endpoint) computes them. When the rollups are
current (:func:`pricing.rollup.period_source`: they hold exactly the ledger's calls and prices)
and no call of the period has what a rollup row cannot stand for (one count, ROLLUP_LACKS_SQL),
the fine sums are read from ``rollup_daily`` / ``rollup_hourly`` (thousands of rows; they keep
the tags, so per tag too) instead of a second pass over the calls; otherwise from the calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import duckdb

from ledger import TEXT_ENDPOINTS, fetch_one, sql_literal

from . import rollup
from .groups import KEY_REF_SQL
from .memo import priced_source
from .periods import UTC_DAY_SQL, Bound, utc_start
from .variants import RAW_MEASURES

__all__ = ["PeriodScan", "period_scan", "RECOMMENDED_ENDPOINTS", "RECOMMENDED_SQL",
           "WEEK_OF_DAY_SQL"]

# chat in any provider's format, and embeddings: the calls a cheaper model could serve
RECOMMENDED_ENDPOINTS = (*TEXT_ENDPOINTS, "embeddings")
RECOMMENDED_SQL = "(" + ", ".join(map(sql_literal, RECOMMENDED_ENDPOINTS)) + ")"

# Monday of a fine row's UTC week (a TIMESTAMP, as pricing.periods.utc_week_sql gives for the
# calls of that day): derived from ``day`` after summing, which is cheaper than per call.
WEEK_OF_DAY_SQL = ("CAST(day - CAST(((day - DATE '1970-01-01') + 3) % 7 AS INTEGER) "
                   "AS TIMESTAMP)")

# The finest grain. Conditions are kept three-valued (NULL when a column is NULL) so that a
# filter on them drops exactly the calls the per-question WHERE clauses dropped; the calls each
# variant prices lower are summed per row (a per-call comparison of the two costs).
_MEASURES = {name: expr for name, expr in RAW_MEASURES.items()
             if name not in ("token_calls", "request_calls")}
_CALLS = RAW_MEASURES["calls"]
# The fine table's grain, read alike from the calls and from a rollup (which has every column).
_FINE_HEAD = """
CREATE TEMP TABLE {name} AS
SELECT """ + KEY_REF_SQL + """ AS key_id, key_hint, key_label, base_model, endpoint,
  billing_mode, {tags}{day} AS day,
  status < 400 AS ok, status = 429 AS rate_limited, usage_source <> 'reported' AS estimated,
  input_tokens > 0 AS has_input,"""
FINE_SQL = _FINE_HEAD + """
  """ + ", ".join(f"{expr} AS {name}" for name, expr in _MEASURES.items()) + """,
  """ + _CALLS + """ FILTER (WHERE cost_as_request < cost_as_token) AS request_cheaper_calls,
  """ + _CALLS + """ FILTER (WHERE cost_as_token < cost_as_request) AS token_cheaper_calls,
  sum(requests) AS requests, count(*) FILTER (WHERE cost IS NULL) AS unpriced_rows,
  sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
  sum(input_tokens - cached_tokens - coalesce(cache_write_tokens, 0)) AS uncached,
  sum(coalesce(cache_write_tokens, 0) - coalesce(cache_write_long_tokens, 0)) AS writes,
  sum(coalesce(cache_write_long_tokens, 0)) AS writes_long,
  sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens,
  sum(latency_ms) AS latency_ms
FROM {source} WHERE started_at >= ? AND started_at < ?
GROUP BY ALL
"""

# The same fine table from a current rollup (pricing.rollup: priced_calls summed per UTC hour
# and day by every dimension the conditions above read), column for column of the same types.
# Exact when no call of the period has what a rollup row cannot carry (ROLLUP_LACKS_SQL): the
# sums of the rollup's rows are then the sums of their calls, and a rollup row's ``has_input``
# (its input is > 0: one of its calls has input) keeps every call with input, and only calls
# without input that add nothing to the figures read under it (no input, cache reads or
# writes); its labels are the labels of calls with input.
ROLLUP_FINE_SQL = _FINE_HEAD + """
  """ + ", ".join(f"sum({name}) AS {name}" for name in _MEASURES) + """,
  sum(request_cheaper_calls) AS request_cheaper_calls,
  sum(token_cheaper_calls) AS token_cheaper_calls,
  sum(calls) AS requests,
  CAST(coalesce(sum(call_rows) FILTER (WHERE unpriced), 0) AS BIGINT) AS unpriced_rows,
  sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
  sum(input_tokens) - sum(cached_tokens) - coalesce(sum(cache_write_tokens), 0) AS uncached,
  coalesce(sum(cache_write_tokens), 0) AS writes, CAST(0 AS HUGEINT) AS writes_long,
  sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens,
  sum(latency_sum) AS latency_ms
FROM {table} WHERE {time} >= ? AND {time} < ?
GROUP BY ALL
"""
# A call the rollup cannot stand for in the fine table: no ``requests`` (the engine counts it
# as one call, the rollup as none), a NULL token count (the per-call differences would skip
# the call), negative input, cache reads or writes without input (``has_input`` would keep
# them), or 1-hour cache writes (not a rollup column). One count over the period, before.
ROLLUP_LACKS_SQL = """requests IS NULL OR input_tokens IS NULL OR cached_tokens IS NULL
    OR output_tokens IS NULL OR input_tokens < 0
    OR coalesce(cache_write_long_tokens, 0) <> 0
    OR (input_tokens = 0 AND (cached_tokens <> 0 OR coalesce(cache_write_tokens, 0) <> 0))"""
ROLLUP_LACKS_COUNT_SQL = ("SELECT count(*) FROM calls WHERE started_at >= ? AND started_at < ? "
                          "AND (" + ROLLUP_LACKS_SQL + ")")

# Tokens per call, the one thing sums cannot carry: per workload (key x base model x endpoint)
# the median, the 90th percentiles of input and output and the largest input, in one pass
# over ``calls`` (no money: no prices needed). A row of ``requests`` calls stands for calls of
# its tokens // requests each; when no row of the period has requests > 1 (a per-call ledger;
# MAX_REQUESTS_SQL reads it, with the period's call count) that is the tokens themselves, and
# the pass skips three divisions per call (``{per}`` empty).
_PER_CALL = " // greatest(requests, 1)"
QUANTILES_SQL = """
CREATE TEMP TABLE {name} AS
SELECT *, false AS all_endpoints, CAST(1 AS BIGINT) AS endpoints FROM (
  SELECT """ + KEY_REF_SQL + """ AS key_id, base_model, endpoint,
    quantile_disc((input_tokens + output_tokens){per}, 0.5) AS median_tokens_per_call,
    quantile_disc(input_tokens{per}, 0.9) AS p90_input,
    quantile_disc(output_tokens{per}, 0.9) AS p90_output,
    max(input_tokens{per}) AS max_input
  FROM calls WHERE started_at >= ? AND started_at < ?
  GROUP BY 1, 2, 3)
"""
# The same table from value counts: quantile_disc holds every value of the period in memory,
# outside DuckDB's memory limit; counting each value per workload (one GROUPING SETS pass)
# spills instead. DuckDB's quantile_disc(x, q) is the value at 0-based position ceil(q * n) - 1
# of the n non-NULL values in order, i.e. the smallest value whose running count reaches
# ceil(q * n) (held against quantile_disc in tests/pricing/test_recommend_exact.py). Slower
# (33M calls, 30 days of the 100M ledger, with a CI run beside it: 3.7 s and a 1.99 GB peak
# held, 8.6 s and 0.89 GB counted), so used only above QUANTILES_BY_COUNTS_ABOVE calls, where
# a dashboard capped at 1 GB would otherwise hold twice that.
QUANTILES_BY_COUNTS_ABOVE = 20_000_000
QUANTILES_BY_COUNTS_SQL = """
CREATE TEMP TABLE {name} AS
WITH counts AS (
  SELECT key_id, base_model, endpoint, GROUPING(t, i, o) AS what,
    CASE GROUPING(t, i, o) WHEN 3 THEN t WHEN 5 THEN i WHEN 6 THEN o END AS x,
    count(*) AS c, max(i) AS max_input
  FROM (SELECT """ + KEY_REF_SQL + """ AS key_id, base_model, endpoint,
          (input_tokens + output_tokens){per} AS t, input_tokens{per} AS i,
          output_tokens{per} AS o
        FROM calls WHERE started_at >= ? AND started_at < ?)
  GROUP BY GROUPING SETS ((key_id, base_model, endpoint, t), (key_id, base_model, endpoint, i),
                          (key_id, base_model, endpoint, o), (key_id, base_model, endpoint))),
running AS (
  SELECT *, sum(c) OVER (PARTITION BY key_id, base_model, endpoint, what ORDER BY x
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS upto,
    sum(c) OVER (PARTITION BY key_id, base_model, endpoint, what) AS n
  FROM counts WHERE what < 7 AND x IS NOT NULL)
SELECT key_id, base_model, endpoint,
  min(x) FILTER (WHERE what = 3 AND upto >= ceil(n * 0.5)) AS median_tokens_per_call,
  min(x) FILTER (WHERE what = 5 AND upto >= ceil(n * 0.9)) AS p90_input,
  min(x) FILTER (WHERE what = 6 AND upto >= ceil(n * 0.9)) AS p90_output,
  any_value(max_input) FILTER (WHERE what = 7) AS max_input,
  false AS all_endpoints, CAST(1 AS BIGINT) AS endpoints
FROM (SELECT * FROM running UNION ALL BY NAME SELECT * FROM counts WHERE what = 7)
GROUP BY key_id, base_model, endpoint
"""
MAX_REQUESTS_SQL = ("SELECT max(requests), count(*) FROM calls "
                    "WHERE started_at >= ? AND started_at < ?")
# The variant workloads' medians (key x base model, every endpoint): the one endpoint's when
# there is one; a workload on several endpoints gets its own from MULTI_MEDIANS_SQL, which
# reads only its calls (a median is not a sum).
ALL_ENDPOINTS_SQL = """
INSERT INTO {name} BY NAME
SELECT key_id, base_model, NULL AS endpoint, true AS all_endpoints, count(*) AS endpoints,
  CASE WHEN count(*) = 1 THEN any_value(median_tokens_per_call) END AS median_tokens_per_call
FROM {name} GROUP BY key_id, base_model
"""
MULTI_MEDIANS_SQL = """
UPDATE {name} SET median_tokens_per_call = m.median FROM (
  SELECT """ + KEY_REF_SQL + """ AS key_id, base_model,
    quantile_disc((input_tokens + output_tokens) // greatest(requests, 1), 0.5) AS median
  FROM calls SEMI JOIN (SELECT key_id AS k, base_model AS b FROM {name}
                        WHERE all_endpoints AND endpoints > 1) w
    ON w.k IS NOT DISTINCT FROM """ + KEY_REF_SQL + """ AND w.b IS NOT DISTINCT FROM base_model
  WHERE started_at >= ? AND started_at < ?
  GROUP BY ALL) m
WHERE {name}.all_endpoints AND {name}.endpoints > 1
  AND {name}.key_id IS NOT DISTINCT FROM m.key_id
  AND {name}.base_model IS NOT DISTINCT FROM m.base_model
"""


@dataclass(frozen=True)
class PeriodScan:
    """The TEMP tables of one period: ``fine`` (sums at the finest grain), ``quantiles``
    (tokens per call per workload; per key x base model where ``all_endpoints``); ``source``
    is the priced relation the calls were summed from (None when ``rollup`` is set: the fine
    table was summed from that rollup table); ``tagged``: the fine table also has the calls'
    ``tags`` (for per-tag workloads)."""

    fine: str
    quantiles: str
    source: str | None
    start: datetime
    end: datetime
    tagged: bool = False
    rollup: str | None = None

    @property
    def period(self) -> list[datetime]:
        return [self.start, self.end]


@contextmanager
def period_scan(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound, *,
                tags: bool = False, use_rollup: bool = True) -> Iterator[PeriodScan]:
    """Sum [since, until)'s calls once (TEMP tables, dropped on exit); with ``tags``, per
    distinct ``tags`` map too (costs hashing the maps: only for per-tag workloads).

    The fine sums come from the current rollup (:func:`pricing.rollup.period_source`, which
    keeps the tags too) when the period is whole UTC hours, ``use_rollup`` is on and no call
    of the period lacks what the rollup needs (ROLLUP_LACKS_SQL), else from the priced calls:
    the same figures either way (tests/pricing/test_recommend_exact.py)."""
    start, end = utc_start(since), utc_start(until)
    tag = uuid.uuid4().hex[:12]
    fine, quantiles = f"_rec_fine_{tag}", f"_rec_quantiles_{tag}"
    period = [start, end]
    try:
        most, calls = fetch_one(conn.execute(MAX_REQUESTS_SQL, period))
        sql = QUANTILES_BY_COUNTS_SQL if calls > QUANTILES_BY_COUNTS_ABOVE else QUANTILES_SQL
        conn.execute(sql.format(name=quantiles, per=_PER_CALL if most and most > 1 else ""),
                     period)
        conn.execute(ALL_ENDPOINTS_SQL.format(name=quantiles))
        if fetch_one(conn.execute(f"SELECT count(*) FROM {quantiles} "
                                  "WHERE all_endpoints AND endpoints > 1"))[0]:
            conn.execute(MULTI_MEDIANS_SQL.format(name=quantiles), period)
        table = rollup.period_source(conn, start, end) if use_rollup else None
        if table is not None and fetch_one(conn.execute(ROLLUP_LACKS_COUNT_SQL, period))[0]:
            table = None
        source = None
        if table is None:
            source = priced_source(conn, start, end)
            conn.execute(FINE_SQL.format(name=fine, source=source,
                                         tags="tags, " if tags else "",
                                         day=UTC_DAY_SQL.format(col="started_at")), period)
        else:
            conn.execute(ROLLUP_FINE_SQL.format(name=fine, table=table[0], time=table[1],
                                                tags="tags, " if tags else "",
                                                day=UTC_DAY_SQL.format(col=table[1])), period)
        yield PeriodScan(fine, quantiles, source, start, end, tags,
                         None if table is None else table[0])
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {fine}")
        conn.execute(f"DROP TABLE IF EXISTS {quantiles}")
