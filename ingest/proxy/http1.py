"""A lean HTTP/1.1 transport for httpx: asyncio protocols + httptools, a keep-alive pool.

The proxy talks to one upstream: it needs keep-alive, TLS, chunked and content-length bodies,
streaming with back-pressure, and timeouts — not redirects, cookies, proxies, auth or
decompression. Doing only that took about half the proxy's CPU per request of httpx-aiohttp,
and each upstream chunk stays one chunk (aiohttp's buffer merges events that arrive together);
docs/performance.md has the figures. httpx's API stays: this is an ``httpx.AsyncBaseTransport``
raising httpx's exceptions (connect/pool/read timeouts, ConnectError, ReadError).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque

import httptools
import httpx

HIGH_WATER = 1024 * 1024  # response bytes buffered before the upstream socket is paused


class _Conn(asyncio.Protocol):
    """One upstream connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.loop = asyncio.get_running_loop()
        self.head: asyncio.Future | None = None
        self.waiter: asyncio.Future | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.complete = False
        self.lost: Exception | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.idle_since = 0.0
        self.no_length = False
        self.keep_alive = False
        self.head_only = False

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"bad response from upstream: {exc}"))
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if self.head is not None and self.head.done() and not self.complete and self.no_length:
            self.on_message_complete()  # a body delimited by the connection's end
            return
        self._fail(httpx.ReadError("upstream closed the connection"))

    def pause_writing(self) -> None:  # request bodies are written at once; nothing to pause
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks ---------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        p = self.parser
        self.no_length = not any(n.lower() in (b"content-length", b"transfer-encoding")
                                 for n, _ in self.headers)
        if self.head is not None and not self.head.done():
            self.head.set_result(p.get_status_code())
        if self.head_only:  # a HEAD answer has no body whatever its headers say; and the
            self.complete = True  # parser would wait for one, so the connection is not reused
            self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()  # reset once this returns
        self._wake()

    # -- helpers ---------------------------------------------------------------------------
    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self.lost = exc
        for fut in (self.head, self.waiter):
            if fut is not None and not fut.done():
                fut.set_exception(exc)

    def start(self, payload: bytes, head_only: bool = False) -> asyncio.Future:
        self.head_only = head_only
        self.headers = []
        self.chunks.clear()
        self.buffered = 0
        self.complete = self.keep_alive = False
        self.no_length = False
        self.head = self.loop.create_future()
        self.transport.write(payload)
        return self.head

    async def next_chunk(self, timeout: float | None) -> bytes | None:
        """The next body bytes, or None at the end of the response."""
        while not self.chunks:
            if self.complete:
                return None
            if self.lost is not None:
                raise self.lost
            self.waiter = self.loop.create_future()
            await _wait(self.waiter, timeout, httpx.ReadTimeout)
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.paused and self.buffered < HIGH_WATER // 4:
            self.paused = False
            self.transport.resume_reading()
        return chunk

    @property
    def reusable(self) -> bool:
        return (self.complete and self.keep_alive and self.lost is None
                and not self.transport.is_closing())


async def _wait(fut: asyncio.Future, timeout: float | None, error) -> None:
    if timeout is None:
        await fut
        return
    handle = fut.get_loop().call_later(
        timeout, lambda: fut.done() or fut.set_exception(error("upstream timed out")))
    try:
        await fut
    finally:
        handle.cancel()


class _Body(httpx.AsyncByteStream):
    def __init__(self, pool: Http1Transport, key, conn: _Conn, timeout: float | None) -> None:
        self.pool, self.key, self.conn, self.timeout = pool, key, conn, timeout
        self.closed = False

    async def __aiter__(self):
        conn = self.conn
        while (chunk := await conn.next_chunk(self.timeout)) is not None:
            yield chunk

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool._release(self.key, self.conn)


class Http1Transport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 (+TLS) to any origin, ``max_connections`` open per origin at most."""

    def __init__(self, *, max_connections: int = 1000, keepalive_seconds: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_connections = max_connections
        self.keepalive = keepalive_seconds
        self.ssl = ssl_context
        self.idle: dict[tuple, deque[_Conn]] = {}
        self.slots: dict[tuple, asyncio.Semaphore] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.scheme, url.host, url.port)
        timeout = request.extensions.get("timeout", {})
        slots = self.slots.get(key) or self.slots.setdefault(
            key, asyncio.Semaphore(self.max_connections))
        await _acquire(slots, timeout.get("pool"))
        try:
            payload = _request_bytes(request, url)
            conn, status = await self._send(key, payload, timeout, request.method == "HEAD")
        except BaseException:
            slots.release()
            raise
        return httpx.Response(status, headers=conn.headers,
                              stream=_Body(self, key, conn, timeout.get("read")),
                              request=request, extensions={"http_version": b"HTTP/1.1"})

    async def _send(self, key, payload: bytes, timeout: dict, head_only: bool
                    ) -> tuple[_Conn, int]:
        """Send on an idle keep-alive connection (else a new one); wait for the status line."""
        idle = self.idle.get(key)
        now = time.monotonic()
        conn = None
        while idle:
            conn = idle.pop()
            if not conn.transport.is_closing() and now - conn.idle_since <= self.keepalive:
                break
            conn.transport.close()
            conn = None
        if conn is None:
            conn = await self._connect(key, timeout.get("connect"))
        try:
            head = conn.start(payload, head_only)
            await _wait(head, timeout.get("read"), httpx.ReadTimeout)
        except BaseException:  # timed out, failed or cancelled (client gone): never reuse it
            conn.transport.close()
            raise
        return conn, head.result()

    async def _connect(self, key, timeout: float | None) -> _Conn:
        scheme, host, port = key
        port = port or (443 if scheme == "https" else 80)
        context = None
        if scheme == "https":
            context = self.ssl or ssl.create_default_context()
            self.ssl = context
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _t, conn = await loop.create_connection(_Conn, host, port, ssl=context)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        return conn

    def _release(self, key, conn: _Conn) -> None:
        self.slots[key].release()
        if conn.reusable:
            conn.idle_since = time.monotonic()
            self.idle.setdefault(key, deque()).append(conn)
        else:
            conn.transport.close()

    async def aclose(self) -> None:
        for idle in self.idle.values():
            for conn in idle:
                conn.transport.close()
        self.idle.clear()


async def _acquire(slots: asyncio.Semaphore, timeout: float | None) -> None:
    if not slots.locked():
        await slots.acquire()
        return
    try:
        async with asyncio.timeout(timeout):
            await slots.acquire()
    except TimeoutError as exc:
        raise httpx.PoolTimeout("no upstream connection free in time") from exc


def _request_bytes(request: httpx.Request, url: httpx.URL) -> bytes:
    body = request.content
    target = url.raw_path
    lines = [request.method.encode(), b" ", target, b" HTTP/1.1\r\n"]
    has_host = False
    for name, value in request.headers.raw:
        low = name.lower()
        if low == b"host":
            has_host = True
        elif low in (b"content-length", b"transfer-encoding"):
            continue
        lines += [name, b": ", value, b"\r\n"]
    if not has_host:
        lines += [b"host: ", url.netloc, b"\r\n"]
    if body or request.method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
        lines += [b"content-length: ", str(len(body)).encode(), b"\r\n"]
    lines += [b"\r\n", body]
    return b"".join(lines)
