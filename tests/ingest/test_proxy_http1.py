"""The proxy's lean HTTP/1.1 transport against a real local upstream: keep-alive, chunk
boundaries, timeouts and failures as httpx's exceptions, HEAD, bodies ended by close."""

from __future__ import annotations

import asyncio
import socket
import threading

import httpx
import pytest

from ingest.proxy.http1 import Http1Transport

CHAT = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": true}'
TIMEOUTS = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}


def request(url: str, method: str = "POST", body: bytes = b"", headers=None,
            timeouts=TIMEOUTS) -> httpx.Request:
    return httpx.Request(method, url, content=body, headers=headers or
                         {"content-type": "application/json"}, extensions={"timeout": timeouts})


async def fetch(transport, req) -> tuple[int, list[bytes]]:
    response = await transport.handle_async_request(req)
    try:
        return response.status_code, [c async for c in response.aiter_raw()]
    finally:
        await response.aclose()


def test_keeps_one_connection_alive_for_calls_in_sequence(upstream):
    async def main():
        t = Http1Transport()
        seen = []
        for _ in range(3):
            status, chunks = await fetch(t, request(upstream.url + "/chat/completions",
                                                    body=CHAT.replace(b"true", b"false")))
            seen.append((status, b"".join(chunks).count(b'"prompt_tokens": 11')))
            seen.append(sum(len(q) for q in t.idle.values()))
        await t.aclose()
        return seen

    assert asyncio.run(main()) == [(200, 1), 1, (200, 1), 1, (200, 1), 1]


def test_each_upstream_event_stays_its_own_chunk(upstream):
    async def main():
        t = Http1Transport()
        req = request(upstream.url + "/chat/completions", body=CHAT,
                      headers={"content-type": "application/json",
                               "x-upstream-behaviour": "chunks=4;chunk_delay=0.01"})
        status, chunks = await fetch(t, req)
        await t.aclose()
        return status, chunks

    status, chunks = asyncio.run(main())
    assert status == 200
    # role chunk, 4 content chunks, finish chunk, [DONE]: seven events, one per chunk
    assert [c.count(b"data: ") for c in chunks] == [1] * 7
    assert chunks[-1] == b"data: [DONE]\n\n"


def test_slow_upstream_is_a_read_timeout(upstream):
    async def main():
        t = Http1Transport()
        req = request(upstream.url + "/chat/completions", body=CHAT,
                      headers={"content-type": "application/json",
                               "x-upstream-behaviour": "delay=1"},
                      timeouts=dict(TIMEOUTS, read=0.2))
        with pytest.raises(httpx.ReadTimeout):
            await t.handle_async_request(req)
        left = sum(len(q) for q in t.idle.values())
        await t.aclose()
        return left

    assert asyncio.run(main()) == 0  # the timed-out connection is not reused


def test_nothing_listening_is_a_connect_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there

    async def main():
        with pytest.raises(httpx.ConnectError):
            await Http1Transport().handle_async_request(
                request(f"http://127.0.0.1:{port}/v1/models", "GET"))

    asyncio.run(main())


def test_head_has_no_body_and_a_later_call_still_works(upstream):
    async def main():
        t = Http1Transport()
        head = await fetch(t, request(upstream.url + "/models", "HEAD"))
        get = await fetch(t, request(upstream.url + "/models", "GET"))
        await t.aclose()
        return head, get

    (h_status, h_body), (g_status, g_body) = asyncio.run(main())
    assert h_body == [] and g_status == 200 and b"gpt-4o" in b"".join(g_body)
    assert h_status in (200, 405)


def raw_server(answer: bytes) -> tuple[socket.socket, threading.Thread]:
    """A one-shot server that reads a request, writes ``answer`` and closes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(answer)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return srv, thread


def test_body_ended_by_closing_the_connection():
    srv, thread = raw_server(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                             b"connection: close\r\n\r\nall of it")
    port = srv.getsockname()[1]

    async def main():
        t = Http1Transport()
        result = await fetch(t, request(f"http://127.0.0.1:{port}/x", "GET"))
        left = sum(len(q) for q in t.idle.values())
        await t.aclose()
        return result, left

    (status, chunks), left = asyncio.run(main())
    thread.join(5)
    srv.close()
    assert (status, b"".join(chunks), left) == (200, b"all of it", 0)


def test_cut_chunked_body_is_a_read_error():
    srv, thread = raw_server(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                             b"5\r\nhello\r\n")
    port = srv.getsockname()[1]

    async def main():
        t = Http1Transport()
        response = await t.handle_async_request(request(f"http://127.0.0.1:{port}/x", "GET"))
        got = []
        with pytest.raises(httpx.ReadError):
            async for chunk in response.aiter_raw():
                got.append(chunk)
        await response.aclose()
        return got

    assert asyncio.run(main()) == [b"hello"]
    thread.join(5)
    srv.close()
