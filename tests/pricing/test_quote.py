"""Issue 19, point 5: `callmeter quote` prices a planned workload per token, per request and on
cheaper models, with the break-even, by the same formula as recorded calls."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.connect import open_ledger
from pricing import load_prices
from pricing.quote import Workload, quote
from pricing.recommend import load_models

ROOT = Path(__file__).resolve().parents[2]
MODELS = load_models(str(ROOT / "data" / "models.csv"))


@pytest.fixture(scope="module")
def conn():
    c = open_ledger(":memory:")
    load_prices(c, ROOT / "data" / "prices.csv")
    yield c
    c.close()


def test_hand_computed_quote(conn):
    # gpt-4o from 2024-10-02: 2.5 in, 1.25 cached, 10 out per 1M; gpt-4o-c 0.01 a call
    q = quote(conn, Workload("gpt-4o", 100_000, 1200, 300, Decimal("0.5"), date(2025, 6, 1)),
              MODELS)
    asked, other = q.options[:2]
    assert (asked.model, asked.cost) == ("gpt-4o", Decimal(150 + 75 + 300))
    assert (other.model, other.cost) == ("gpt-4o-c", Decimal(1000))
    assert asked.per_call == Decimal("0.00525")
    be = q.break_even
    # 525 / 150M tokens = 3.5e-6 a token; 0.01 / 3.5e-6 = 2857.14 tokens per call
    assert be["break_even_tokens"] == 2857 and be["cheaper_mode"] == "token"
    assert be["saving"] == Decimal(475) and q.currency == "USD"
    # candidates: the recommendations' rule, only those with a cheaper variant, cheapest first
    cands = q.options[2:]
    assert cands and all(min(o.cost for o in cands if o.model.removesuffix("-c") == c.model
                             .removesuffix("-c")) < asked.cost for c in cands)
    firsts = [o.cost for o in cands if o.billing_mode == "token"]
    assert {o.model for o in cands} >= {"gpt-4o-mini", "gpt-4o-mini-c"}
    assert "claude-3-opus" not in {o.model for o in cands}  # dearer: not a candidate
    assert firsts[0] <= asked.cost


def test_cache_writes_in_a_quote(conn):
    # claude-sonnet-4-5: 3 in, 0.3 cached, 3.75 five-minute and 6 one-hour writes, 15 out per
    # 1M; -c 0.0135 a call. 1000 calls of 10k in (60% read, 30% written, 10% for 1 hour) and
    # 500 out: 1M × 3 + 6M × 0.3 + 2M × 3.75 + 1M × 6 + 0.5M × 15 = 3 + 1.8 + 7.5 + 6 + 7.5
    w = Workload("claude-sonnet-4-5", 1000, 10_000, 500, Decimal("0.6"), date(2026, 1, 1),
                 Decimal("0.3"), Decimal("0.1"))
    q = quote(conn, w, MODELS)
    assert [(o.model, o.cost) for o in q.options[:2]] == [
        ("claude-sonnet-4-5", Decimal("25.8")), ("claude-sonnet-4-5-c", Decimal("13.5"))]
    # 13.5 / 1000 a call ÷ (25.8 / 10.5M a token) = 5494.19 tokens per call
    assert q.break_even["break_even_tokens"] == 5494
    assert q.break_even["cache_write_share"] == Decimal("0.3")
    without = quote(conn, Workload("claude-sonnet-4-5", 1000, 10_000, 500, Decimal("0.6"),
                                   date(2026, 1, 1)))
    assert without.options[0].cost == Decimal("3") * 4 + Decimal("1.8") + Decimal("7.5")
    with pytest.raises(ValueError, match="part of the cache-write share"):
        quote(conn, Workload("claude-sonnet-4-5", 1, 10, 1, cache_write_share=Decimal("0.1"),
                             cache_write_long_share=Decimal("0.2")))


def test_price_date_and_tiers(conn):
    # deepseek-chat: 0.27/1.1 from 2025-02-09, 0.56/1.68 from 2025-09-06 (no cache here)
    before = quote(conn, Workload("deepseek-chat", 10, 1000, 1000, on=date(2025, 9, 5)))
    after = quote(conn, Workload("deepseek-chat", 10, 1000, 1000, on=date(2025, 9, 6)))
    assert before.options[0].cost == Decimal("0.0137")
    assert after.options[0].cost == Decimal("0.0224")
    # gemini-2.5-pro above 200k input tokens a call: 2.5 / 15 instead of 1.25 / 10
    big = quote(conn, Workload("gemini-2.5-pro-c", 4, 250_000, 300, on=date(2025, 9, 1)))
    assert big.options[1].model == "gemini-2.5-pro"
    assert big.options[1].cost == 4 * (Decimal("0.625") + Decimal("0.0045"))
    assert big.options[0].cost == Decimal("0.03") and big.break_even["cheaper_mode"] == \
        "request"


def test_unpriced_model_is_unpriced_not_zero(conn):
    q = quote(conn, Workload("mystery-model", 10, 100, 100), MODELS)
    assert [o.cost for o in q.options] == [None, None]
    assert q.break_even is None and len(q.notes) == 2
    with pytest.raises(ValueError):
        quote(conn, Workload("gpt-4o", 0, 1, 1))
    with pytest.raises(ValueError):
        quote(conn, Workload("gpt-4o", 1, 1, 1, Decimal("1.5")))


CALLS_SQL = """
INSERT INTO calls (call_id, source, started_at, endpoint, model, base_model, billing_mode,
  stream, status, requests, input_tokens, cached_tokens, output_tokens, reasoning_tokens,
  images, characters, audio_seconds, usage_source)
SELECT 'q' || i, 'csv', ?, 'chat', ?, ?, ?, false, 200, 1, ?, ?, ?, 0, 0, 0, 0, 'reported'
FROM range(?) t(i)
"""
PRICED_MODELS = ["gpt-4o", "gpt-4o-c", "gemini-2.5-pro", "gemini-2.5-pro-c", "qwen-plus",
                 "deepseek-chat-c", "o3", "qwen3-235b-a22b"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(model=st.sampled_from(PRICED_MODELS), calls=st.integers(1, 30),
       inp=st.integers(0, 400_000), out=st.integers(0, 20_000),
       cached_pct=st.integers(0, 100), day=st.dates(date(2025, 1, 1), date(2026, 6, 1)))
def test_quote_equals_priced_calls_for_the_same_calls(conn, model, calls, inp, out, cached_pct,
                                                      day):
    """Differential: N recorded calls of the planned size cost what the quote says."""
    cached_each = inp * cached_pct // 100
    w = Workload(model, calls, inp, out, Decimal(cached_each) / inp if inp else Decimal(0),
                 day)
    q = quote(conn, w)
    base = model.removesuffix("-c")
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    conn.execute("DELETE FROM calls")
    conn.execute(CALLS_SQL, [at, model, base, "request" if model.endswith("-c") else "token",
                             inp, cached_each, out, calls])
    recorded = conn.execute("SELECT sum(cost) FROM priced_calls").fetchone()[0]
    assert w.cached_tokens == calls * cached_each
    assert q.options[0].cost == recorded


def test_cli_quote(tmp_path):
    done = subprocess.run([sys.executable, "-m", "callmeter.cli", "quote", "--model",
                           "gpt-4o-mini", "--calls", "1000", "--input", "500", "--output", "50",
                           "--json", "--db", str(tmp_path / "none.duckdb")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    # 500k in × 0.15 + 50k out × 0.6 per 1M = 0.075 + 0.03; the -c variant 1000 × 0.0006
    assert Decimal(doc["options"][0]["cost"]) == Decimal("0.105")
    assert Decimal(doc["options"][1]["cost"]) == Decimal("0.6")
    assert "data/prices.csv" in doc["prices"]
    bad = subprocess.run([sys.executable, "-m", "callmeter.cli", "quote", "--model", "gpt-4o",
                          "--calls", "10", "--input", "5", "--output", "5", "--cached-share",
                          "2", "--db", str(tmp_path / "none.duckdb")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "cached share" in bad.stderr
    written = subprocess.run([sys.executable, "-m", "callmeter.cli", "quote", "--model",
                              "claude-sonnet-4-5", "--calls", "1000", "--input", "10000",
                              "--output", "500", "--cached-share", "0.6", "--cache-write-share",
                              "0.3", "--cache-write-long-share", "0.1", "--json", "--db",
                              str(tmp_path / "none.duckdb")], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    assert written.returncode == 0, written.stderr
    assert Decimal(json.loads(written.stdout)["options"][0]["cost"]) == Decimal("25.8")
