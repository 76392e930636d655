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
# The same table from counted values: quantile_disc holds every value of the period in memory,
# outside DuckDB's memory limit. DuckDB's quantile_disc(x, q) is the value at 0-based position
# ceil(q * n) - 1 of the n non-NULL values in order, i.e. the smallest value whose running
# count reaches ceil(q * n) (held against quantile_disc in tests/pricing/test_recommend_exact.py).
# Found in two grouped scans whose hash tables stay small: the first counts calls per workload
# and bucket of QUANTILE_BUCKET of each quantity (x // width never decreases as x grows, so
# values in order are buckets in order; the three buckets move together, so few groups) and
# finds the bucket where each running count reaches its target; the second counts the values
# of those buckets only. 30 days of the 100M demo ledger (33M calls), best of 2, quiet machine:
# 3.2 s and 0.66 GB peak; counting every value in one GROUPING SETS pass (before) 4.6 s and
# 0.92 GB; quantile_disc 1.5 s and 2.0 GB. Used above QUANTILES_BY_COUNTS_ABOVE calls in the
# period, where quantile_disc would hold more than the dashboard's 1 GB.
QUANTILES_BY_COUNTS_ABOVE = 20_000_000
QUANTILE_BUCKET = 256
_WORKLOAD = "key_id, base_model, endpoint"
_RUNNING = ("sum(c) OVER (PARTITION BY " + _WORKLOAD + ", what ORDER BY {x} "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")


def _same_workload(a: str, b: str) -> str:
    """Rows ``a`` and ``b`` are of one workload (a NULL key, model or endpoint is one too)."""
    return " AND ".join(f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" for c in _WORKLOAD.split(", "))


def _entries(table: str, maps: tuple[str, str, str], ranks: tuple[str, str, str]) -> str:
    """One row per workload, quantity (3: tokens, 5: input, 6: output) and value ``x`` of
    ``table``'s three histogram MAPs (value -> count ``c``), with the quantity's wanted rank
    ``r`` from ``ranks``."""
    parts = [f"SELECT {_WORKLOAD}, {what} AS what, {r} AS r, {m} AS m FROM {table}"
             for what, m, r in zip((3, 5, 6), maps, ranks, strict=True)]
    return (f"SELECT {_WORKLOAD}, what, r, unnest(map_keys(m)) AS x, "
            f"unnest(map_values(m)) AS c FROM ({' UNION ALL '.join(parts)})")


# per workload, quantity (3: tokens, 5: input, 6: output) and bucket: how many values
_BUCKET_COUNTS = " UNION ALL ".join(
    f"SELECT {_WORKLOAD}, {what} AS what, {b} AS b, sum(c) AS c FROM h0 "
    f"WHERE {b} IS NOT NULL GROUP BY ALL" for what, b in ((3, "bt"), (5, "bi"), (6, "bo")))
QUANTILES_BY_COUNTS_SQL = """
CREATE TEMP TABLE {name} AS
WITH v AS NOT MATERIALIZED (
  SELECT """ + KEY_REF_SQL + """ AS key_id, base_model, endpoint,
    (input_tokens + output_tokens){per} AS t, input_tokens{per} AS i, output_tokens{per} AS o
  FROM calls WHERE started_at >= $1 AND started_at < $2),
h0 AS (  -- pass 1: calls counted per workload and bucket of each quantity (a small table:
         -- the three buckets move together)
  SELECT """ + _WORKLOAD + """, t // {width} AS bt, i // {width} AS bi, o // {width} AS bo,
    count(*) AS c, max(i) AS max_input
  FROM v GROUP BY ALL),
running AS (
  SELECT *, """ + _RUNNING.format(x="b") + """ AS upto,
    ceil(sum(c) OVER (PARTITION BY """ + _WORKLOAD + """, what)
         * CASE what WHEN 3 THEN 0.5 ELSE 0.9 END) AS target
  FROM (""" + _BUCKET_COUNTS + """)),
goal AS (  -- per workload: the bucket each running count reaches its target in, and the
           -- rank within that bucket of the value wanted
  SELECT """ + _WORKLOAD + """,
    any_value(b) FILTER (WHERE what = 3) AS bt,
    any_value(target - upto + c) FILTER (WHERE what = 3) AS rt,
    any_value(b) FILTER (WHERE what = 5) AS bi,
    any_value(target - upto + c) FILTER (WHERE what = 5) AS ri,
    any_value(b) FILTER (WHERE what = 6) AS bo,
    any_value(target - upto + c) FILTER (WHERE what = 6) AS ro
  FROM running WHERE upto >= target AND upto - c < target
  GROUP BY ALL),
inside AS (  -- pass 2: the values of those buckets only, counted
  SELECT g.key_id, g.base_model, g.endpoint,
    histogram(CASE WHEN v.t // {width} = g.bt THEN v.t END) AS xt,
    histogram(CASE WHEN v.i // {width} = g.bi THEN v.i END) AS xi,
    histogram(CASE WHEN v.o // {width} = g.bo THEN v.o END) AS xo,
    any_value(g.rt) AS rt, any_value(g.ri) AS ri, any_value(g.ro) AS ro
  FROM v JOIN goal g ON """ + _same_workload("v", "g") + """
  WHERE v.t // {width} = g.bt OR v.i // {width} = g.bi OR v.o // {width} = g.bo
  GROUP BY g.key_id, g.base_model, g.endpoint),
picked AS (
  SELECT """ + _WORKLOAD + """, what, min(x) AS x FROM (
    SELECT *, """ + _RUNNING.format(x="x") + """ AS upto
    FROM (""" + _entries("inside", ("xt", "xi", "xo"), ("rt", "ri", "ro")) + """))
  WHERE upto >= r GROUP BY ALL)
SELECT w.key_id, w.base_model, w.endpoint,
  any_value(p.x) FILTER (WHERE p.what = 3) AS median_tokens_per_call,
  any_value(p.x) FILTER (WHERE p.what = 5) AS p90_input,
  any_value(p.x) FILTER (WHERE p.what = 6) AS p90_output,
  any_value(w.max_input) AS max_input,
  false AS all_endpoints, CAST(1 AS BIGINT) AS endpoints
FROM (SELECT """ + _WORKLOAD + """, max(max_input) AS max_input FROM h0 GROUP BY ALL) w
LEFT JOIN picked p ON """ + _same_workload("p", "w") + """
GROUP BY w.key_id, w.base_model, w.endpoint
"""
QUANTILES_BY_COUNTS_SQL = QUANTILES_BY_COUNTS_SQL.replace("{width}", str(QUANTILE_BUCKET))
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
