"""Recommendations on constructed ledgers whose right answer is known by hand.

Prices (per 1M tokens): gpt-4o 2.50 in / 10 out, gpt-4o-c 0.01 per call; gpt-4o-mini 0.15 / 0.60;
qwen-max 1.60 / 6.40 and no qwen-max-c; gemini-2.5-flash priced, deepseek-chat unpriced.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.connect import open_ledger
from pricing.recommend import (
    Thresholds,
    cache_economics,
    cheaper_models,
    estimated_usage_share,
    failed_call_waste,
    recommend,
    variant_switches,
    variant_workloads,
    workload_cost_at,
)

SINCE, UNTIL = "2025-03-03", "2025-03-31"  # four Monday-to-Sunday weeks

ADD_CALLS_SQL = """
INSERT INTO calls (call_id, source, started_at, key_id, key_hint, endpoint, model, base_model,
                   billing_mode, stream, status, requests, input_tokens, cached_tokens,
                   output_tokens, reasoning_tokens, images, characters, audio_seconds,
                   usage_source, latency_ms)
SELECT ? || i, 'csv',
       TIMESTAMPTZ '2025-03-03 09:00:00+00' + to_days(7 * (i % ?)) + to_minutes(i // ?),
       ?, ?, ?, ?, regexp_replace(?, '-c$', ''),
       CASE WHEN ? LIKE '%-c' THEN 'request' ELSE 'token' END,
       false, ?, 1, ?, ?, ?, ?, 0, 0, 0, ?, ?
FROM range(?) t(i)
"""


def add_calls(conn, key, model, n, inp, out, *, weeks=4, status=200, cached=0, reasoning=0,
              usage="reported", latency=1000, endpoint="chat"):
    prefix = f"{key}/{model}/{status}/{inp}/{usage}/"
    conn.execute(ADD_CALLS_SQL, [prefix, weeks, weeks, key, f"sk-…{key[-4:]}", endpoint, model,
                                 model, model, status, inp, cached, out, reasoning, usage,
                                 latency, n])


def add_price(conn, model, **p):
    row = {"model": model, "effective_from": "2020-01-01", **p}
    conn.execute(f"INSERT INTO prices ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                 list(row.values()))


@pytest.fixture
def conn(tmp_path):
    c = open_ledger(str(tmp_path / "r.duckdb"))
    add_price(c, "gpt-4o", input=Decimal("2.5"), cached_input=Decimal("1.25"), output=10)
    add_price(c, "gpt-4o-c", request=Decimal("0.01"))
    add_price(c, "gpt-4o-mini", input=Decimal("0.15"), output=Decimal("0.6"))
    add_price(c, "qwen-max", input=Decimal("1.6"), output=Decimal("6.4"))
    add_price(c, "gemini-2.5-flash", input=Decimal("0.3"), output=Decimal("2.5"))
    yield c
    c.close()


def by_key(recs, kind):
    return {r.key_id: r for r in recs if r.kind == kind}


def test_variant_switch_long_calls_move_to_c(conn):
    # 400 calls of 10,000 in + 500 out: 0.025 + 0.005 = 0.03 each per token, 0.01 per request.
    add_calls(conn, "key-long", "gpt-4o", 400, 10_000, 500)
    # short calls on gpt-4o: 200 in + 50 out = 0.001 per call, already the cheaper variant
    add_calls(conn, "key-short", "gpt-4o", 400, 200, 50)
    # short calls on gpt-4o-c: 400 × 0.01 = 4.00 paid, 0.40 per token: saving 3.60 < 5
    add_calls(conn, "key-small", "gpt-4o-c", 400, 200, 50)
    recs = by_key(variant_switches(conn, SINCE, UNTIL), "switch_variant")
    assert set(recs) == {"key-long"}
    r = recs["key-long"]
    assert r.saving == Decimal("8.00")  # 12.00 paid − 4.00
    assert r.action == "call gpt-4o-c instead of gpt-4o"
    assert r.details["share_request_cheaper"] == 1
    assert r.confidence == "high" and r.details["weeks_favourable"] == 4
    wl = variant_workloads(conn, SINCE, UNTIL).set_index("key_id")
    assert wl.loc["key-small", "saving"] == Decimal("3.6")
    assert wl.loc["key-small", "best_mode"] == "token"
    assert wl.loc["key-short", "saving"] == 0


def test_boundary(conn):
    # break-even exactly: 4,000 input tokens × 2.50/1M = 0.01 = the per-request price
    add_calls(conn, "key-even", "gpt-4o", 400, 4_000, 0)
    # saving exactly at the threshold: 250 × (0.03 − 0.01) = 5.00 ≥ min_saving 5 → recommended
    add_calls(conn, "key-edge", "gpt-4o", 250, 10_000, 500)
    recs = by_key(variant_switches(conn, SINCE, UNTIL, Thresholds(min_saving=Decimal(5))),
                  "switch_variant")
    assert set(recs) == {"key-edge"} and recs["key-edge"].saving == Decimal("5.00")
    stricter = Thresholds(min_saving=Decimal("5.01"))
    assert variant_switches(conn, SINCE, UNTIL, stricter) == []


def test_unpriced_alternative_never_suggested(conn):
    # qwen-max has no -c price: long calls that would suit a per-request variant get nothing
    add_calls(conn, "key-qwen", "qwen-max", 400, 50_000, 1_000)
    assert variant_switches(conn, SINCE, UNTIL) == []
    wl = variant_workloads(conn, SINCE, UNTIL).iloc[0]
    assert wl["as_request"] is None and not wl["priced"]


def test_mixed_weeks_lower_confidence(conn):
    # three weeks of long calls, one week of very short ones on gpt-4o
    add_calls(conn, "key-mix", "gpt-4o", 300, 10_000, 500, weeks=3)
    conn.execute("INSERT INTO calls (call_id, started_at, key_id, endpoint, model, base_model, "
                 "billing_mode, status, requests, input_tokens, cached_tokens, output_tokens, "
                 "reasoning_tokens, images, characters, audio_seconds) "
                 "SELECT 'short' || i, TIMESTAMPTZ '2025-03-24 10:00:00+00' + to_minutes(i), "
                 "'key-mix', 'chat', 'gpt-4o', 'gpt-4o', 'token', 200, 1, 100, 0, 0, 0, 0, 0, 0 "
                 "FROM range(500) t(i)")
    [r] = variant_switches(conn, SINCE, UNTIL, Thresholds(min_saving=Decimal(1)))
    # 300 × 0.02 saved on long calls, 500 × (0.01 − 0.00025) lost on short ones
    assert r.saving == Decimal("6.00") - Decimal("4.875")
    assert r.details["weeks_favourable"] == 3 and r.details["weeks"] == 4
    assert r.confidence == "medium"


def test_cheaper_model_simple_calls(conn):
    # gpt-4o simple calls: 400 × (1,000 in + 200 out) = 400 × 0.0045 = 1.80 → too small
    add_calls(conn, "key-simple", "gpt-4o", 4000, 1_000, 200)   # 18.00 paid
    add_calls(conn, "key-reason", "gpt-4o", 4000, 1_000, 200, reasoning=100)
    add_calls(conn, "key-big", "gpt-4o", 4000, 30_000, 200)      # not simple: long inputs
    recs = cheaper_models(conn, SINCE, UNTIL)
    assert {r.key_id for r in recs} == {"key-simple"}
    got = {r.details["candidate"]: r.saving for r in recs}
    # same family one tier down: gpt-4o-mini 4000 × (1000×0.15 + 200×0.6)/1M = 1.08
    assert got["gpt-4o-mini"] == Decimal("18.00") - Decimal("1.08")
    # other families at tier 2: gemini-2.5-flash 4000 × (1000×0.3 + 200×2.5)/1M = 3.20;
    # qwen-max (1000×1.6 + 200×6.4)/1M × 4000 = 11.52 is dearer; deepseek-chat has no price
    assert got["gemini-2.5-flash"] == Decimal("18.00") - Decimal("3.20")
    assert "deepseek-chat" not in got
    assert all("quality" in r.caveat for r in recs)


def test_repricing_twin_agrees_with_priced_calls(conn):
    add_calls(conn, "key-a", "gpt-4o", 37, 12_345, 678, cached=2_000)
    add_calls(conn, "key-a", "gpt-4o", 5, 12_345, 678, status=500)
    own = workload_cost_at(conn, "key-a", "gpt-4o", "chat", SINCE, UNTIL, "gpt-4o")
    view = conn.execute("SELECT sum(cost_as_token) FROM priced_calls WHERE key_id = 'key-a'"
                        ).fetchone()[0]
    assert own == view
    as_c = workload_cost_at(conn, "key-a", "gpt-4o", "chat", SINCE, UNTIL, "gpt-4o", "request")
    assert as_c == Decimal("0.37")


def test_other_money(conn):
    add_calls(conn, "key-cache", "gpt-4o", 1000, 10_000, 0, cached=2_000)
    add_calls(conn, "key-429", "gpt-4o", 50, 1000, 0, status=429, weeks=1, latency=200)
    add_calls(conn, "key-est", "gpt-4o", 100, 10_000, 0, usage="estimated")
    cache = cache_economics(conn, SINCE, UNTIL).set_index("key_id").loc["key-cache"]
    assert cache["cached_share"] == pytest.approx(0.2)
    # 2,000,000 cached tokens × (2.50 − 1.25)/1M = 2.50 saved
    assert cache["saving_realised"] == Decimal("2.5")
    # 10% of 10,000,000 input × 1.25/1M = 1.25
    assert cache["saving_per_10pct_more_cached"] == Decimal("1.25")
    waste = failed_call_waste(conn, SINCE, UNTIL).set_index("key_id").loc["key-429"]
    assert waste["rate_limited"] == 50 and waste["seconds_wasted"] == 10
    assert waste["peak_429_per_minute"] == 1
    est = estimated_usage_share(conn, SINCE, UNTIL).set_index("key_id").loc["key-est"]
    assert est["estimated_share"] == 1 and est["estimated_spend"] == Decimal("2.5")
    recs = recommend(conn, SINCE, UNTIL, Thresholds(min_saving=Decimal(1)))
    kinds = {(r.kind, r.key_id) for r in recs}
    assert ("prompt_cache", "key-cache") in kinds
    assert ("rate_limits", "key-429") in kinds
    assert ("estimated_usage", "key-est") in kinds
    savings = [r.saving for r in recs if r.saving is not None]
    assert savings == sorted(savings, reverse=True)
