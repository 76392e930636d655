"""A lean HTTP/1.1 transport for httpx: asyncio protocols + httptools, a keep-alive pool.

The proxy talks to one upstream: it needs keep-alive, TLS, chunked and content-length bodies,
streaming with back-pressure, and timeouts — not redirects, cookies, auth or decompression
(egress through an HTTP(S) proxy switches to httpx's own transport: see ``forwarding``). Doing
only that took about half the proxy's CPU per request of httpx-aiohttp, and each upstream
chunk stays one chunk (aiohttp's buffer merges events that arrive together);
docs/performance.md has the figures. httpx's API stays: this is an ``httpx.AsyncBaseTransport``
raising httpx's exceptions (connect/pool/read timeouts, ConnectError, ReadError,
RemoteProtocolError). How a response is read: :mod:`.http1_conn`; it is held to httpx's own
transport by a differential test (tests/ingest/test_proxy_differential.py).

Keep-alive: an idle connection is kept at most ``keepalive_seconds`` (default 4 s, below the
5 s of uvicorn, Node and Apache) and never longer than the upstream's ``Keep-Alive: timeout=``
less a second. A request that fails on a *reused* connection before any response byte arrived
(the upstream closed it just as the request left) is sent once more on a new connection
(as Go's net/http does for a server-closed idle connection).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .http1_conn import Conn, wait_for_future

DEFAULT_KEEPALIVE = 4.0
PoolKey = tuple[str, str, int | None]  # scheme, host, port


class _Body(httpx.AsyncByteStream):
    def __init__(self, pool: Http1Transport, key: PoolKey, conn: Conn, timeout: float | None
                 ) -> None:
        self.pool, self.key, self.conn, self.timeout = pool, key, conn, timeout
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self.conn
        while (chunk := await conn.next_chunk(self.timeout)) is not None:
            yield chunk

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool._release(self.key, self.conn)


class Http1Transport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 (+TLS) to any origin, ``max_connections`` open per origin at most."""

    def __init__(self, *, max_connections: int = 1000,
                 keepalive_seconds: float = DEFAULT_KEEPALIVE,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_connections = max_connections
        self.keepalive = keepalive_seconds
        self.ssl = ssl_context
        self.idle: dict[tuple[Any, ...], deque[Conn]] = {}
        self.slots: dict[tuple[Any, ...], asyncio.Semaphore] = {}

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

    async def _send(self, key: PoolKey, payload: bytes, timeout: dict[str, Any], head_only: bool
                    ) -> tuple[Conn, int]:
        """Send on an idle keep-alive connection (else a new one); wait for the final status.

        A reused connection that fails before any response byte gets one retry on a new one."""
        conn = self._idle_conn(key)
        if conn is not None:
            try:
                return conn, await self._exchange(conn, payload, timeout, head_only)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                if conn.received:
                    raise
        conn = await self._connect(key, timeout.get("connect"))
        return conn, await self._exchange(conn, payload, timeout, head_only)

    def _idle_conn(self, key: PoolKey) -> Conn | None:
        idle = self.idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.transport.is_closing() and now - conn.idle_since <= self._expiry(conn):
                return conn
            conn.transport.close()
        return None

    def _expiry(self, conn: Conn) -> float:
        if conn.server_idle is None:
            return self.keepalive
        return min(self.keepalive, conn.server_idle - 1.0)

    @staticmethod
    async def _exchange(conn: Conn, payload: bytes, timeout: dict[str, Any],
                        head_only: bool) -> int:
        try:
            head = conn.start(payload, head_only)
            await wait_for_future(head, timeout.get("read"), httpx.ReadTimeout)
        except BaseException:  # timed out, failed or cancelled (client gone): never reuse it
            conn.finish()
            conn.transport.close()
            raise
        return int(head.result())

    async def _connect(self, key: PoolKey, timeout: float | None) -> Conn:
        scheme, host, port = key
        port = port or (443 if scheme == "https" else 80)
        context = None
        if scheme == "https":
            context = self.ssl or ssl.create_default_context()
            self.ssl = context
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _t, conn = await loop.create_connection(Conn, host, port, ssl=context)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except ssl.SSLCertVerificationError as exc:
            raise httpx.ConnectError(f"TLS: the certificate of {host}:{port} was not accepted "
                                     f"({exc.verify_message})") from exc
        except ssl.SSLError as exc:
            raise httpx.ConnectError(f"TLS handshake with {host}:{port} failed "
                                     f"({exc.reason or exc})") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        return conn

    def _release(self, key: PoolKey, conn: Conn) -> None:
        self.slots[key].release()
        conn.finish()
        if conn.reusable and self._expiry(conn) > 0:
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
