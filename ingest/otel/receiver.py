"""``callmeter otel``: an OTLP/HTTP receiver (plain ASGI) that records GenAI spans as calls.

``POST /v1/traces`` takes an ExportTraceServiceRequest as binary protobuf or JSON, plain, gzip
or deflate (OTLP specification, "OTLP/HTTP"). Each GenAI span is appended to the spool, as the
proxy does, before the request is acknowledged: an exporter that got 200 has its calls on disk, and
one that got no answer (the receiver was killed) sends the batch again, which the loader's
``call_id`` check turns into nothing new. While the spool cannot be written the answer is 503,
which OTLP exporters retry. ``/v1/metrics`` and ``/v1/logs`` are accepted and dropped, so an SDK
exporting every signal to one endpoint logs no errors. ``/healthz`` reports recording and counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

from ledger import KeyFingerprinter, SpoolWriter

from .decode import ENCODINGS, decode_request, encode_response, inflate, media_type
from .errors import OtlpDecodeError, OtlpTooLarge
from .spans import convert

log = logging.getLogger("callmeter.otel")

TRACES_PATH = "/v1/traces"
DROPPED_PATHS = ("/v1/metrics", "/v1/logs")
ROTATE_EVERY = 5.0
MAX_REJECTIONS_NAMED = 5


@dataclass
class ReceiverCounts:
    """What /healthz shows: requests and spans seen, calls recorded, spans left and why."""

    requests: int = 0
    spans: int = 0
    calls: int = 0
    rejected: int = 0
    refused_requests: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "spans": self.spans, "calls_recorded": self.calls,
                "spans_rejected": self.rejected, "requests_refused": self.refused_requests,
                "spans_skipped": dict(self.skipped)}


class OtlpReceiver:
    """The ASGI application; ``max_body_bytes`` bounds a body before and after inflating."""

    def __init__(self, spool: SpoolWriter, fingerprinter: KeyFingerprinter, *,
                 max_body_bytes: int = 64 * 1024 * 1024) -> None:
        self.spool = spool
        self.fingerprinter = fingerprinter
        self.max_body_bytes = max_body_bytes
        self.counts = ReceiverCounts()
        self._counts_lock = threading.Lock()  # exports are recorded in worker threads
        self._rotator: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/healthz":
            status = 200 if self.spool.health.recording else 503
            body = {"status": "ok" if status == 200 else "not_recording",
                    "spool": str(self.spool.folder), **self.counts.to_dict()}
            await _respond(send, status, json.dumps(body).encode(), b"application/json")
        elif path not in (TRACES_PATH, *DROPPED_PATHS):
            await _respond(send, 404, b"callmeter otel takes POST /v1/traces\n")
        elif method != "POST":
            await _respond(send, 405, b"use POST\n", extra=[(b"allow", b"POST")])
        else:
            await self._export(scope, receive, send, path)

    async def _export(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        headers = dict(scope["headers"])
        kind = media_type(headers.get(b"content-type", b"").decode("latin-1"))
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").lower()
        if kind is None or (encoding != "identity" and encoding not in ENCODINGS):
            await _respond(send, 415, b"send application/x-protobuf or application/json, "
                           b"plain, gzip or deflate\n")
            return
        try:
            body = await _read_body(receive, self.max_body_bytes)
            if encoding != "identity":
                body = inflate(body, encoding, self.max_body_bytes)
            if path != TRACES_PATH:
                await _respond(send, 200, encode_response(kind), kind.encode())
                return
            status, answer = await asyncio.to_thread(self._record, body, kind)
        except OtlpTooLarge as exc:
            await _respond(send, 413, f"{exc}\n".encode())
            return
        except OtlpDecodeError as exc:
            self.counts.refused_requests += 1
            await _respond(send, 400, f"{exc}\n".encode())
            return
        extra = [(b"retry-after", b"1")] if status == 503 else []
        ctype = kind.encode() if status == 200 else b"text/plain; charset=utf-8"
        await _respond(send, status, answer, ctype, extra=extra)

    def _record(self, body: bytes, kind: str) -> tuple[int, bytes]:
        """Decode, convert and append; (status, body). Runs in a worker thread."""
        done = convert(decode_request(body, kind), self.fingerprinter)
        for call in done.calls:
            if not self.spool.append(call):
                with self._counts_lock:
                    self.counts.refused_requests += 1
                log.error("NOT RECORDING: spans cannot be written to the spool %s (%s); "
                          "answering 503 so the exporter retries", self.spool.folder,
                          self.spool.health.last_error)
                return 503, b"calls cannot be written to the spool; retry later\n"
        with self._counts_lock:
            c = self.counts
            c.requests += 1
            c.spans += done.spans
            c.calls += len(done.calls)
            c.rejected += len(done.rejected)
            c.skipped.update(done.skipped)
        message = "; ".join(f"span {ref}: {why}" for ref, why in
                            done.rejected[:MAX_REJECTIONS_NAMED])
        return 200, encode_response(kind, len(done.rejected), message)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                with contextlib.suppress(OSError):
                    self.spool.folder.mkdir(parents=True, exist_ok=True)
                self._rotator = asyncio.ensure_future(self._rotate_forever())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._rotator is not None:
                    self._rotator.cancel()
                self.spool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _rotate_forever(self) -> None:
        """Close idle segments on time, so `callmeter load` sees calls within max_seconds."""
        every = min(ROTATE_EVERY, max(self.spool.max_seconds / 4, 0.05))
        while True:
            await asyncio.sleep(every)
            self.spool.rotate_if_due()


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise OtlpDecodeError("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise OtlpTooLarge(f"body over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes,
                   ctype: bytes = b"text/plain; charset=utf-8",
                   extra: list[Any] | None = None) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
               *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

