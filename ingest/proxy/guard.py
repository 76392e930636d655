"""Client-side limits uvicorn's httptools protocol lacks: a header timeout and a header size cap.

uvicorn 0.55's ``HttpToolsProtocol`` arms no timer before a request's headers are complete (its
keep-alive timer starts after a response and stops at the next byte), and httptools buffers a
header of any size; h11's ``h11_max_incomplete_event_size`` applies to the slower h11 protocol
only. So a client that connects and never finishes its headers (slow-loris) held a descriptor
for ever, and an 8 MiB header was read and forwarded. This subclass answers ``408`` when the
header section is not complete within ``header_timeout`` seconds of the connection opening or
of the request's first byte (Node's ``headersTimeout`` does the same), and ``431`` (RFC 6585)
when it grows past ``max_header_bytes``, both with ``Connection: close``.

Under a flood of such connections the timeout alone is not enough: the process would run out of
descriptors first (and libuv then sheds new connections, real calls among them). So client
connections are capped at half the open-files limit (the other half is for upstream
connections): past the cap, the connection that has waited longest for its headers is answered
408 and closed to make room, and a connection with nothing to evict gets 503.
"""

from __future__ import annotations

import asyncio
import json
import resource

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LINGER_SECONDS = 2.0  # after refusing, how long the rest of the client's bytes are read away


def _answer(status: int, reason: str, message: str, code: str) -> bytes:
    body = json.dumps({"error": {"message": message, "type": "proxy_error", "param": None,
                                 "code": code}}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


def connection_cap() -> int:
    """Client connections allowed at once: half the open-files limit, less a margin."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(soft // 2 - 16, 16)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout = 30.0
    max_header_bytes = 64 * 1024
    max_connections = 1 << 20

    # uvicorn declares the parameter asyncio.Transport where asyncio.Protocol has a
    # BaseTransport: its override is narrower than the base, so ours (the same) is too
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_seen = 0       # header bytes fed while the section is still incomplete
        self._head_counted = 0    # url + field bytes the parser reported for this request
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None
        # connections waiting for their headers, oldest first (one registry per server)
        self._waiting: dict[GuardedHttpToolsProtocol, None] = self.server_state.__dict__.setdefault(
            "callmeter_waiting", {})
        if len(self.connections) > self.max_connections and not self._evict_oldest():
            self._refuse(_answer(503, "Service Unavailable", "too many client connections",
                                 "too_many_connections"))
            return
        self._arm()

    def _evict_oldest(self) -> bool:
        for other in self._waiting:
            if other is not self:
                other._head_timed_out()
                return True
        return False

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)
            self._waiting[self] = None

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._waiting.pop(self, None)

    def _refuse(self, answer: bytes, linger: bool = False) -> None:
        """Answer and close. ``linger``: first stop writing and drain what the client still
        sends for a moment (a client mid-way through a huge header): closing with unread
        bytes would reset the connection and lose the answer."""
        self._refused = True
        self._disarm()
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(answer)
        if linger and transport.can_write_eof():
            transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, transport.close)
        else:
            transport.close()

    def _head_timed_out(self) -> None:
        self._disarm()
        self._refuse(_answer(408, "Request Timeout", "the request's headers did not arrive "
                             f"within {self.header_timeout:g} s", "request_header_timeout"))

    def _too_large(self) -> None:
        self._refuse(_answer(431, "Request Header Fields Too Large", "the request's header "
                             f"section is larger than {self.max_header_bytes} bytes",
                             "request_header_too_large"), linger=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        reading_head = self._head_timer is not None
        super().data_received(data)
        if reading_head and self._head_timer is not None and not self._refused:
            self._head_seen += len(data)  # all of it was header: the section is still open
            if self._head_seen > self.max_header_bytes:
                self._too_large()

    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._head_seen = self._head_counted = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            self._head_counted += len(url)
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._refused:
            self._head_counted += len(name) + len(value) + 4
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        if self._head_counted > self.max_header_bytes:
            self._too_large()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()


def guarded_protocol(header_timeout: float, max_header_bytes: int
                     ) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http=`` setting, with these limits."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,),
                {"header_timeout": header_timeout, "max_header_bytes": max_header_bytes,
                 "max_connections": connection_cap()})
