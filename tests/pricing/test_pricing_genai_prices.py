"""List-price costs from the shipped sheet agree with genai-prices for a sample of models."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price
from pricing_helpers import add_call, costs

from ledger.connect import open_ledger
from pricing import load_prices

# (model as called, genai-prices ref, provider, call time, input, cached, output[, cache
# writes, of which 1-hour])
SAMPLE = [
    ("gpt-4o", "gpt-4o", "openai", "2026-10-01T10:00:00", 12_345, 2_048, 789),
    ("gpt-4o-mini", "gpt-4o-mini", "openai", "2026-10-01T10:00:00", 100_000, 50_000, 3_000),
    ("gpt-4.1", "gpt-4.1", "openai", "2026-10-01T10:00:00", 7_000, 0, 1_500),
    ("gpt-5", "gpt-5", "openai", "2026-10-01T10:00:00", 30_000, 20_000, 9_000),
    ("o3", "o3", "openai", "2025-07-01T10:00:00", 5_000, 1_000, 20_000),
    ("o3", "o3", "openai", "2025-05-01T10:00:00", 5_000, 0, 20_000),  # before the price drop
    ("o4-mini", "o4-mini", "openai", "2026-10-01T10:00:00", 1_234, 567, 890),
    ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet", "anthropic", "2026-10-01T10:00:00",
     40_000, 30_000, 2_000),
    ("claude-3-opus", "claude-3-opus", "anthropic", "2026-10-01T10:00:00", 1_000, 0, 1_000),
    ("gemini-2.5-pro", "gemini-2.5-pro", "google", "2026-10-01T10:00:00", 150_000, 10_000,
     4_000),
    ("gemini-2.5-pro", "gemini-2.5-pro", "google", "2026-10-01T10:00:00", 250_000, 100_000,
     4_000),  # above the 200k tier
    ("gemini-2.5-flash", "gemini-2.5-flash", "google", "2026-10-01T10:00:00", 9_999, 999, 99),
    ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite", "google", "2026-10-01T10:00:00",
     500_000, 0, 50_000),
    ("text-embedding-3-small", "text-embedding-3-small", "openai", "2026-10-01T10:00:00",
     8_000, 0, 0),
    ("text-embedding-3-large", "text-embedding-3-large", "openai", "2026-10-01T10:00:00",
     8_000, 0, 0),
    # prompt-cache writes: 5-minute at 1.25x input, 1-hour at 2x (Claude Code's long calls)
    ("claude-sonnet-4-5", "claude-sonnet-4-5", "anthropic", "2026-10-01T10:00:00", 5_202,
     4_644, 64, 552, 152),
    ("claude-sonnet-4-5", "claude-sonnet-4-5", "anthropic", "2026-10-01T10:00:00", 250_000,
     180_000, 2_000, 60_000, 0),  # above the 200k tier
    ("claude-haiku-4-5", "claude-haiku-4-5", "anthropic", "2026-10-01T10:00:00", 30_000, 0,
     500, 30_000, 30_000),
    ("claude-opus-4-5", "claude-opus-4-5", "anthropic", "2026-10-01T10:00:00", 90_000,
     70_000, 3_000, 10_000, 2_500),
    ("claude-3-7-sonnet", "claude-3-7-sonnet", "anthropic", "2025-10-01T10:00:00", 12_000,
     0, 800, 11_000, 0),
]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    conn = open_ledger(str(tmp_path_factory.mktemp("gp") / "ledger.duckdb"))
    load_prices(conn, "data/prices.csv")
    yield conn
    conn.close()


@pytest.mark.parametrize("case", SAMPLE, ids=[f"{s[0]}-{s[3][:10]}-{s[4]}" for s in SAMPLE])
def test_cost_matches_genai_prices(shipped, case):
    model, ref, provider, when, inp, cached, out, *writes = case
    write, write_long = writes or (0, 0)
    cid = f"{model}-{when}-{inp}"
    add_call(shipped, cid, model, when + "+00:00", input=inp, cached=cached, output=out,
             write=write, write_long=write_long)
    ours = costs(shipped, cid)["cost"]
    usage = Usage(input_tokens=inp, cache_read_tokens=cached, output_tokens=out,
                  cache_write_tokens=write, cache_write_1h_tokens=write_long)
    theirs = calc_price(usage, ref, provider_id=provider,
                        genai_request_timestamp=datetime.fromisoformat(when).replace(tzinfo=UTC)
                        ).total_price
    assert ours == theirs, f"{model}: ours {ours}, genai-prices {theirs}"


def test_media_models_match_genai_prices(shipped):
    add_call(shipped, "tts", "tts-1", "2026-10-01 10:00:00+00", characters=12_345)
    add_call(shipped, "asr", "whisper-1", "2026-10-01 10:00:00+00", audio_seconds=600)
    when = datetime(2026, 10, 1, 10, tzinfo=UTC)
    tts = calc_price(Usage(input_characters=12_345), "tts-1", provider_id="openai",
                     genai_request_timestamp=when).total_price
    asr = calc_price(Usage(audio_seconds=600), "whisper-1", provider_id="openai",
                     genai_request_timestamp=when).total_price
    assert costs(shipped, "tts")["cost"] == tts == Decimal("0.185175")
    assert costs(shipped, "asr")["cost"] == asr == Decimal("0.06")
