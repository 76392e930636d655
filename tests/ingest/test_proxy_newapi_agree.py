"""The same call seen twice: recorded by the proxy from the answer new-api relays, and imported
from new-api's own consumption log. Both rows must carry the same tokens.

How new-api turns each API's usage into its log row is copied from piexian/new-api commit
77fdac2 (2026-08-18): ``relay/channel/claude/relay-claude.go`` (``HandleClaudeResponseData``,
``ClaudeStreamHandler``: prompt = Anthropic ``input_tokens``, cache read and creation kept apart,
5-minute and 1-hour writes), ``service/billing_usage.go`` (``usageFromGeminiBillingUsage``:
prompt + tool-use prompt, candidates + thoughts, cached content), the Responses relay
(``relay/channel/openai/relay_responses.go``: prompt = ``input_tokens`` with its cached part)
and ``service/text_quota.go`` (``PostTextConsumeQuota``: ``other.usage_semantic``,
``cache_tokens``, ``cache_creation_tokens``, ``cache_creation_tokens_5m`` / ``_1h``,
``cache_write_tokens``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import anthropic
import httpx
import openai
from importers_helpers import calls, run_import
from platform_logs import Ratios, go_json, request_id, text_other, text_quota
from proxy_helpers import PROXY_TEST_KEY

TOKENS = ("input_tokens", "cached_tokens", "cache_write_tokens", "cache_write_long_tokens",
          "output_tokens", "reasoning_tokens")
CREATED = 1_780_000_000
BEHAVIOUR = "X-Upstream-Behaviour"


def proxy_tokens(rows: list[dict]) -> tuple:
    assert len(rows) == 1, rows
    return rows[0]["endpoint"], tuple(rows[0][t] for t in TOKENS)


def import_log(tmp_path: Path, model: str, prompt: int, completion: int, other: dict) -> tuple:
    """One consume row as new-api logs it, imported; (endpoint, token columns)."""
    r = Ratios()
    item = {"id": 1, "created_at": CREATED, "type": 2, "content": "", "username": "dev",
            "token_name": "claude-code", "token_id": 7, "model_name": model,
            "quota": text_quota(prompt, completion, r, cache=other.get("cache_tokens", 0)),
            "prompt_tokens": prompt, "completion_tokens": completion, "use_time": 3,
            "is_stream": True, "channel": 3, "group": "default",
            "request_id": request_id(CREATED, random.Random(21)), "other": go_json(other)}
    page = tmp_path / f"{model}.json"
    page.write_text(json.dumps({"success": True, "data": {"page": 1, "page_size": 10,
                                                           "total": 1, "items": [item]}}))
    db = tmp_path / f"{model}.duckdb"
    assert run_import(db, page, "newapi").imported == 1
    got = calls(db, "endpoint, " + ", ".join(TOKENS))
    return got[0][0], tuple(got[0][1:])


def test_claude_stream_with_cache_writes(proxy, ledger_rows, tmp_path):
    claude = anthropic.Anthropic(base_url=proxy.origin, api_key=PROXY_TEST_KEY, max_retries=0)
    with claude.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=[
            {"role": "user", "content": "Hi"}], extra_headers={BEHAVIOUR: (
                "input_tokens=6;cache_read=4644;cache_write_5m=400;cache_write_1h=152;"
                "output_tokens=64")}) as stream:
        usage = stream.get_final_message().usage
    other = text_other(Ratios(), cache=usage.cache_read_input_tokens,
                       cache_write=usage.cache_creation_input_tokens, claude=True,
                       request_path="/v1/messages")
    other.update(cache_creation_tokens_5m=usage.cache_creation.ephemeral_5m_input_tokens,
                 cache_creation_tokens_1h=usage.cache_creation.ephemeral_1h_input_tokens)
    logged = import_log(tmp_path, "claude-sonnet-4-5", usage.input_tokens, usage.output_tokens,
                        other)
    assert proxy_tokens(ledger_rows()) == logged == ("messages", (5202, 4644, 552, 152, 64, 0))


def test_responses_with_cached_input(proxy, ledger_rows, tmp_path):
    client = openai.OpenAI(base_url=proxy.url, api_key=PROXY_TEST_KEY, max_retries=0)
    done = client.responses.create(model="gpt-5", input="Hi", extra_headers={
        BEHAVIOUR: "input_tokens=9000;cached=7000;output_tokens=400;reasoning=250"})
    u = done.usage
    other = text_other(Ratios(), cache=u.input_tokens_details.cached_tokens,
                       request_path="/v1/responses")
    logged = import_log(tmp_path, "gpt-5", u.input_tokens, u.output_tokens, other)
    # new-api's log has no reasoning count: the proxy's row knows more, the rest agrees
    endpoint, tokens = proxy_tokens(ledger_rows())
    assert (endpoint, tokens[:5]) == (logged[0], logged[1][:5]) == (
        "responses", (9000, 7000, 0, 0, 400))
    assert tokens[5] == 250


def test_gemini_thoughts_tool_prompt_and_cache(proxy, ledger_rows, tmp_path):
    answer = httpx.post(proxy.origin + "/v1beta/models/gemini-2.5-pro:generateContent",
                        json={"contents": [{"parts": [{"text": "Hi"}]}]},
                        headers={"x-goog-api-key": PROXY_TEST_KEY, BEHAVIOUR: (
                            "prompt_tokens=1000;candidates=50;thoughts=200;"
                            "cached_content=600;tool_prompt=30")}).json()["usageMetadata"]
    prompt = answer["promptTokenCount"] + answer["toolUsePromptTokenCount"]
    completion = answer["candidatesTokenCount"] + answer["thoughtsTokenCount"]
    other = text_other(Ratios(), cache=answer["cachedContentTokenCount"],
                       request_path="/v1beta/models/gemini-2.5-pro:generateContent")
    logged = import_log(tmp_path, "gemini-2.5-pro", prompt, completion, other)
    endpoint, tokens = proxy_tokens(ledger_rows())
    assert (endpoint, tokens[:5]) == (logged[0], logged[1][:5]) == (
        "gemini", (1030, 600, 0, 0, 250))
