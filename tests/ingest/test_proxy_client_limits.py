"""Clients that never finish their headers, or send huge ones, get 408 / 431 and cost nothing:
uvicorn's httptools protocol has neither limit (see ingest/proxy/guard.py)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from proxy_helpers import PROXY_TEST_KEY, load_rows
from upstream import ProxyServer

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
def limited(upstream, tmp_path):
    with ProxyServer(upstream.url, tmp_path / "callmeter.duckdb", header_timeout=1.0,
                     max_header_bytes=64 * 1024) as server:
        yield server


def answer_to(port: int, head: bytes, pause_after: float = 0.0) -> bytes:
    """Send ``head`` (as far as the proxy lets us), then read until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            for i in range(0, len(head), 65536):
                sock.sendall(head[i:i + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass
        time.sleep(pause_after)
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except ConnectionResetError:
            pass
        return got


def test_an_8_mib_header_gets_431_and_is_never_forwarded(limited, upstream):
    before = len(upstream.requests)
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (8 << 20)
            + b"\r\nContent-Length: 2\r\n\r\n{}")
    got = answer_to(limited.port, head)
    assert got.startswith(b"HTTP/1.1 431 ") and b"request_header_too_large" in got
    assert len(upstream.requests) == before
    # a header section within the limit still goes through
    r = httpx.post(limited.url + "/chat/completions", json=CHAT,
                   headers={"Authorization": f"Bearer {PROXY_TEST_KEY}", "X-Pad": "p" * 30000})
    assert r.status_code == 200


def test_headers_that_never_finish_get_408_within_the_timeout(limited):
    started = time.monotonic()
    got = answer_to(limited.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slo")
    assert got.startswith(b"HTTP/1.1 408 ") and b"request_header_timeout" in got
    assert time.monotonic() - started < 4
    with socket.create_connection(("127.0.0.1", limited.port), timeout=10) as idle:
        started = time.monotonic()  # a connection that never sends a byte is closed too
        assert idle.recv(65536).startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 4


def test_a_slow_but_steady_client_within_the_timeout_is_served(limited):
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nConnection: close\r\nAuthorization: Bearer " + PROXY_TEST_KEY.encode() +
            b"\r\nContent-Length: 75\r\n\r\n")
    body = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi there!"}]}'
    assert len(body) == 75
    with socket.create_connection(("127.0.0.1", limited.port), timeout=10) as sock:
        for i in range(0, len(head), 40):  # the headers in pieces, well within one second
            sock.sendall(head[i:i + 40])
            time.sleep(0.05)
        sock.sendall(body)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    assert got.startswith(b"HTTP/1.1 200 ")
    assert [r["status"] for r in load_rows(limited)] == [200]
