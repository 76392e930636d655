"""Issue 9, property 3: client faults against a real `callmeter proxy` process: a client that
leaves mid-stream, a slow reader (memory stays bounded: backpressure, not buffering), a body
over the limit (413, recorded), malformed JSON (forwarded, the platform's answer, recorded)."""

from __future__ import annotations

import socket
import time

import httpx
import openai
import pytest
from harness import CliProxy, load_rows_tagged, test_key

KEY = test_key("client")
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
SPEECH_BYTES = 64 * 1024 * 1024  # the audio a slow reader is sent


def headers(case: str, behaviour: str = "") -> dict:
    return {"Authorization": f"Bearer {KEY}", "X-Callmeter-Tags": f"case={case}",
            "X-Upstream-Behaviour": behaviour}


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    db = tmp_path_factory.mktemp("client_faults") / "callmeter.duckdb"
    with CliProxy(upstream.url, db, "--max-body-bytes", "100000", access_log=False,
                  CALLMETER_SPOOL_MAX_SECONDS="0.2") as px:
        yield px


def ledger(proxy: CliProxy) -> dict[str, dict]:
    time.sleep(0.5)  # the proxy closes its segment within 0.2 s of the last write
    return load_rows_tagged(proxy.db)


def test_disconnect_mid_stream_closes_upstream_and_records_partial_output(proxy, upstream):
    upstream.stream_events.clear()
    with httpx.stream("POST", proxy.url + "/chat/completions", json=CHAT | {"stream": True},
                      headers=headers("gone", "chunks=200;chunk_delay=0.05")) as r:
        lines = r.iter_lines()
        seen = [next(lines) for _ in range(8)]  # role chunk and three words
    assert any("Hello" in line for line in seen)
    deadline = time.monotonic() + 5
    while not upstream.stream_events and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(upstream.stream_events) == ["client_closed"]  # the upstream call was closed
    row = ledger(proxy)["gone"]
    assert (row["status"], row["stream"], row["usage_flag"], row["usage_source"]) == (
        200, True, "client_disconnected", "estimated")
    assert 3 <= row["output_tokens"] < 50  # what was streamed, not the 200 words planned


def test_slow_reader_gets_backpressure_not_buffering(proxy, upstream):
    upstream.stream_events.clear()
    before = proxy.rss_kib()
    request = (b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer " + KEY.encode() + b"\r\nX-Callmeter-Tags: case=slow\r\n"
               b"X-Upstream-Behaviour: speech_bytes=" + str(SPEECH_BYTES).encode() +
               b"\r\nConnection: close\r\n")
    body = b'{"model": "tts-1", "input": "hello there", "voice": "alloy"}'
    request += b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", proxy.port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(request)
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        peak = before
        for _ in range(20):  # 3 s without reading a byte
            time.sleep(0.15)
            peak = max(peak, proxy.rss_kib())
        assert not upstream.stream_events, "the upstream finished sending: nobody held it back"
        total = len(first)
        while part := s.recv(1 << 20):
            total += len(part)
    growth_mib = (peak - before) / 1024
    print(f"\nslow reader: proxy RSS {before / 1024:.0f} MiB, peak while stalled "
          f"{peak / 1024:.0f} MiB (+{growth_mib:.1f}) for a {SPEECH_BYTES >> 20} MiB body")
    assert growth_mib < 24, f"the proxy buffered {growth_mib:.0f} MiB for a stalled reader"
    assert total > SPEECH_BYTES  # everything arrived once the reader read
    row = ledger(proxy)["slow"]
    assert (row["status"], row["endpoint"], row["characters"]) == (200, "speech", 11)


def test_body_over_the_limit_gets_413_and_is_recorded(proxy, upstream):
    before = len(upstream.requests)
    client = openai.OpenAI(base_url=proxy.url, api_key=KEY, max_retries=0,
                           default_headers={"X-Callmeter-Tags": "case=big"})
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="gpt-4o", messages=[
            {"role": "user", "content": "x" * 200_000}])
    assert err.value.status_code == 413 and err.value.body["code"] == "request_too_large"
    assert len(upstream.requests) == before  # never forwarded
    row = ledger(proxy)["big"]
    assert (row["status"], row["usage_flag"], row["endpoint"]) == (413, "request_too_large",
                                                                  "chat")


def test_malformed_json_is_forwarded_and_recorded(proxy, upstream):
    r = httpx.post(proxy.url + "/chat/completions", content=b'{"model": "gpt-4o", ',
                   headers=headers("badjson") | {"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "invalid JSON body"
    assert upstream.requests[-1].body == b'{"model": "gpt-4o", '
    row = ledger(proxy)["badjson"]
    assert (row["status"], row["usage_flag"]) == (400, "malformed_request")
