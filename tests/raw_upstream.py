"""A raw asyncio HTTP/1.1 upstream that misbehaves on demand, byte for byte.

``tests/upstream.py`` is a well-behaved OpenAI stand-in on uvicorn; this one writes exactly the
bytes a test scripts, split into exactly the packets it scripts, so a test can put the proxy in
front of what real servers and CDNs do at the edges of the protocol:

- interim responses before the answer: ``100 Continue`` unsolicited, ``103 Early Hints``
  with ``Link`` fields (RFC 9110 §15.2, RFC 8297; a client parses and skips them);
- obs-folded field lines (RFC 9112 §5.2: a recipient replaces each fold with SP);
- chunked bodies with chunk extensions and trailer fields (RFC 9112 §7.1.1, §7.1.2), written
  the way Node writes them (``lib/_http_outgoing.js``, ``write_``: ``len.toString(16)`` CRLF
  data CRLF per ``write()``; ``end``: ``0`` CRLF trailers CRLF; nodejs/node commit 003e581);
- bodies delimited by closing the connection (RFC 9112 §6.3 rule 8), ended cleanly (FIN) or
  by a reset (RST: ``SO_LINGER`` 0, then close) mid-body;
- any split into packets, down to one byte per packet, with a pause between packets;
- idle keep-alive connections closed without notice after ``idle_close`` seconds, as uvicorn
  does (``uvicorn/protocols/http/httptools_impl.py``, ``timeout_keep_alive_handler``,
  uvicorn 0.55.0, default 5 s) and as Node advertises with ``Keep-Alive: timeout=5``
  (``_storeHeader``, same Node commit); or, on demand, a connection closed when the *next*
  request arrives on it (the race a keep-alive pool must survive, RFC 9112 §9.3.1);
- response header sections of any size;
- TLS with a certificate from a private CA (``ssl_context``; tests build it with trustme).

Each answer is registered with :meth:`RawUpstream.script` and requested at the path it returns
(``/v1/raw/N``), or built per request by a ``responder`` (request → :class:`Answer`).
Requests are read with a plain parser (request line, fields, Content-Length): the proxy and
httpx send nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field

__all__ = ["Answer", "RawUpstream", "response_bytes"]


@dataclass
class Answer:
    """What the upstream writes for one request: ``packets`` in order, ``pause`` seconds
    apart, then ``end``: ``keep`` (keep-alive), ``close`` (FIN), ``reset`` (RST) or ``hang``."""

    packets: list[bytes]
    pause: float = 0.0
    end: str = "keep"
    first_pause: float = 0.0   # before the first packet (after reading the request)


def response_bytes(status: int, headers: list[tuple[str, str]], body: bytes = b"", *,
                   framing: str = "length", chunks: list[bytes] | None = None,
                   chunk_ext: str = "", trailers: list[tuple[str, str]] = (),
                   interim: list[tuple[int, list[tuple[str, str]]]] = (),
                   fold: bool = False, reason: str = "Whatever") -> list[bytes]:
    """The response as pieces (interim heads, head, then one piece per body chunk).

    ``framing``: ``length`` (Content-Length), ``chunked`` (``chunks`` or the body as one
    chunk, with ``chunk_ext`` on each size line and ``trailers`` after the last), ``close``
    (no length: the body ends with the connection), ``none`` (no body, e.g. 204/304).
    ``fold`` writes every field value of two words or more as an obs-fold.
    """
    pieces = []
    for code, fields in interim:
        pieces.append(_head(code, "Interim", fields, fold))
    fields = list(headers)
    chunks = chunks if chunks is not None else ([body] if body else [])
    if framing == "length":
        fields.append(("Content-Length", str(len(body))))
    elif framing == "chunked":
        fields.append(("Transfer-Encoding", "chunked"))
    pieces.append(_head(status, reason, fields, fold))
    if framing == "chunked":
        ext = f";{chunk_ext}" if chunk_ext else ""
        for c in chunks:
            if c:
                pieces.append(f"{len(c):x}{ext}\r\n".encode() + c + b"\r\n")
        tail = "".join(f"{n}: {v}\r\n" for n, v in trailers)
        pieces.append(f"0{ext}\r\n{tail}\r\n".encode())
    elif framing in ("length", "close"):
        pieces.extend(c for c in chunks if c)
    return pieces


def _head(status: int, reason: str, fields: list[tuple[str, str]], fold: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in fields:
        words = value.split(" ")
        if fold and len(words) > 1:
            value = "\r\n ".join(words)  # one fold between every two words
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int


@dataclass
class _State:
    answers: dict[int, Answer] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    close_on_reuse: bool = False   # a keep-alive connection's second request: close, no answer
    closed_on_reuse: int = 0       # requests so dropped
    idle_close: float | None = None
    responder: object = None       # Seen -> Answer, for paths without a scripted answer


class RawUpstream:
    """The raw upstream on a free loopback port, in a thread with its own event loop."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None,
                 idle_close: float | None = None, close_on_reuse: bool = False,
                 responder=None) -> None:
        self.state = _State(idle_close=idle_close, close_on_reuse=close_on_reuse,
                            responder=responder)
        self._ids = itertools.count(1)
        self._ssl = ssl_context
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="raw upstream")
        self._server: asyncio.base_events.Server | None = None

    @property
    def origin(self) -> str:
        return f"{'https' if self._ssl else 'http'}://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.origin + "/v1"

    @property
    def seen(self) -> list[Seen]:
        return self.state.seen

    def script(self, answer: Answer) -> str:
        """Register ``answer``; returns the API path (``raw/N``) that gets it."""
        n = next(self._ids)
        self.state.answers[n] = answer
        return f"raw/{n}"

    def start(self) -> RawUpstream:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        fut.result(10)
        return self

    async def _start(self) -> None:
        self._sock.listen(512)
        self._server = await asyncio.start_server(self._serve, sock=self._sock, ssl=self._ssl)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> RawUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state = self.state
        state.connections += 1
        conn_id = state.connections
        served = 0
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                                  state.idle_close)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return  # idle too long (closed without notice), or the client left
                if served and state.close_on_reuse:
                    state.closed_on_reuse += 1
                    return  # the request arrived as the server gave up on the connection
                seen = _parse_request(head, conn_id)
                length = int(seen.headers.get("content-length", "0") or 0)
                seen.body = await reader.readexactly(length) if length else b""
                state.seen.append(seen)
                served += 1
                answer = self._answer_for(seen)
                if not await self._write(writer, answer):
                    return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _answer_for(self, seen: Seen) -> Answer:
        path = seen.path
        tail = path.rsplit("/", 1)[-1]
        answer = self.state.answers.get(int(tail)) if tail.isdigit() else None
        if answer is None and self.state.responder is not None:
            answer = self.state.responder(seen)
        if answer is None:
            body = b'{"error": "no scripted answer for ' + path.encode() + b'"}'
            return Answer(response_bytes(404, [("Content-Type", "application/json")], body))
        return answer

    async def _write(self, writer: asyncio.StreamWriter, answer: Answer) -> bool:
        """Write the answer's packets; False when the connection must end now."""
        if answer.first_pause:
            await asyncio.sleep(answer.first_pause)
        for i, packet in enumerate(answer.packets):
            if i and answer.pause:
                await asyncio.sleep(answer.pause)
            writer.write(packet)
            try:
                await writer.drain()
            except ConnectionError:
                return False
        if answer.end == "reset":
            await asyncio.sleep(0.05)  # let what was written arrive: an RST may overtake it
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if answer.end == "hang":
            await asyncio.sleep(3600)
        return answer.end == "keep"


def _parse_request(head: bytes, conn_id: int) -> Seen:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return Seen(method, target.split("?", 1)[0], headers, b"", conn_id)


def packets_of(pieces: list[bytes], split: str | int) -> list[bytes]:
    """Re-split the response: ``whole`` (one packet), ``pieces`` (as built: one per head and
    chunk), ``bytes`` (one byte each), or an int (packets of that many bytes)."""
    data = b"".join(pieces)
    if split == "whole":
        return [data]
    if split == "pieces":
        return list(pieces)
    size = 1 if split == "bytes" else int(split)
    return [data[i:i + size] for i in range(0, len(data), size)]
