"""Repricing: every call priced both ways through ``priced_calls``, on 10M synthetic calls.

    python -m benchmarks --only pricing [--quick]

Builds a ledger in a temporary folder with the shipped price sheet and N calls spread over
the sheet's models (both variants, 4 % failed, some aggregated rows, Gemini calls above the
200k tier), then times (a) the totals of the three cost columns over all calls and (b)
materialising the whole view (every column of every call) into a table.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ingest.ledger import open_ledger
from pricing import load_prices

SHEET = Path(__file__).resolve().parents[1] / "data" / "prices.csv"

# Calls generated in SQL, so building 10M rows takes seconds and no Python loop.
FILL_SQL = """
INSERT INTO calls
SELECT 'b' || i AS call_id, 'demo' AS source,
    TIMESTAMPTZ '2025-07-01 00:00:00+00' + to_seconds(i * 13 % 31536000) AS started_at,
    100 + i % 900 AS latency_ms, NULL AS ttft_ms,
    'k1:' || (i % 500) AS key_id, NULL AS key_hint, NULL AS key_label, 'chat' AS endpoint,
    m.name || CASE WHEN i % 3 = 0 THEN '-c' ELSE '' END AS model, m.name AS base_model,
    CASE WHEN i % 3 = 0 THEN 'request' ELSE 'token' END AS billing_mode,
    false AS stream,
    CASE WHEN i % 25 = 0 THEN 429 ELSE 200 END AS status,
    CASE WHEN i % 50 = 0 THEN 20 ELSE 1 END AS requests,
    CASE WHEN i % 1000 = 0 THEN 250000 ELSE 200 + i % 6000 END AS input_tokens,
    (i % 4) * 100 AS cached_tokens, 50 + i % 1500 AS output_tokens, 0 AS reasoning_tokens,
    0 AS images, 0 AS characters, 0.0 AS audio_seconds, 'reported' AS usage_source,
    NULL AS charged, NULL AS tags, NULL AS image_size, NULL AS usage_flag
FROM range($n) t(i)
JOIN (SELECT row_number() OVER (ORDER BY name) - 1 AS k, name, count(*) OVER () AS models
      FROM (SELECT DISTINCT model AS name FROM prices WHERE model NOT LIKE '%-c'
            AND input IS NOT NULL AND output IS NOT NULL)) m
  ON m.k = i % m.models
"""

TOTALS_SQL = """
SELECT count(*), sum(cost), sum(cost_as_token), sum(cost_as_request),
    count(*) FILTER (WHERE cost IS NULL)
FROM priced_calls
"""


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def run(quick: bool = False) -> dict:
    n = 200_000 if quick else 10_000_000
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_ledger(str(Path(tmp) / "bench.duckdb"))
        load_prices(conn, SHEET)
        fill_s, _ = _timed(lambda: conn.execute(FILL_SQL, {"n": n}))
        totals_s, totals = _timed(lambda: conn.execute(TOTALS_SQL).fetchone())
        full_s, _ = _timed(lambda: conn.execute(
            "CREATE TABLE repriced AS SELECT * FROM priced_calls"))
        conn.close()
    calls, cost, _, _, unpriced = totals
    result = {
        "calls": calls,
        "build_calls_s": round(fill_s, 3),
        "reprice_totals_s": round(totals_s, 3),
        "reprice_materialise_all_columns_s": round(full_s, 3),
        "calls_per_s_totals": round(calls / totals_s),
        "unpriced_calls": unpriced,
        "total_cost": str(cost),
    }
    print(f"repriced {calls:,} calls: totals in {totals_s:.2f}s, every column in {full_s:.2f}s")
    return result


if __name__ == "__main__":
    import sys

    print(run(quick="--quick" in sys.argv))
