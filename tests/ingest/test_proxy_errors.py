"""Upstream and client faults: the client sees what it would have seen (or a clear 502/504/413),
and the ledger gets the right row."""

from __future__ import annotations

import gzip
import json
import socket
import time

import httpx
import openai
import pytest
from proxy_helpers import PROXY_TEST_KEY, load_rows
from upstream import ProxyServer

AUTH = {"Authorization": f"Bearer {PROXY_TEST_KEY}"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}


def behaviour(text: str) -> dict:
    return AUTH | {"X-Upstream-Behaviour": text}


@pytest.mark.parametrize("status", [401, 403, 429, 500, 503])
def test_upstream_errors_pass_through_unchanged_and_are_recorded(proxy, upstream, ledger_rows,
                                                                 status):
    direct = httpx.post(upstream.url + "/chat/completions", json=CHAT,
                        headers=behaviour(f"status={status};retry_after=7"))
    via = httpx.post(proxy.url + "/chat/completions", json=CHAT,
                     headers=behaviour(f"status={status};retry_after=7"))
    assert via.status_code == direct.status_code == status
    assert via.content == direct.content
    assert via.headers["retry-after"] == "7"
    assert via.headers["content-type"] == "application/json"
    [row] = ledger_rows()
    assert (row["status"], row["model"], row["input_tokens"], row["usage_source"]) == (
        status, "gpt-4o", 0, "none")


def test_rate_limit_reaches_the_sdk_as_its_own_error(client):
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="gpt-4o", messages=CHAT["messages"],
                                       extra_headers={"X-Upstream-Behaviour":
                                                      "status=429;retry_after=3"})
    assert err.value.response.headers["retry-after"] == "3"
    assert err.value.body["code"] == "rate_limit_exceeded"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_upstream_gives_502_and_is_recorded(tmp_path):
    with ProxyServer(f"http://127.0.0.1:{closed_port()}/v1", tmp_path / "c.duckdb") as px:
        r = httpx.post(px.url + "/chat/completions", json=CHAT, headers=AUTH)
        assert r.status_code == 502
        error = r.json()["error"]
        assert error["code"] == "upstream_unreachable" and error["type"] == "upstream_error"
        [row] = load_rows(px)
    assert (row["status"], row["usage_flag"], row["model"]) == (
        502, "upstream_unreachable", "gpt-4o")


def test_upstream_timeout_before_headers_gives_504(upstream, tmp_path):
    with ProxyServer(upstream.url, tmp_path / "c.duckdb", read_timeout=0.3) as px:
        started = time.monotonic()
        r = httpx.post(px.url + "/chat/completions", json=CHAT, headers=behaviour("delay=3"))
        assert time.monotonic() - started < 2
        assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
        [row] = load_rows(px)
    assert (row["status"], row["usage_flag"]) == (504, "upstream_timeout")


def test_sdk_sees_504_as_an_api_error(upstream, tmp_path):
    with ProxyServer(upstream.url, tmp_path / "c.duckdb", read_timeout=0.3) as px:
        client = openai.OpenAI(base_url=px.url, api_key=PROXY_TEST_KEY, max_retries=0)
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model="gpt-4o", messages=CHAT["messages"],
                                           extra_headers={"X-Upstream-Behaviour": "delay=3"})
        assert err.value.status_code == 504


def test_stream_cut_by_upstream_is_recorded_with_what_arrived(proxy, upstream, ledger_rows):
    body = CHAT | {"stream": True}
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):  # the client sees the break, as direct
        with httpx.stream("POST", proxy.url + "/chat/completions", json=body,
                          headers=behaviour("cut_after=2")) as r:
            for chunk in r.iter_raw():
                received += chunk
    assert b"Hello" in received and b"[DONE]" not in received
    [row] = ledger_rows()
    # "Hello" + " world" arrived: 2 tokens counted locally; the prompt is counted too (8)
    assert (row["status"], row["stream"], row["usage_flag"]) == (200, True, "interrupted")
    assert (row["input_tokens"], row["output_tokens"], row["usage_source"]) == (
        8, 2, "estimated")


def test_client_disconnect_mid_stream_closes_upstream_and_records(proxy, upstream,
                                                                   ledger_rows):
    upstream.stream_events.clear()
    body = CHAT | {"stream": True}
    with httpx.stream("POST", proxy.url + "/chat/completions", json=body,
                      headers=behaviour("chunks=100;chunk_delay=0.05")) as r:
        lines = r.iter_lines()
        seen = [next(lines) for _ in range(6)]  # role chunk, 2 words (with blank lines)
    assert any("Hello" in line for line in seen)
    deadline = time.monotonic() + 5
    while not upstream.stream_events and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(upstream.stream_events) == ["client_closed"]
    [row] = ledger_rows()
    assert row["usage_flag"] == "client_disconnected" and row["usage_source"] == "estimated"
    assert 1 <= row["output_tokens"] < 20 and row["input_tokens"] == 8


def test_gzip_body_reaches_client_and_usage_is_read(proxy, upstream, ledger_rows):
    r = httpx.post(proxy.url + "/chat/completions", json=CHAT,
                   headers=behaviour("gzip") | {"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert r.json()["usage"]["completion_tokens"] == 5  # httpx decoded it: bytes untouched
    with httpx.stream("POST", proxy.url + "/chat/completions", json=CHAT,
                      headers=behaviour("gzip") | {"Accept-Encoding": "gzip"}) as raw:
        data = b"".join(raw.iter_raw())
    assert data[:2] == b"\x1f\x8b"  # passed on compressed, byte for byte
    assert json.loads(gzip.decompress(data))["usage"]["prompt_tokens"] == 11
    rows = ledger_rows()
    assert [(row["input_tokens"], row["output_tokens"]) for row in rows] == [(11, 5)] * 2


def test_no_compression_unless_the_client_asked(proxy, upstream):
    r = httpx.post(proxy.url + "/chat/completions", json=CHAT,
                   headers=AUTH | {"Accept-Encoding": "identity"})
    assert "content-encoding" not in r.headers
    assert upstream.requests[-1].headers["accept-encoding"] == "identity"


def test_malformed_upstream_body_passes_through(proxy, upstream, ledger_rows):
    r = httpx.post(proxy.url + "/chat/completions", json=CHAT, headers=behaviour("malformed"))
    assert r.status_code == 200 and r.content == b'{"id": "broken", "choices": ['
    [row] = ledger_rows()
    assert (row["status"], row["model"]) == (200, "gpt-4o")
    assert row["usage_source"] == "estimated" and row["output_tokens"] == 0


def test_malformed_request_json_forwarded_and_recorded(proxy, upstream, ledger_rows):
    r = httpx.post(proxy.url + "/chat/completions", content=b'{"model": "gpt-4o", ',
                   headers=AUTH | {"Content-Type": "application/json"})
    assert r.status_code == 400  # the platform's own answer
    assert upstream.requests[-1].body == b'{"model": "gpt-4o", '
    [row] = ledger_rows()
    assert (row["status"], row["usage_flag"], row["model"]) == (400, "malformed_request", None)


def test_body_over_limit_gets_413_and_is_recorded(upstream, tmp_path):
    with ProxyServer(upstream.url, tmp_path / "c.duckdb", max_body_bytes=1000) as px:
        before = len(upstream.requests)
        big = CHAT | {"messages": [{"role": "user", "content": "x" * 5000}]}
        r = httpx.post(px.url + "/chat/completions", json=big, headers=AUTH)
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
        assert len(upstream.requests) == before  # never forwarded
        ok = httpx.post(px.url + "/chat/completions", json=CHAT, headers=AUTH)
        assert ok.status_code == 200
        rows = load_rows(px)
    assert sorted(row["status"] for row in rows) == [200, 413]
