"""openai, openai-usage and litellm imports, format detection, and a finance user's three logs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from importers_helpers import SAMPLES, calls, rows, run_import, sample

from ingest.importers import FORMATS, detect_format
from ledger.errors import CallmeterError


@pytest.mark.parametrize("name, fmt", [
    ("newapi-log-page.json", "newapi"), ("newapi-log-page-2025.json", "newapi"),
    ("newapi-usage-log.csv", "newapi"),
    ("oneapi-log-page.json", "newapi"), ("openai-responses.jsonl", "openai"),
    ("openai-usage-export.json", "openai-usage"), ("litellm-spend-logs.json", "litellm"),
    ("litellm-spend-logs.csv", "litellm"), ("calls-generic.csv", "csv"),
])
def test_every_sample_is_detected_as_its_format(name, fmt):
    assert detect_format(SAMPLES / name, FORMATS).NAME == fmt


def test_openai_jsonl_normalises_usage_and_flags_totals(tmp_path):
    db = tmp_path / "l.duckdb"
    res = run_import(db, sample("openai-responses.jsonl", tmp_path))
    # 11 lines: one repeats the first completion, the last is torn
    assert (res.read, res.imported, res.duplicates, res.rejected) == (11, 9, 1, 1)
    assert res.rejections == [(11, "not valid JSON (a truncated or corrupted line)")]
    got = {r[0]: r[1:] for r in calls(db, "model, input_tokens, cached_tokens, output_tokens, "
                                          "reasoning_tokens, status, endpoint, usage_flag")}
    assert got["gpt-4o-2024-08-06"] == (1450, 1280, 12, 0, 200, "chat", None)
    assert got["o3-mini-2025-01-31"] == (320, 0, 900, 704, 200, "chat", None)
    assert got["gpt-4.1-mini"] == (2000, 1024, 300, 0, 200, "responses", None)
    assert got["text-embedding-3-small"] == (8, 0, 0, 0, 200, "embeddings", None)
    # Anthropic: input excludes cache reads and writes -> 50 + 4000 + 100
    assert got["claude-sonnet-4-20250514"] == (4150, 4000, 80, 0, 200, "messages",
                                               "anthropic_usage_normalised")
    # ... and its 100 cache-creation tokens are the cache writes the price sheet prices apart
    written = {r[0]: r[1] for r in calls(db, "model, cache_write_tokens")}
    assert written["claude-sonnet-4-20250514"] == 100 and written["gpt-4.1-mini"] == 0
    # Gemini: thinking tokens outside completion_tokens (total = 100 + 50 + 300)
    assert got["gemini-2.5-pro"] == (100, 0, 350, 300, 200, "chat", "reasoning_separate")
    assert got["gemini-2.5-flash-c"] == (100, 0, 50, 0, 200, "chat", "total_mismatch")
    assert got["gpt-4o"] == (0, 0, 0, 0, 429, "chat", None)
    assert got["dall-e-3"][5:] == ("images", None)
    assert rows(db, "SELECT images, image_size, billing_mode FROM calls WHERE model = 'dall-e-3'"
                ) == [(1, "1024x1024", "token")]
    assert rows(db, "SELECT latency_ms, key_label, stream, started_at::VARCHAR FROM calls "
                    "WHERE model LIKE 'o3%'") == [
        (5210, "研发-张三", True, "2025-03-10 01:26:00+00")]
    again = run_import(db, sample("openai-responses.jsonl", tmp_path))
    assert again.imported == 0


def test_openai_usage_export_one_row_per_bucket_group(tmp_path):
    db = tmp_path / "l.duckdb"
    res = run_import(db, sample("openai-usage-export.json", tmp_path))
    # 13 results: 7 calls, 3 billed cost lines, 2 skipped, 1 without a model
    assert (res.read, res.skipped, res.rejected, res.imported, res.adjustments) == (
        13, 2, 1, 7, 3)
    assert res.skipped_by == {"bucket group with no requests": 1,
                              "vector_stores result (not calls)": 1}
    assert "export the usage grouped by model" in res.rejections[0][1]
    assert calls(db, "model, endpoint, requests, input_tokens, cached_tokens, output_tokens, "
                     "images, characters, audio_seconds, key_id, tags['project'], "
                     "tags['service_tier']", order="model, requests") == [
        ("dall-e-3", "images", 12, 0, 0, 0, 14, 0, 0.0, "key_def456", "proj_rag", None),
        # grouped by service tier: two rows of the same bucket, model and key, not a duplicate
        ("gpt-4o-2024-08-06", "chat", 40, 300000, 0, 50000, 0, 0, 0.0, "key_abc123",
         "proj_search", "flex"),
        ("gpt-4o-2024-08-06", "chat", 812, 1500000, 600000, 220000, 0, 0, 0.0, "key_abc123",
         "proj_search", "default"),
        ("o3-mini-2025-01-31", "chat", 35, 90000, 0, 400000, 0, 0, 0.0, "key_abc123",
         "proj_search", None),
        ("text-embedding-3-small", "embeddings", 2100, 4000000, 0, 0, 0, 0, 0.0, "key_def456",
         "proj_rag", None),
        ("tts-1", "speech", 30, 0, 0, 0, 0, 45000, 0.0, "key_def456", "proj_rag", None),
        ("whisper-1", "transcriptions", 20, 0, 0, 0, 0, 0, 3600.0, "key_def456", "proj_rag",
         None),
    ]
    # the Costs API's lines are the invoice: money, not calls
    assert rows(db, "SELECT kind, amount, reason FROM adjustments ORDER BY amount") == [
        ("billed", Decimal("0.08"), "text-embedding-3-small"),
        ("billed", Decimal("2.45"), "gpt-4o-2024-08-06, output"),
        ("billed", Decimal("3"), "gpt-4o-2024-08-06, input"),
    ]
    again = run_import(db, sample("openai-usage-export.json", tmp_path))
    assert (again.imported, again.adjustments) == (0, 0)


def test_litellm_json_and_csv(tmp_path):
    db = tmp_path / "l.duckdb"
    res = run_import(db, sample("litellm-spend-logs.json", tmp_path))
    assert (res.read, res.imported, res.duplicates) == (8, 7, 1)
    assert calls(db, "call_id, model, billing_mode, requests, status, latency_ms, ttft_ms, "
                     "input_tokens, cached_tokens, reasoning_tokens, charged, key_label, "
                     "usage_source, usage_flag") == [
        ("chatcmpl-7f1e2d3c-aaaa-4bbb-8ccc-000000000001", "gpt-4o", "token", 1, 200, 4250, 790,
         1200, 1024, 0, Decimal("0.0031875"), "研发-张三", "reported", None),
        ("c0ffee00-1111-4222-8333-444455556666", "text-embedding-3-small", "token", 1, 200, 250,
         None, 100, 0, 0, Decimal("0.000002"), "bot-客服", "reported", None),
        ("err-0001", "claude-sonnet-4", "token", 1, 429, 1000, None, 0, 0, 0, Decimal(0), None,
         "reported", None),
        ("chatcmpl-gem-77", "gemini-2.5-pro-c", "request", 1, 200, 9000, None, 100, 0, 0,
         Decimal("0.02"), None, "reported", "total_mismatch"),
        # usage_object absent: cached and reasoning from metadata.additional_usage_values
        ("chatcmpl-o3-reason-01", "o3-mini", "token", 1, 200, 5210, None, 320, 256, 704,
         Decimal("0.0043"), None, "reported", None),
        # served from LiteLLM's cache: no provider call, no tokens, never a per-call price
        ("chatcmpl-7f1e2d3c-aaaa-4bbb-8ccc-000000000001_cache_hit1740816300.4117022", "gpt-4o",
         "token", 1, 200, 40, None, 0, 0, 0, Decimal(0), "研发-张三", "none",
         "response_cache_hit"),
        # a batch's cost row stands for its 500 + 2 requests
        ("batch_6810aa_batch_cost", "gpt-4o-mini", "token", 502, 200, 500, None, 1250000, 0, 0,
         Decimal("0.5625"), None, "reported", None),
    ]
    assert rows(db, "SELECT tags FROM calls WHERE call_id LIKE 'chatcmpl-7f1e%' "
                    "AND call_id NOT LIKE '%cache_hit%'") == [
        ({"urgent": "", "app": "chatbot", "user": "alice", "team": "search"},)]
    assert rows(db, "SELECT key_id FROM calls WHERE call_id = 'err-0001'")[0][0].startswith("0a1b")
    res = run_import(db, sample("litellm-spend-logs.csv", tmp_path))
    assert (res.read, res.imported, res.rejected) == (4, 2, 2)
    assert res.rejections[0] == (4, "field spend: 'abc' is not a number")
    assert rows(db, "SELECT endpoint, charged, cached_tokens FROM calls "
                    "WHERE call_id LIKE 'chatcmpl-csv%' ORDER BY 1") == [
        ("chat", Decimal("0.000615"), 256), ("images", Decimal("0.04"), 0)]


def test_a_litellm_cache_hit_is_priced_at_nothing(tmp_path):
    """The cache hit of a per-call model: a call, but priced as nothing was called."""
    from ledger.connect import open_ledger

    db = tmp_path / "l.duckdb"
    path = sample("litellm-spend-logs.json", tmp_path)
    run_import(db, path)
    sheet = tmp_path / "prices.csv"
    sheet.write_text("model,effective_from,input,cached_input,output,request\n"
                     "gpt-4o,2024-01-01,2.5,1.25,10,\ngpt-4o-c,2024-01-01,,,,0.02\n")
    from pricing.loader import load_prices

    conn = open_ledger(str(db))
    try:
        load_prices(conn, sheet)
        got = conn.execute("SELECT cost, charged FROM priced_calls "
                           "WHERE usage_flag = 'response_cache_hit'").fetchall()
    finally:
        conn.close()
    assert got == [(Decimal(0), Decimal(0))]


def test_a_finance_users_three_logs_land_in_one_ledger(tmp_path):
    db = tmp_path / "l.duckdb"
    for name in ("newapi-log-page.json", "litellm-spend-logs.json", "openai-usage-export.json"):
        run_import(db, sample(name, tmp_path))
    assert rows(db, "SELECT source, count(*), sum(requests), sum(charged) FROM calls "
                    "GROUP BY 1 ORDER BY 1") == [
        ("litellm", 7, 508, Decimal("0.5899895")),
        ("newapi", 8, 8, Decimal("0.127306")),     # 63653 quota ÷ 500,000
        ("openai-usage", 7, 3049, None),
    ]


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_files_never_crash_nor_invent_rows(tmp_path_factory, data):
    import duckdb

    tmp = tmp_path_factory.mktemp("fuzz")
    name, fmt = data.draw(st.sampled_from([
        ("openai-responses.jsonl", "openai"), ("openai-usage-export.json", "openai-usage"),
        ("litellm-spend-logs.json", "litellm"), ("litellm-spend-logs.csv", "litellm")]))
    raw = bytearray(sample(name, tmp).read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        if data.draw(st.booleans()):
            raw[pos] = data.draw(st.integers(0, 255))
        else:
            del raw[pos:pos + data.draw(st.integers(1, 200))]
    bad = tmp / name
    bad.write_bytes(bytes(raw))
    db = tmp / "l.duckdb"
    try:
        res = run_import(db, bad, fmt)
    except (CallmeterError, UnicodeError, duckdb.Error) as exc:
        assert str(exc)
        return
    assert res.imported <= res.read
    text = bad.read_bytes().decode("utf-8", errors="replace")
    for model, in rows(db, "SELECT DISTINCT model FROM calls"):
        assert model in text


_NEWAPI_HEADER = ("id,created_at,type,username,token_name,token_id,model_name,quota,prompt_tokens,"
                  "completion_tokens,use_time,is_stream,channel,group,request_id,other")
_LITELLM_HEADER = ("request_id,call_type,api_key,spend,total_tokens,prompt_tokens,"
                   "completion_tokens,startTime,endTime,completionStartTime,model,model_group,"
                   "user,metadata,request_tags,status,team_id,end_user")
_HASH = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"


def _newapi_row(n: int) -> str:  # 16 fields, like the header
    return (f"{n},{1740900000 + 60 * n},2,alice,lab,12,gpt-4o-mini,180,1000,50,2,true,4,default,"
            f"req-{n},{{}}")


def _litellm_row(n: int) -> str:  # 18 fields (the last, end_user, empty)
    return (f"chatcmpl-ragged-{n},acompletion,{_HASH},0.001,430,400,30,"
            f"2025-03-02 10:0{n}:00.000,2025-03-02 10:0{n}:02.500,,gpt-4o-mini,gpt-4o-mini,alice,"
            "{},[],success,team-1,")


@pytest.mark.parametrize("fmt, header, row, width", [
    ("newapi", _NEWAPI_HEADER, _newapi_row, 16),
    ("litellm", _LITELLM_HEADER, _litellm_row, 18),
])
def test_csv_rows_with_a_surplus_or_missing_field_are_rejected_by_line(tmp_path, fmt, header,
                                                                       row, width):
    # line 3 has one field too many, line 5 one too few (its last field dropped)
    lines = [header, row(1), row(2) + ",surplus", row(3), row(4).rsplit(",", 1)[0], row(5)]
    path = tmp_path / f"{fmt}-ragged.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "l.duckdb"
    res = run_import(db, path, fmt)
    reason = f"the row does not have the header's {width} fields"
    assert res.rejections == [(3, reason), (5, reason)]
    assert (res.read, res.imported, res.duplicates, res.rejected) == (5, 3, 0, 2)
    assert rows(db, "SELECT count(*) FROM calls") == [(3,)]
    rejected = res.rejected_file and open(res.rejected_file, encoding="utf-8").read()
    assert f"{path},3,the row does not have the header's {width} fields" in rejected
    assert f"{path},5," in rejected
    # the same file again adds nothing and reports the same two rows
    again = run_import(db, path, fmt)
    assert (again.imported, again.duplicates, again.rejected) == (0, 3, 2)
