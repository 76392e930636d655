"""The recording proxy as a plain ASGI app: forward, pass each chunk on, record, never block.

Besides proxied calls it answers ``/healthz`` (spool health first: it says loudly when calls are
not being recorded), ``/metrics`` (Prometheus) and CORS preflight requests.
"""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

import asyncio
import contextlib
import functools
import gc
import json
import logging
import os
import time

import httpx

from ledger import KeyFingerprinter, SpoolWriter

from .egress import UpstreamFailure, egress_proxy_for, make_transport, tls_context
from .forwarding import Upstream
from .handler import CallHandler, cors_headers
from .metrics import ProxyMetrics
from .options import ProxyOptions
from .record import Call

log = logging.getLogger("callmeter.proxy")
access_log = logging.getLogger("callmeter.proxy.access")

PREFLIGHT_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
ROTATE_EVERY = 5.0
FAILURE_LOG_EVERY = 10.0  # seconds between two log lines about the same kind of upstream failure


class ProxyApp:
    """ASGI application; ``transport`` may be given (tests), else built at startup."""

    def __init__(self, options: ProxyOptions, spool: SpoolWriter,
                 fingerprinter: KeyFingerprinter,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.options = options
        self.upstream = Upstream(options.upstream)
        if self.upstream.credentials_dropped:
            log.warning("the upstream URL carries a user name or password (user:pass@): "
                        "callmeter does not send them (each client's own key is forwarded); "
                        "forwarding to %s", self.upstream.origin)
        self.spool = spool
        self.fingerprinter = fingerprinter
        self.metrics = ProxyMetrics(spool)
        self._transport = transport
        c, r = options.connect_timeout, options.read_timeout
        self.timeouts = {"connect": c, "read": r, "write": r, "pool": c}
        self.url = functools.lru_cache(maxsize=4096)(httpx.URL)
        self._tasks: set[asyncio.Task[None]] = set()
        self._was_recording = True
        self._failure_logged: dict[str, float] = {}

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        if self._transport is None:
            o = self.options
            self._transport, note = make_transport(
                o.transport, max_connections=o.max_connections,
                keepalive_seconds=o.keepalive_seconds,
                ssl_context=tls_context(o.ca_file, o.ca_dir),
                proxy_url=egress_proxy_for(self.upstream.base, o.egress_proxies))
            if note:
                log.warning(note)
        return self._transport

    def upstream_failed(self, failure: UpstreamFailure) -> None:
        """Count a failure to reach the upstream; log it (each kind at most every 10 s)."""
        self.metrics.errors.labels(failure.code).inc()
        now = time.monotonic()
        if now - self._failure_logged.get(failure.code, -FAILURE_LOG_EVERY) >= FAILURE_LOG_EVERY:
            self._failure_logged[failure.code] = now
            log.warning("%s: %s", failure.code, failure.message)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == "/healthz":
                await self._respond(send, *self.health())
            elif path == "/metrics":
                await self._respond(send, 200, self.metrics.render(),
                                    b"text/plain; version=0.0.4; charset=utf-8")
            elif scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
                await self._preflight(scope, send)
            else:
                route = self.upstream.resolve(path)
                await CallHandler(self, scope, receive, send, route).run()
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    # -- recording -------------------------------------------------------------------------

    def record(self, call: Call) -> None:
        """Hand the call's record to the spool (one append); say so loudly when it fails."""
        call.recorded = True
        ok = self.spool.append(call.record())
        if ok != self._was_recording:
            self._was_recording = ok
            if ok:
                log.warning("recording again: calls are being written to %s", self.spool.folder)
            else:
                log.error("NOT RECORDING: calls cannot be written to the spool %s (%s); the "
                          "proxy keeps forwarding, these calls will be missing from the ledger",
                          self.spool.folder, self.spool.health.last_error)

    def observe(self, scope: Scope, call: Call, upstream_seconds: float | None) -> None:
        seconds = time.perf_counter() - call.t0
        self.metrics.observe(call.endpoint, call.model, call.status, call.usage, seconds,
                             upstream_seconds)
        if self.options.access_log and access_log.isEnabledFor(logging.INFO):
            # never the query string (some clients put keys there), the body or the key
            access_log.info(json.dumps({
                "call_id": call.call_id, "method": scope["method"], "path": scope["path"],
                "endpoint": call.endpoint, "model": call.model, "status": call.status,
                "stream": call.stream, "ms": int(seconds * 1000),
                "ttft_ms": int(call.ttft * 1000) if call.ttft is not None else None,
                "key_id": call.key_id, "usage": call.usage.usage_source,
                "flag": call.flag or call.usage.usage_flag,
            }))

    # -- operations ------------------------------------------------------------------------

    def health(self) -> tuple[int, bytes, bytes]:
        """200 while recording; 503 (and why) while calls are not reaching the spool."""
        h = self.spool.health
        folder = self.spool.folder
        writable = os.access(folder, os.W_OK) if folder.exists() else _creatable(folder)
        recording = h.recording and writable
        error = h.last_error if not h.recording else None
        if not writable:
            error = error or f"spool folder {folder} is not writable"
        body = {
            "status": "ok" if recording else "not_recording",
            "recording": recording,
            "spool": {"folder": str(folder), "records_written": h.records_written,
                      "records_dropped": h.records_dropped, "last_error": error,
                      "last_record_at": h.last_record_at},
            "upstream": self.upstream.base,
        }
        if not recording:
            body["message"] = ("calls are being forwarded but NOT recorded: fix the spool "
                               "folder (permissions, disk space)")
        return (200 if recording else 503), json.dumps(body).encode(), b"application/json"

    async def _respond(self, send: Send, status: int, body: bytes, ctype: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", ctype), (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})

    async def _preflight(self, scope: Scope, send: Send) -> None:
        asked = _header(scope, b"access-control-request-headers") or b"*"
        headers = cors_headers(_header(scope, b"origin")) + [
            (b"access-control-allow-methods", PREFLIGHT_METHODS),
            (b"access-control-allow-headers", asked),
            (b"access-control-max-age", b"86400"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        with contextlib.suppress(OSError):
            self.spool.folder.mkdir(parents=True, exist_ok=True)
        # The local token counter's tables (~150 MB, about a second of CPU) are not loaded
        # here: only a call that reported no usage needs them, and it loads them in a thread
        # (ingest.tokens, on first use). A proxy whose upstream reports usage never holds them.
        self.transport  # noqa: B018 - built now (imports, TLS context), not on the first call
        self._spawn(self._rotate_forever())
        # What start-up loaded lives as long as the process: keep it out of the collector's
        # full passes (measured: fewer long pauses at c=64, docs/performance.md)
        gc.collect()
        gc.freeze()

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._transport is not None:
            with contextlib.suppress(httpx.HTTPError, OSError):
                await self._transport.aclose()
        self.spool.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _rotate_forever(self) -> None:
        """Close idle segments on time, so `callmeter load` sees calls within max_seconds."""
        every = min(ROTATE_EVERY, max(self.spool.max_seconds / 4, 0.05))
        while True:
            await asyncio.sleep(every)
            self.spool.rotate_if_due()


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _creatable(folder: Path) -> bool:
    parent = folder.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return os.access(parent, os.W_OK)
