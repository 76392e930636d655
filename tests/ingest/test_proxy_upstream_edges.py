"""The proxy against upstreams at the edges of HTTP: interim answers between two clients'
calls (the cross-client leak), answers nobody asked for, keep-alive races, TLS with a private
CA, an egress proxy, and credentials in the upstream URL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import httpx
import openai
import pytest
import trustme
from proxy_helpers import load_rows
from raw_upstream import Answer, RawUpstream, response_bytes
from typer.testing import CliRunner
from upstream import ProxyServer, UpstreamServer, free_socket

from callmeter.cli import app as cli_app
from ingest.proxy import ProxyOptions
from ingest.proxy.forwarding import Upstream
from ingest.proxy.http1 import Http1Transport
from ledger.config import settings_from_env

KEYS = {"alice": "sk-proxytest-alice-0000000000-aaaa", "bob": "sk-proxytest-bob-11111111111-bbbb"}
TIMEOUTS = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}


def completion_echoing(seen, interim: list) -> Answer:
    """A chat completion that repeats the caller's prompt and key hint, after ``interim``
    answers; the final answer comes 0.2 s after them (long after the pool could reuse it)."""
    prompt = json.loads(seen.body)["messages"][-1]["content"]
    key = seen.headers.get("authorization", "")[-4:]
    body = json.dumps({"id": "chatcmpl-x", "object": "chat.completion", "created": 1,
                       "model": "gpt-4o", "choices": [{"index": 0, "finish_reason": "stop",
                       "message": {"role": "assistant", "content": f"{prompt} for {key}"}}],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 4,
                                 "total_tokens": 7}}).encode()
    pieces = response_bytes(200, [("Content-Type", "application/json")], body, interim=interim)
    return Answer([b"".join(pieces[:-1]), pieces[-1]], pause=0.2)


@pytest.mark.parametrize("interim", [
    [(103, [("Link", "</style.css>; rel=preload; as=style")])],
    [(100, [])],
], ids=["103-early-hints", "unsolicited-100"])
def test_two_clients_each_get_their_own_completion_when_the_upstream_sends_1xx(
        tmp_path, interim):
    with RawUpstream(responder=lambda seen: completion_echoing(seen, interim)) as raw, \
            ProxyServer(raw.url, tmp_path / "callmeter.duckdb") as proxy:
        clients = {who: openai.OpenAI(base_url=proxy.url, api_key=key, max_retries=0,
                                      timeout=10) for who, key in KEYS.items()}
        got = []
        for i in range(6):  # alternate, so each call may reuse the other client's connection
            who = ("alice", "bob")[i % 2]
            reply = clients[who].chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"question {i}"}])
            got.append((who, reply.choices[0].message.content))
        rows = load_rows(proxy)
    assert got == [(who, f"question {i} for {KEYS[who][-4:]}") for i, (who, _) in
                   enumerate(got)]
    assert [(r["status"], r["input_tokens"], r["output_tokens"]) for r in rows] == [(200, 3, 4)] * 6


async def exchange(t: Http1Transport, url: str) -> tuple[int, bytes]:
    response = await t.handle_async_request(httpx.Request("GET", url,
                                                          extensions={"timeout": TIMEOUTS}))
    try:
        return response.status_code, b"".join([c async for c in response.aiter_raw()])
    finally:
        await response.aclose()


@pytest.mark.parametrize("late", [False, True], ids=["same-packet", "arrives-later"])
def test_a_pooled_connection_never_carries_an_answer_nobody_asked_for(late):
    first = b"".join(response_bytes(200, [], b"first"))
    stray = b"".join(response_bytes(200, [], b"STRAY ANSWER"))
    with RawUpstream() as raw:
        one = raw.script(Answer([first + stray] if not late else [first, stray], pause=0.1))
        two = raw.script(Answer(response_bytes(200, [], b"second")))

        async def main():
            t = Http1Transport()
            a = await exchange(t, f"{raw.url}/{one}")
            await asyncio.sleep(0.3)
            b = await exchange(t, f"{raw.url}/{two}")
            await t.aclose()
            return a, b

        assert asyncio.run(main()) == ((200, b"first"), (200, b"second"))


def test_a_reused_connection_the_upstream_closed_is_retried_once_on_a_new_one(tmp_path):
    """The upstream closes a kept-alive connection just as the next request arrives (its idle
    timeout racing the pool's): the call succeeds on a fresh connection, not a 502."""
    with RawUpstream(close_on_reuse=True,
                     responder=lambda seen: completion_echoing(seen, [])) as raw, \
            ProxyServer(raw.url, tmp_path / "callmeter.duckdb", keepalive_seconds=60) as proxy:
        statuses = [httpx.post(proxy.url + "/chat/completions", json={
            "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).status_code
            for _ in range(4)]
        assert statuses == [200] * 4
        # each call after the first went out on the kept connection, was dropped, and went
        # out once more on a new one
        assert (raw.state.closed_on_reuse, raw.state.connections, len(raw.seen)) == (3, 4, 4)


def test_keep_alive_timeout_from_the_upstream_is_honoured():
    """Node and Apache say how long they keep an idle connection (``Keep-Alive: timeout=2``):
    the pool stops reusing it a second before that."""
    with RawUpstream() as raw:
        path = raw.script(Answer(response_bytes(200, [("Keep-Alive", "timeout=2")], b"ok")))

        async def main():
            t = Http1Transport(keepalive_seconds=30)
            await exchange(t, f"{raw.url}/{path}")
            await exchange(t, f"{raw.url}/{path}")  # at once: reused
            reused = raw.state.connections
            await asyncio.sleep(1.2)
            await exchange(t, f"{raw.url}/{path}")  # past timeout - 1 s: a new connection
            await t.aclose()
            return reused, raw.state.connections

        assert asyncio.run(main()) == (1, 2)


@pytest.fixture(scope="module")
def private_ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_upstream(private_ca):
    context = __import__("ssl").create_default_context(__import__("ssl").Purpose.CLIENT_AUTH)
    private_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    body = b'{"object": "list", "data": []}'
    with RawUpstream(ssl_context=context, responder=lambda seen: Answer(response_bytes(
            200, [("Content-Type", "application/json")], body))) as raw:
        yield raw


def test_tls_upstream_with_a_private_ca_works_once_ssl_cert_file_names_it(
        tls_upstream, private_ca, tmp_path, monkeypatch):
    ca_file = tmp_path / "private-ca.pem"
    private_ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    options = ProxyOptions.from_settings(settings_from_env(str(tmp_path / "c.duckdb")),
                                         upstream=tls_upstream.url)
    assert options.ca_file == str(ca_file)  # read from the environment by the config module
    with ProxyServer(tls_upstream.url, tmp_path / "c.duckdb", ca_file=str(ca_file)) as proxy:
        r = httpx.get(proxy.url + "/models")
    assert (r.status_code, r.json()) == (200, {"object": "list", "data": []})


def test_tls_failure_says_it_is_tls_and_why(tls_upstream, tmp_path, caplog):
    with ProxyServer(tls_upstream.url, tmp_path / "callmeter.duckdb") as proxy:
        r = httpx.get(proxy.url + "/models")
        rows = load_rows(proxy)
    error = r.json()["error"]
    assert (r.status_code, error["code"]) == (502, "upstream_tls_error")
    assert "certificate" in error["message"] and "SSL_CERT_FILE" in error["message"]
    assert "cannot be reached" not in error["message"]
    assert any("upstream_tls_error" in rec.getMessage() and "certificate" in rec.getMessage()
               for rec in caplog.records)
    assert [(x["status"], x["usage_flag"]) for x in rows] == [(502, "upstream_tls_error")]


@pytest.fixture(scope="module")
def forward_proxy():
    """proxy.py (a real forward proxy, PyPI ``proxy.py``) on a free port."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen([sys.executable, "-m", "proxy", "--hostname", "127.0.0.1",
                             "--port", str(port), "--num-workers", "1", "--num-acceptors",
                             "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.mark.parametrize("no_proxy, through", [("", True), ("127.0.0.1", False),
                                               ("*", False)])
def test_http_proxy_from_the_environment_is_honoured_and_said(
        forward_proxy, tmp_path, caplog, no_proxy, through):
    proxies = {"http": forward_proxy, "https": forward_proxy}
    if no_proxy:
        proxies["no"] = no_proxy
    with UpstreamServer() as up, ProxyServer(up.url, tmp_path / "c.duckdb",
                                             egress_proxies=proxies) as proxy:
        r = httpx.get(proxy.url + "/models")
        via = up.requests[-1].headers.get("via", "")
    assert r.status_code == 200
    assert ("proxy.py" in via) == through
    said = [rec.getMessage() for rec in caplog.records if "egress proxy" in rec.getMessage()]
    assert bool(said) == through


def test_egress_proxy_settings_come_from_the_usual_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.internal")
    settings = settings_from_env(str(tmp_path / "c.duckdb"))
    assert settings.egress_proxies["https"] == "http://proxy.corp:3128"
    assert settings.egress_proxies["no"] == "localhost,.internal"


def test_credentials_in_the_upstream_url_are_dropped_and_never_echoed(tmp_path, caplog):
    """user:pass@ in --upstream: the proxy still serves, but the credentials reach neither
    the upstream (Host header, Authorization), nor /healthz, nor the log."""
    upstream = Upstream("https://user:s3cretpass@platform.example/v1")
    assert upstream.credentials_dropped and upstream.base == "https://platform.example/v1"
    assert b"s3cretpass" not in upstream.host_header

    def answer(seen) -> Answer:
        body = json.dumps({"object": "list", "data": []}).encode()
        return Answer(response_bytes(200, [("Content-Type", "application/json")], body))

    with RawUpstream(responder=answer) as raw:
        url = raw.url.replace("http://", "http://user:s3cretpass@")
        with caplog.at_level("INFO"), ProxyServer(url, tmp_path / "callmeter.duckdb") as proxy:
            reply = httpx.get(proxy.url + "/models",
                              headers={"Authorization": "Bearer " + KEYS["alice"]})
            health = httpx.get(proxy.url.removesuffix("/v1") + "/healthz")
        seen = raw.state.seen[-1]
    assert reply.status_code == 200
    assert "s3cretpass" not in seen.headers["host"] and "user" not in seen.headers["host"]
    assert seen.headers["authorization"] == "Bearer " + KEYS["alice"]
    assert "s3cretpass" not in health.text
    logged = " ".join(rec.getMessage() for rec in caplog.records)
    assert "s3cretpass" not in logged and "user:pass@" in logged
    result = CliRunner().invoke(cli_app, ["proxy", "--upstream", "ftp://user:s3cretpass@x/",
                                          "--db", str(tmp_path / "c.duckdb")])
    assert result.exit_code != 0 and "s3cretpass" not in result.output


@pytest.mark.parametrize("status", [204, 304, 307])
def test_answers_without_content_cost_no_estimated_tokens(tmp_path, status):
    """A 204/304/307 is no answer from the model: no tokens are invented for it."""
    fields = [("Location", "https://elsewhere.example/")] if status == 307 else []
    framing = "length" if status == 307 else "none"
    with RawUpstream(responder=lambda seen: Answer(response_bytes(
            status, fields, b"", framing=framing))) as raw, \
            ProxyServer(raw.url, tmp_path / "callmeter.duckdb") as proxy:
        r = httpx.post(proxy.url + "/chat/completions", json={
            "model": "gpt-4o", "messages": [{"role": "user", "content": "a long question"}]})
        rows = load_rows(proxy)
    assert r.status_code == status
    assert [(x["status"], x["input_tokens"], x["output_tokens"], x["usage_source"])
            for x in rows] == [(status, 0, 0, "none")]
