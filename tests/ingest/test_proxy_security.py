"""Nothing secret kept, nothing sent elsewhere: keys never reach a file, requests only ever
reach the configured upstream, hop-by-hop headers stop at the proxy."""

from __future__ import annotations

import logging
import socket

import httpx
from proxy_helpers import PROXY_TEST_KEY, load_rows

from ingest.proxy import ProxyOptions

AUTH = {"Authorization": f"Bearer {PROXY_TEST_KEY}"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "a secret prompt"}]}


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"}"):
            part = s.recv(65536)
            if not part:
                break
            data += part
    return data


def test_no_key_prompt_or_reply_in_any_written_file(proxy, client, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="callmeter")
    client.chat.completions.create(model="gpt-4o", messages=CHAT["messages"])
    list(client.chat.completions.create(model="gpt-4o", messages=CHAT["messages"],
                                        stream=True))
    client.embeddings.create(model="text-embedding-3-small", input="a secret prompt")
    httpx.post(proxy.url + "/chat/completions", json=CHAT,
               headers={"api-key": PROXY_TEST_KEY, "X-Upstream-Behaviour": "status=401"})
    rows = load_rows(proxy)
    assert len(rows) == 4 and len({r["key_id"] for r in rows}) == 1  # same key, same id
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in (PROXY_TEST_KEY.encode(), PROXY_TEST_KEY[3:].encode(), b"Bearer",
                       b"a secret prompt", b"Hello world world"):
            assert secret not in data, (path, secret)
    assert PROXY_TEST_KEY not in caplog.text and "Bearer" not in caplog.text


def test_access_log_has_no_key_query_or_body(upstream, tmp_path, caplog):
    from upstream import ProxyServer

    caplog.set_level(logging.INFO, logger="callmeter.proxy.access")
    with ProxyServer(upstream.url, tmp_path / "c.duckdb", access_log=True) as px:
        httpx.post(px.url + "/chat/completions?key=" + PROXY_TEST_KEY, json=CHAT, headers=AUTH)
    lines = [r.getMessage() for r in caplog.records if r.name == "callmeter.proxy.access"]
    assert len(lines) == 1 and '"status": 200' in lines[0]
    assert PROXY_TEST_KEY not in lines[0] and "secret prompt" not in lines[0]


def test_absolute_url_and_host_header_cannot_redirect(proxy, upstream):
    before = len(upstream.requests)
    reply = raw_request(proxy.port, b"GET http://evil.example:9/v1/models HTTP/1.1\r\n"
                        b"Host: evil.example:9\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    seen = upstream.requests[-1]
    assert len(upstream.requests) == before + 1 and seen.path == "/v1/models"
    assert seen.headers["host"] == f"127.0.0.1:{upstream.port}"


def test_dot_dot_paths_stay_on_the_upstream(proxy, upstream):
    reply = raw_request(proxy.port, b"GET /v1/../../../../etc/passwd HTTP/1.1\r\n"
                        b"Host: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    assert upstream.requests[-1].path == "/etc/passwd"  # on the upstream itself, echoed
    r = httpx.get(proxy.url + "/models/%2e%2e/%2e%2e/x")
    assert r.status_code == 200 and upstream.requests[-1].path == "/x"


def test_hop_by_hop_and_proxy_headers_not_forwarded(proxy, upstream):
    httpx.post(proxy.url + "/chat/completions", json=CHAT, headers=AUTH | {
        "Connection": "keep-alive, X-Hop-Secret", "X-Hop-Secret": "1", "Keep-Alive": "300",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==", "TE": "trailers",
        "X-Callmeter-Tags": "team=a", "X-Kept": "yes"})
    seen = upstream.requests[-1].headers
    for name in ("x-hop-secret", "keep-alive", "proxy-authorization", "te", "x-callmeter-tags"):
        assert name not in seen, name
    assert seen["x-kept"] == "yes" and seen["authorization"] == AUTH["Authorization"]


def test_upstream_cookies_are_not_shared_between_clients(proxy, upstream):
    r = httpx.post(proxy.url + "/chat/completions", json=CHAT,
                   headers=AUTH | {"X-Upstream-Behaviour": "set_cookie"})
    assert r.headers["set-cookie"].startswith("standin_session=")  # passed to its client
    # a second client must never be sent a cookie the proxy picked up elsewhere
    httpx.get(proxy.url + "/models", headers=AUTH)
    assert "cookie" not in upstream.requests[-1].headers


def test_listens_on_loopback_by_default():
    assert ProxyOptions(upstream="http://x").host == "127.0.0.1"
    assert ProxyOptions(upstream="http://x").port == 8700
