"""Repricing: every call priced both ways through ``priced_calls``, on 10M synthetic calls.

    python -m benchmarks --only pricing [--quick]

Builds a ledger in a temporary folder with the shipped price sheet and N calls spread over
the sheet's models (both variants, 4 % failed, some aggregated rows, Gemini calls above the
200k tier), then times (a) the totals of the three cost columns over all calls and (b)
materialising the whole view (every column of every call) into a table.

Calls go in through the ledger's own insert path, which prices them on the way in (the cost
memo, pricing.memo). Repricing is then measured the way a user causes it: a changed price
sheet makes every memo stale, and the refresh reprices all calls in one UPDATE. Goal 6 of the
performance issue is the aggregate by key and model over all calls (≤ 1 s on 10M).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ledger import insert_new_calls
from ledger.connect import open_ledger
from pricing import load_prices
from pricing.memo import refresh_cost_memo

SHEET = Path(__file__).resolve().parents[1] / "data" / "prices.csv"

# Calls generated in SQL, so building 10M rows takes seconds and no Python loop.
FILL_SQL = """
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
    NULL AS charged, NULL AS tags, NULL AS image_size, NULL AS usage_flag,
    0 AS cache_write_tokens, 0 AS cache_write_long_tokens
FROM range($n) t(i)
JOIN (SELECT row_number() OVER (ORDER BY name) - 1 AS k, name, count(*) OVER () AS models
      FROM (SELECT DISTINCT model AS name FROM prices WHERE model NOT LIKE '%-c'
            AND input IS NOT NULL AND output IS NOT NULL)) m
  ON m.k = i % m.models
"""

BY_KEY_MODEL_SQL = """
SELECT key_id, base_model, count(*), sum(cost), sum(cost_as_token), sum(cost_as_request)
FROM priced_calls GROUP BY key_id, base_model
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
        fill_s, _ = _timed(lambda: insert_new_calls(conn, FILL_SQL, {"n": n},
                                                    dedupe_within=False))
        group_s, groups = _timed(lambda: conn.execute(BY_KEY_MODEL_SQL).fetchall())
        totals_s, totals = _timed(lambda: conn.execute(TOTALS_SQL).fetchone())
        # a price change: every memo is stale; priced_calls stays right and the refresh
        # reprices every call
        conn.execute("UPDATE prices SET output = output + 0.000000001 WHERE output IS NOT NULL")
        stale_s, _ = _timed(lambda: conn.execute(BY_KEY_MODEL_SQL).fetchall())
        reprice_s, _ = _timed(lambda: refresh_cost_memo(conn))
        full_s, _ = _timed(lambda: conn.execute(
            "CREATE TABLE repriced AS SELECT * FROM priced_calls"))
        conn.close()
    calls, cost, _, _, unpriced = totals
    result = {
        "calls": calls,
        "insert_and_price_s": round(fill_s, 3),
        "by_key_and_model_s": round(group_s, 3),
        "by_key_and_model_goal_met (<=1s on 10M)": (group_s <= 1.0) if not quick else "n/a",
        "groups": len(groups),
        "totals_s": round(totals_s, 3),
        "by_key_and_model_with_stale_memo_s": round(stale_s, 3),
        "reprice_all_after_price_change_s": round(reprice_s, 3),
        "materialise_all_columns_s": round(full_s, 3),
        "unpriced_calls": unpriced,
        "total_cost": str(cost),
    }
    print(f"{calls:,} calls: by key and model in {group_s:.2f}s; repriced all in "
          f"{reprice_s:.2f}s after a price change")
    return result


if __name__ == "__main__":
    import sys

    print(run(quick="--quick" in sys.argv))
