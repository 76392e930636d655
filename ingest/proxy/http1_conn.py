"""One upstream HTTP/1.1 connection of the lean transport: an asyncio protocol over httptools.

Reading a response follows RFC 9112 and, where the RFC leaves room, what httpx's own transport
(httpcore + h11) does, so that a client sees the same answer through the proxy as direct:

- interim responses (1xx other than 101: ``100 Continue``, ``103 Early Hints``, unsolicited or
  not) are read and skipped (RFC 9110 §15.2); ``101`` was never asked for (the proxy drops
  ``Upgrade``) and is a protocol error;
- an obs-folded header line is unfolded into one SP (RFC 9112 §5.2, as h11's
  ``_obsolete_line_fold``); trailing whitespace is not part of a value (RFC 9110 §5.5);
- the header section is limited to :data:`MAX_HEAD_BYTES` (httpcore's 100 KiB);
- trailers and chunk extensions are read and dropped (RFC 9112 §7.1.1, §7.1.2);
- a body delimited by the connection's end (RFC 9112 §6.3 rule 8) is complete only on a clean
  close: a reset is a read error, never a short body passed off as whole;
- bytes that arrive while no request is outstanding (a late answer, a second response) make
  the connection unusable: a pooled connection never hands one client's answer to another.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import httptools
import httpx

HIGH_WATER = 1024 * 1024  # response bytes buffered before the upstream socket is paused
MAX_HEAD_BYTES = 100 * 1024  # header section limit (httpcore's h11 max_incomplete_event_size)
_OBS_FOLD = re.compile(rb"\r?\n[ \t]+")
_KEEP_ALIVE_TIMEOUT = re.compile(rb"(?:^|[,;\s])timeout\s*=\s*(\d+)", re.IGNORECASE)
_HEAD_END = b"\r\n\r\n"


class Conn(asyncio.Protocol):
    """One upstream connection; one request at a time."""

    transport: asyncio.Transport  # set by connection_made, before any other use

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.loop = asyncio.get_running_loop()
        self.head: asyncio.Future[int] | None = None  # the final status, once read
        self.waiter: asyncio.Future[None] | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.complete = False
        self.lost: Exception | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.idle_since = 0.0
        self.server_idle: float | None = None  # the upstream's Keep-Alive: timeout=, if sent
        self.no_length = False
        self.keep_alive = False
        self.head_only = False
        self.in_flight = False     # a request was sent and its response is not yet complete
        self.in_head = False       # reading a header section (interim or final)
        self.interim = False       # the header section being read is a 1xx
        self.pending = b""         # an incomplete header section
        self.received = 0          # response bytes of the current exchange

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP connection: a Transport

    def data_received(self, data: bytes) -> None:
        if not self.in_flight or self.complete:
            # nobody asked for these bytes: never let them become the next request's answer
            self._fail(httpx.RemoteProtocolError("upstream sent data with no request waiting"))
            self.keep_alive = False
            self.transport.close()
            return
        self.received += len(data)
        try:
            if self.in_head or self.pending:
                self._feed_head(data)
            else:
                self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._protocol_error("upstream switched protocols (101) without being asked")
        except httptools.HttpParserError as exc:
            self._protocol_error(f"bad response from upstream: {exc}")

    def _feed_head(self, data: bytes) -> None:
        """Collect whole header sections (each fed at once, unfolded); then the body bytes."""
        buf = self.pending + data if self.pending else data
        self.pending = b""
        while self.in_head and buf:
            end = buf.find(_HEAD_END)
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    raise httptools.HttpParserError("response header section over 100 KiB")
                self.pending = buf
                return
            end += len(_HEAD_END)
            if end > MAX_HEAD_BYTES:
                raise httptools.HttpParserError("response header section over 100 KiB")
            block, buf = buf[:end], buf[end:]
            if _OBS_FOLD.search(block, 0, end - 2) is not None:
                block = _unfold(block)
            self.parser.feed_data(block)
        if buf:
            self.parser.feed_data(buf)

    def connection_lost(self, exc: Exception | None) -> None:
        if (exc is None and self.head is not None and self.head.done() and not self.complete
                and self.no_length and self.lost is None):
            self.on_message_complete()  # a body delimited by the connection's (clean) end
            return
        reason = f": {exc}" if exc is not None else ""
        self._fail(httpx.ReadError(f"upstream closed the connection{reason}"))

    def pause_writing(self) -> None:  # request bodies are written at once; nothing to pause
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:  # a second message after the answer: the connection is unusable
            self.keep_alive = False
            return
        self.headers = []
        self.no_length = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_head:  # trailers (after a chunked body) are read and dropped
            self.headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.interim = True  # RFC 9110 §15.2: read and skip; the final answer follows
            return
        self.in_head = False
        self.no_length = not any(n.lower() in (b"content-length", b"transfer-encoding")
                                 for n, _ in self.headers)
        for name, value in self.headers:
            if name.lower() == b"keep-alive":
                m = _KEEP_ALIVE_TIMEOUT.search(value)
                self.server_idle = float(m.group(1)) if m else self.server_idle
        if self.head is not None and not self.head.done():
            self.head.set_result(status)
        if self.head_only:  # a HEAD answer has no body whatever its headers say; and the
            self.complete = True  # parser would wait for one, so the connection is not reused
            self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        if self.complete:  # a second message after the answer: the connection is unusable
            self.keep_alive = False
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive() and not self.head_only
        self._wake()

    # -- helpers ---------------------------------------------------------------------------
    def _protocol_error(self, message: str) -> None:
        self._fail(httpx.RemoteProtocolError(message))
        self.keep_alive = False
        self.transport.close()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self.lost is None:
            self.lost = exc
        for fut in (self.head, self.waiter):
            if fut is not None and not fut.done():
                fut.set_exception(exc)

    def start(self, payload: bytes, head_only: bool = False) -> asyncio.Future[int]:
        self.head_only = head_only
        self.headers = []
        self.chunks.clear()
        self.buffered = 0
        self.complete = self.keep_alive = self.interim = False
        self.no_length = False
        self.in_flight = self.in_head = True
        self.pending = b""
        self.received = 0
        self.head = self.loop.create_future()
        self.transport.write(payload)
        return self.head

    def finish(self) -> None:
        """The exchange is over (body read or abandoned): later bytes are unsolicited."""
        self.in_flight = False

    async def next_chunk(self, timeout: float | None) -> bytes | None:
        """The next body bytes, or None at the end of the response."""
        while not self.chunks:
            if self.complete:
                return None
            if self.lost is not None:
                raise self.lost
            self.waiter = self.loop.create_future()
            await wait_for_future(self.waiter, timeout, httpx.ReadTimeout)
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


def _unfold(block: bytes) -> bytes:
    """Replace each obs-fold with one SP (RFC 9112 §5.2); a fold right after the status line
    has no field to continue, so it stays and the parser rejects it (as h11 does)."""
    first = block.find(b"\n") + 1
    if block[first:first + 1] in (b" ", b"\t"):
        return block
    return block[:first] + _OBS_FOLD.sub(b" ", block[first:-4]) + block[-4:]


async def wait_for_future(fut: asyncio.Future[Any], timeout: float | None,
                          error: Callable[[str], BaseException]) -> None:
    if timeout is None:
        await fut
        return
    def expire() -> None:
        if not fut.done():
            fut.set_exception(error("upstream timed out"))

    handle = fut.get_loop().call_later(timeout, expire)
    try:
        await fut
    finally:
        handle.cancel()
