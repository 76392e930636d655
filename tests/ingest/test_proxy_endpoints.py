"""Every endpoint of the platform through the proxy, with the real OpenAI SDK and httpx; each
call must land in the ledger with the usage the upstream reported."""

from __future__ import annotations

import json

import httpx
from proxy_helpers import PROXY_TEST_KEY

from ledger.connect import open_ledger
from pricing.queries import UNPRICED_MODELS_SQL

AUTH = {"Authorization": f"Bearer {PROXY_TEST_KEY}"}
HI = [{"role": "user", "content": "Hi"}]


def only(rows: list[dict]) -> dict:
    assert len(rows) == 1, rows
    return rows[0]


def test_chat_plain_recorded_with_reported_usage(client, ledger_rows):
    reply = client.chat.completions.create(model="gpt-4o", messages=HI)
    assert reply.choices[0].message.content == "Hello world world world world"
    assert reply.usage.prompt_tokens == 11 and reply.usage.completion_tokens == 5
    row = only(ledger_rows())
    assert row["source"] == "proxy" and row["call_id"].startswith("px:")
    assert (row["endpoint"], row["model"], row["base_model"], row["billing_mode"]) == (
        "chat", "gpt-4o", "gpt-4o", "token")
    assert (row["input_tokens"], row["output_tokens"], row["cached_tokens"],
            row["reasoning_tokens"]) == (11, 5, 0, 0)
    assert row["status"] == 200 and row["stream"] is False and row["requests"] == 1
    assert row["usage_source"] == "reported" and row["usage_flag"] is None
    assert row["key_id"].startswith("k1:") and row["key_hint"] == "sk-…wxyz"
    assert row["latency_ms"] >= 0 and row["started_at"].tzinfo is not None


def test_per_request_variant_cached_and_reasoning(client, ledger_rows):
    client.chat.completions.create(
        model="gemini-2.5-pro-c", messages=HI,
        extra_headers={"X-Upstream-Behaviour": "prompt_tokens=1200;cached_tokens=1000;"
                                               "completion_tokens=300;reasoning_tokens=200"})
    row = only(ledger_rows())
    assert (row["model"], row["base_model"], row["billing_mode"]) == (
        "gemini-2.5-pro-c", "gemini-2.5-pro", "request")
    assert (row["input_tokens"], row["cached_tokens"], row["output_tokens"],
            row["reasoning_tokens"]) == (1200, 1000, 300, 200)


def test_reasoning_reported_beside_completion_is_folded_in(client, ledger_rows):
    # Gemini-style: completion 300 excludes 200 thinking tokens; total = 11 + 300 + 200
    client.chat.completions.create(
        model="gemini-2.5-pro", messages=HI,
        extra_headers={"X-Upstream-Behaviour": "completion_tokens=300;reasoning_tokens=200;"
                                               "thinking_separate"})
    row = only(ledger_rows())
    assert (row["output_tokens"], row["reasoning_tokens"]) == (500, 200)
    assert row["usage_flag"] is None


def test_usage_that_does_not_add_up_is_flagged(client, ledger_rows):
    client.chat.completions.create(model="gpt-4o", messages=HI,
                                   extra_headers={"X-Upstream-Behaviour": "total_off"})
    row = only(ledger_rows())
    assert (row["input_tokens"], row["output_tokens"]) == (11, 5)
    assert row["usage_flag"] == "total_mismatch"


def test_stream_without_include_usage_client_sees_no_extra_chunk(client, upstream,
                                                                   ledger_rows):
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=HI, stream=True))
    # exactly what the platform would have sent without include_usage: every chunk has a choice
    assert all(len(c.choices) == 1 for c in chunks)
    assert all(c.usage is None for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Hello world world world world"
    sent = json.loads(upstream.requests[-1].body)
    assert sent["stream_options"] == {"include_usage": True}
    row = only(ledger_rows())
    assert row["stream"] is True and row["usage_source"] == "reported"
    assert (row["input_tokens"], row["output_tokens"]) == (11, 5)
    assert row["ttft_ms"] is not None and 0 <= row["ttft_ms"] <= row["latency_ms"]


def test_stream_with_include_usage_client_gets_its_usage_chunk(client, ledger_rows):
    chunks = list(client.chat.completions.create(
        model="gpt-4o", messages=HI, stream=True, stream_options={"include_usage": True},
        extra_headers={"X-Upstream-Behaviour": "prompt_tokens=42"}))
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 42
    row = only(ledger_rows())
    assert (row["input_tokens"], row["output_tokens"]) == (42, 5)


def test_stream_without_any_usage_is_counted_locally(client, ledger_rows):
    chunks = list(client.chat.completions.create(
        model="gpt-4o", messages=HI, stream=True,
        extra_headers={"X-Upstream-Behaviour": "no_usage"}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello world world world world")
    row = only(ledger_rows())
    # o200k: "Hello", " world" ×4 → 5; prompt: 3 per message + "user" 1 + "Hi" 1 + 3 priming
    assert (row["input_tokens"], row["output_tokens"]) == (8, 5)
    assert row["usage_source"] == "estimated" and row["usage_flag"] is None


def test_non_stream_without_usage_other_provider_is_flagged_approximate(client, ledger_rows):
    client.chat.completions.create(model="claude-sonnet-4", messages=HI,
                                   extra_headers={"X-Upstream-Behaviour": "no_usage"})
    row = only(ledger_rows())
    assert (row["input_tokens"], row["output_tokens"]) == (8, 5)
    assert row["usage_source"] == "estimated" and row["usage_flag"] == "approx_tokenizer"


def test_embeddings(client, ledger_rows):
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])
    assert len(result.data) == 3
    row = only(ledger_rows())
    assert (row["endpoint"], row["input_tokens"], row["output_tokens"]) == ("embeddings", 15, 0)
    assert row["usage_source"] == "reported"


def test_images_without_usage_count_images_and_size(client, ledger_rows):
    result = client.images.generate(model="dall-e-3", prompt="a cat", n=2, size="1024x1792")
    assert len(result.data) == 2
    row = only(ledger_rows())
    assert (row["endpoint"], row["images"], row["image_size"]) == ("images", 2, "1024x1792")
    assert row["input_tokens"] == 0 and row["usage_source"] == "reported"


def test_images_with_token_usage(client, ledger_rows):
    client.images.generate(model="gpt-image-1", prompt="a cat", size="1024x1024")
    row = only(ledger_rows())
    assert (row["images"], row["input_tokens"], row["output_tokens"]) == (1, 50, 4160)
    assert row["image_size"] == "1024x1024"


def test_speech_binary_streamed_back_and_billed_by_characters(client, ledger_rows):
    text = "Hello there, this is a test."
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=text) as response:
        audio = b"".join(response.iter_bytes())
    assert audio == (bytes(range(256)) * 188)[:48_000]
    row = only(ledger_rows())
    assert (row["endpoint"], row["characters"], row["model"]) == ("speech", len(text), "tts-1")


def test_transcription_multipart_duration_usage(client, ledger_rows, tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF" + bytes(5000))
    with audio.open("rb") as fh:
        result = client.audio.transcriptions.create(model="whisper-1", file=fh)
    assert result.text == "Hello from the stand-in."
    row = only(ledger_rows())
    assert (row["endpoint"], row["model"], row["audio_seconds"]) == (
        "transcriptions", "whisper-1", 3.5)


def test_transcription_token_usage(client, ledger_rows, tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF" + bytes(5000))
    with audio.open("rb") as fh:
        client.audio.transcriptions.create(model="gpt-4o-transcribe", file=fh)
    row = only(ledger_rows())
    assert (row["model"], row["input_tokens"], row["output_tokens"]) == (
        "gpt-4o-transcribe", 42, 7)


def test_rerank_usage_styles(proxy, ledger_rows):
    body = {"model": "jina-reranker-v2", "query": "q", "documents": ["a", "b"]}
    for style in ("jina", "newapi", "cohere"):
        r = httpx.post(proxy.url + "/rerank", json=body,
                       headers=AUTH | {"X-Upstream-Behaviour": f"rerank_style={style}"})
        assert r.status_code == 200 and len(r.json()["results"]) == 2
    rows = sorted(ledger_rows(), key=lambda r: r["usage_flag"] or "")
    assert [r["endpoint"] for r in rows] == ["rerank"] * 3
    assert [r["input_tokens"] for r in rows] == [40, 40, 0]
    assert rows[2]["usage_flag"] == "search_units=1"


def test_models_list_for_chat_apps(client, ledger_rows):
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-c" in ids
    row = only(ledger_rows())
    assert (row["endpoint"], row["status"], row["model"]) == ("models", 200, None)


def test_other_path_passed_through(proxy, upstream, ledger_rows):
    r = httpx.post(proxy.url + "/moderations?x=1", json={"model": "omni-moderation-latest",
                                                          "input": "hi"}, headers=AUTH)
    assert r.json() == {"object": "echo", "method": "POST", "path": "/v1/moderations",
                        "query": "x=1"}
    row = only(ledger_rows())
    assert (row["endpoint"], row["model"]) == ("other", "omni-moderation-latest")


def test_base_url_without_v1_and_doubled_slash(proxy, upstream, ledger_rows):
    body = {"model": "gpt-4o", "messages": HI}
    for path in ("/chat/completions", "//chat/completions", "/v1//chat/completions"):
        r = httpx.post(proxy.origin + path, json=body, headers=AUTH)
        assert r.status_code == 200, path
        assert upstream.requests[-1].path == "/v1/chat/completions"
    assert [r["endpoint"] for r in ledger_rows()] == ["chat"] * 3


def test_cors_preflight_and_header(proxy):
    pre = httpx.options(proxy.url + "/chat/completions", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert pre.headers["access-control-allow-headers"] == "authorization, content-type"
    r = httpx.post(proxy.url + "/chat/completions", json={"model": "gpt-4o", "messages": HI},
                   headers=AUTH | {"Origin": "http://localhost:3000"})
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_tags_from_header_and_user_field(client, upstream, ledger_rows):
    client.chat.completions.create(model="gpt-4o", messages=HI, user="alice",
                                   extra_headers={"X-Callmeter-Tags": "team=search, app=bot"})
    assert "x-callmeter-tags" not in upstream.requests[-1].headers
    row = only(ledger_rows())
    assert row["tags"] == {"user": "alice", "team": "search", "app": "bot"}


def test_modelless_proxy_calls_are_never_unpriced(proxy, client, ledger_rows):
    """GET /models and new-api's GET /api/status (issue 18): kept, cost 0, not unpriced."""
    client.models.list()
    assert httpx.get(proxy.origin + "/api/status", headers=AUTH).status_code < 500
    rows = ledger_rows()
    assert sorted((r["endpoint"], r["model"]) for r in rows) == [("models", None),
                                                                ("other", None)]
    conn = open_ledger(proxy.db)
    try:
        priced = conn.execute("SELECT cost, priced FROM priced_calls").fetchall()
        unpriced = conn.execute(UNPRICED_MODELS_SQL).fetchall()
    finally:
        conn.close()
    assert priced == [(0, True), (0, True)] and unpriced == []
