"""One pass over a period's calls for every recommendation (issue 20).

The engine used to scan the period's calls once per question (variant sums, medians, shapes,
workload days, cache, failures, estimated usage) and once more per cheaper-model candidate. Now
:func:`period_scan` sums the period's priced calls once into a TEMP table at the finest grain
any question needs (key x labels x model x endpoint x billing mode x UTC day x the per-call
conditions the questions filter on: success, 429, estimated usage, which variant is cheaper,
any input), and every figure is a sum of its sums: DECIMAL and integer sums of sums are exact,
so the figures are those of the per-question scans (tests/pricing/test_recommend_exact.py
compares them with the previous implementation). The quantiles of tokens per call are the one
thing sums cannot carry: a second, narrow pass over ``calls`` computes them per workload.

Why not the rollups: the per-call conditions (is this call cheaper per request?), the quantiles
and ``cache_write_long_tokens`` are not in them, and a rollup can be out of date when the CLI
runs; the rows a recommendation needs come from the calls instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import duckdb

from ledger import TEXT_ENDPOINTS, sql_literal

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
# filter on them drops exactly the calls the per-question WHERE clauses dropped.
_MEASURES = {name: expr for name, expr in RAW_MEASURES.items()
             if name not in ("token_calls", "request_calls")}
FINE_SQL = """
CREATE TEMP TABLE {name} AS
SELECT """ + KEY_REF_SQL + """ AS key_id, key_hint, key_label, base_model, endpoint,
  billing_mode, {tags}{day} AS day,
  status < 400 AS ok, status = 429 AS rate_limited, usage_source <> 'reported' AS estimated,
  cost_as_request < cost_as_token AS request_cheaper,
  cost_as_token < cost_as_request AS token_cheaper, input_tokens > 0 AS has_input,
  """ + ", ".join(f"{expr} AS {name}" for name, expr in _MEASURES.items()) + """,
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

# Tokens per call: the median per variant workload (key x base model, every endpoint) and the
# shape of a cheaper-model workload (key x base model x endpoint), in one pass.
QUANTILES_SQL = """
CREATE TEMP TABLE {name} AS
SELECT """ + KEY_REF_SQL + """ AS key_id, base_model, endpoint,
  grouping(endpoint) = 1 AS all_endpoints,
  quantile_disc((input_tokens + output_tokens) // greatest(requests, 1), 0.5)
    AS median_tokens_per_call,
  quantile_disc(input_tokens // greatest(requests, 1), 0.9) AS p90_input,
  quantile_disc(output_tokens // greatest(requests, 1), 0.9) AS p90_output,
  max(input_tokens // greatest(requests, 1)) AS max_input
FROM calls WHERE started_at >= ? AND started_at < ?
GROUP BY GROUPING SETS ((""" + KEY_REF_SQL + """, base_model),
                        (""" + KEY_REF_SQL + """, base_model, endpoint))
"""


@dataclass(frozen=True)
class PeriodScan:
    """The TEMP tables of one period: ``fine`` (sums at the finest grain), ``quantiles``
    (tokens per call per workload); ``source`` is the priced relation they came from;
    ``tagged``: the fine table also has the calls' ``tags`` (for per-tag workloads)."""

    fine: str
    quantiles: str
    source: str
    start: datetime
    end: datetime
    tagged: bool = False

    @property
    def period(self) -> list[datetime]:
        return [self.start, self.end]


@contextmanager
def period_scan(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound, *,
                tags: bool = False) -> Iterator[PeriodScan]:
    """Sum [since, until)'s calls once (TEMP tables, dropped on exit); with ``tags``, per
    distinct ``tags`` map too (costs hashing the maps: only for per-tag workloads)."""
    start, end = utc_start(since), utc_start(until)
    tag = uuid.uuid4().hex[:12]
    scan = PeriodScan(f"_rec_fine_{tag}", f"_rec_quantiles_{tag}",
                      priced_source(conn, start, end), start, end, tags)
    try:
        conn.execute(FINE_SQL.format(name=scan.fine, source=scan.source,
                                     tags="tags, " if tags else "",
                                     day=UTC_DAY_SQL.format(col="started_at")), scan.period)
        conn.execute(QUANTILES_SQL.format(name=scan.quantiles), scan.period)
        yield scan
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {scan.fine}")
        conn.execute(f"DROP TABLE IF EXISTS {scan.quantiles}")
