"""Anthropic Messages, OpenAI Responses and Gemini native through the proxy, with the real
Anthropic SDK, the real OpenAI SDK's Responses API, google-genai and httpx: every client gets the
stand-in's answer unchanged, and each call's ledger row carries the tokens the stand-in reported,
normalised to the ledger's meaning (cached ⊆ input, cache writes ⊆ input, reasoning ⊆ output)."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from proxy_helpers import PROXY_TEST_KEY

BEHAVIOUR = "X-Upstream-Behaviour"
HI = [{"role": "user", "content": "Hi"}]
TEXT = "Hello from the stand-in"


def tokens(row: dict) -> dict:
    return {k: row[k] for k in ("input_tokens", "cached_tokens", "cache_write_tokens",
                                "cache_write_long_tokens", "output_tokens", "reasoning_tokens")}


def expected(inp: int, out: int, cached: int = 0, write: int = 0, write_long: int = 0,
             reasoning: int = 0) -> dict:
    return {"input_tokens": inp, "cached_tokens": cached, "cache_write_tokens": write,
            "cache_write_long_tokens": write_long, "output_tokens": out,
            "reasoning_tokens": reasoning}


def only(rows: list[dict]) -> dict:
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture
def claude(proxy):
    return anthropic.Anthropic(base_url=proxy.origin, api_key=PROXY_TEST_KEY, max_retries=0,
                               timeout=20)


# Claude Code's call of the issue: 5,202 input tokens of which 4,644 read from the cache
CLAUDE_CODE_CALL = "input_tokens=6;cache_read=4644;cache_write_5m=400;cache_write_1h=152;" \
                   "output_tokens=64"
CLAUDE_CODE_ROW = expected(6 + 4644 + 552, 64, cached=4644, write=552, write_long=152)


def test_anthropic_stream_merges_message_start_and_message_delta(claude, ledger_rows):
    with claude.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=HI,
                                extra_headers={BEHAVIOUR: CLAUDE_CODE_CALL}) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == TEXT
    assert (final.usage.cache_read_input_tokens, final.usage.output_tokens) == (4644, 64)
    row = only(ledger_rows())
    assert tokens(row) == CLAUDE_CODE_ROW
    assert (row["endpoint"], row["model"], row["stream"]) == ("messages", "claude-sonnet-4-5",
                                                              True)
    assert (row["usage_source"], row["usage_flag"]) == ("reported", None)
    assert row["key_hint"] == "sk-…wxyz"  # x-api-key is the key


def test_anthropic_cache_writes_in_metrics(claude, proxy):
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=HI,
                           extra_headers={BEHAVIOUR: CLAUDE_CODE_CALL})
    metrics = httpx.get(proxy.origin + "/metrics").text
    for kind, value in (("input", 5202), ("cached", 4644), ("cache_write", 552)):
        assert (f'callmeter_proxy_tokens_total{{kind="{kind}",model="claude-sonnet-4-5"}} '
                f"{value}.0") in metrics
    assert 'endpoint="messages"' in metrics


def test_anthropic_raw_stream_and_plain_message_agree(claude, ledger_rows):
    events = claude.messages.create(model="claude-opus-4-1", max_tokens=100, messages=HI,
                                    stream=True, extra_headers={
                                        BEHAVIOUR: CLAUDE_CODE_CALL + ";delta_usage=full"})
    assert [e.type for e in events][-2:] == ["message_delta", "message_stop"]
    message = claude.messages.create(model="claude-opus-4-1", max_tokens=100, messages=HI,
                                     extra_headers={BEHAVIOUR: CLAUDE_CODE_CALL})
    assert message.content[0].text == TEXT
    rows = ledger_rows()
    assert [tokens(r) for r in rows] == [CLAUDE_CODE_ROW, CLAUDE_CODE_ROW]
    assert [r["stream"] for r in rows] == [True, False]


def test_anthropic_thinking_and_server_tools(claude, ledger_rows):
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=HI, extra_headers={
        BEHAVIOUR: "input_tokens=100;output_tokens=300;thinking=220;web_search=3"})
    row = only(ledger_rows())
    assert tokens(row) == expected(100, 300, reasoning=220)
    assert row["usage_flag"] == "web_search_requests=3"


def test_anthropic_cut_stream_keeps_input_and_counts_streamed_text(claude, ledger_rows):
    got: list[str] = []
    with pytest.raises(Exception, match="incomplete chunked read"):  # the SDK's httpx error
        with claude.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=HI,
                                    extra_headers={BEHAVIOUR: CLAUDE_CODE_CALL + ";cut_after=3"}
                                    ) as stream:
            got.extend(stream.text_stream)
    assert "".join(got) == "Hello from the"
    row = only(ledger_rows())
    assert row["usage_flag"] == "interrupted"
    assert (row["input_tokens"], row["cached_tokens"], row["cache_write_tokens"]) == (
        5202, 4644, 552)
    assert row["output_tokens"] >= 3  # "Hello from the" counted locally, not message_start's 1


def test_count_tokens_and_head_probe_are_not_billable(claude, proxy, ledger_rows):
    counted = claude.messages.count_tokens(model="claude-sonnet-4-5", messages=HI,
                                           extra_headers={BEHAVIOUR: "input_tokens=5202"})
    assert counted.input_tokens == 5202
    probe = httpx.head(proxy.origin + "/")
    rows = ledger_rows()
    assert [(r["endpoint"], r["model"], r["input_tokens"]) for r in rows] == [
        ("count_tokens", "claude-sonnet-4-5", 0), ("probe", None, 0)]
    assert rows[1]["status"] == probe.status_code


@pytest.fixture
def oai(proxy):
    return openai.OpenAI(base_url=proxy.url, api_key=PROXY_TEST_KEY, max_retries=0, timeout=20)


RESPONSES_CALL = "input_tokens=1200;cached=800;cache_write=300;cache_write_12h=100;" \
                 "output_tokens=90;reasoning=40"
RESPONSES_ROW = expected(1200, 90, cached=800, write=300, write_long=100, reasoning=40)


def test_responses_plain_stream_and_helper(oai, ledger_rows):
    extra = {BEHAVIOUR: RESPONSES_CALL}
    plain = oai.responses.create(model="gpt-5", input="Hi", extra_headers=extra)
    assert plain.output_text == TEXT and plain.usage.input_tokens_details.cached_tokens == 800
    events = list(oai.responses.create(model="gpt-5", input="Hi", stream=True,
                                       extra_headers=extra))
    assert events[-1].type == "response.completed"
    with oai.responses.stream(model="gpt-5", input="Hi", extra_headers=extra) as stream:
        streamed = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert streamed == TEXT and final.usage.output_tokens == 90
    rows = ledger_rows()
    assert [tokens(r) for r in rows] == [RESPONSES_ROW] * 3
    assert [(r["endpoint"], r["stream"], r["usage_source"]) for r in rows] == [
        ("responses", False, "reported"), ("responses", True, "reported"),
        ("responses", True, "reported")]


@pytest.mark.parametrize("end", ["incomplete", "failed"])
def test_responses_stream_ending_incomplete_or_failed_still_counted(oai, ledger_rows, end):
    events = list(oai.responses.create(model="gpt-5", input="Hi", stream=True, extra_headers={
        BEHAVIOUR: f"input_tokens=500;output_tokens=16;end={end}"}))
    assert events[-1].type == f"response.{end}"
    row = only(ledger_rows())
    assert tokens(row) == expected(500, 16)


GEMINI_CALL = "prompt_tokens=1000;candidates=50;thoughts=200;cached_content=600;tool_prompt=30"
GEMINI_ROW = expected(1030, 250, cached=600, reasoning=200)
GEMINI_HEADERS = {"x-goog-api-key": PROXY_TEST_KEY, BEHAVIOUR: GEMINI_CALL}
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def test_gemini_native_plain_and_streams_with_httpx(proxy, ledger_rows):
    model_url = proxy.origin + "/v1beta/models/gemini-2.5-pro"
    plain = httpx.post(model_url + ":generateContent", json=BODY, headers=GEMINI_HEADERS)
    assert plain.json()["candidates"][0]["content"]["parts"][0]["text"] == TEXT
    with httpx.stream("POST", model_url + ":streamGenerateContent?alt=sse", json=BODY,
                      headers=GEMINI_HEADERS) as sse:
        assert sse.headers["content-type"].startswith("text/event-stream")
        assert sum(1 for line in sse.iter_lines() if line.startswith("data: ")) == 5
    array = httpx.post(model_url + ":streamGenerateContent", json=BODY, headers=GEMINI_HEADERS)
    assert len(array.json()) == 5
    rows = ledger_rows()
    assert [tokens(r) for r in rows] == [GEMINI_ROW] * 3
    assert [(r["endpoint"], r["model"], r["stream"]) for r in rows] == [
        ("gemini", "gemini-2.5-pro", False), ("gemini", "gemini-2.5-pro", True),
        ("gemini", "gemini-2.5-pro", True)]
    assert {r["key_hint"] for r in rows} == {"sk-…wxyz"}


def test_gemini_key_in_query_audio_flag_and_count_tokens(proxy, upstream, ledger_rows):
    url = proxy.origin + "/v1beta/models/gemini-2.5-flash"
    r = httpx.post(url + f":generateContent?key={PROXY_TEST_KEY}", json=BODY,
                   headers={BEHAVIOUR: "prompt_tokens=400;audio=250;candidates=5"})
    assert r.status_code == 200 and upstream.requests[-1].query == f"key={PROXY_TEST_KEY}"
    counted = httpx.post(url + ":countTokens", json=BODY, headers=GEMINI_HEADERS)
    assert counted.json() == {"totalTokens": 1000}
    listed = httpx.get(proxy.origin + "/v1beta/models", headers=GEMINI_HEADERS)
    assert listed.status_code == 200
    rows = ledger_rows()
    assert [(r["endpoint"], r["model"]) for r in rows] == [
        ("gemini", "gemini-2.5-flash"), ("count_tokens", "gemini-2.5-flash"), ("models", None)]
    assert tokens(rows[0]) == expected(400, 5)
    assert rows[0]["usage_flag"] == "audio_input_tokens=250" and rows[0]["key_hint"] == "sk-…wxyz"
    assert rows[1]["input_tokens"] == 0


def test_google_genai_sdk_through_the_proxy(proxy, ledger_rows):
    genai = pytest.importorskip("google.genai")
    client = genai.Client(api_key=PROXY_TEST_KEY, http_options=genai.types.HttpOptions(
        base_url=proxy.origin, headers={BEHAVIOUR: GEMINI_CALL}))
    answer = client.models.generate_content(model="gemini-2.5-pro", contents="Hi")
    assert answer.text == TEXT and answer.usage_metadata.thoughts_token_count == 200
    streamed = "".join(c.text or "" for c in client.models.generate_content_stream(
        model="gemini-2.5-pro", contents="Hi"))
    assert streamed == TEXT
    rows = ledger_rows()
    assert [tokens(r) for r in rows] == [GEMINI_ROW] * 2
    assert [(r["endpoint"], r["stream"]) for r in rows] == [("gemini", False), ("gemini", True)]
