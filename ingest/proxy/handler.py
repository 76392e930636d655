"""One proxied call, start to end: read the body, forward, relay the answer, record.

The spool record is appended just before the client receives the last bytes of the response:
a call whose response was fully delivered is always on disk, even if the process is killed the
next instant (at worst a call is recorded whose last bytes never left).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import httpx

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from .app import ProxyApp

from . import estimate as estimate_mod
from . import usage as usage_mod
from .egress import describe_failure
from .forwarding import REQUEST_DROP, RESPONSE_DROP, Route, error_body
from .record import KEY_HEADERS, Call, parse_tags
from .request import RequestInfo, read_request
from .stream import SseRelay

DONE = b"data: [DONE]"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
COLLECT_LIMIT = 64 * 1024 * 1024   # response bytes kept to read usage from a non-streamed body
# Answers whose body carries the call's usage; count_tokens, models and probe answers carry
# none the platform bills (a count_tokens answer's `input_tokens` is a count, not a charge).
USAGE_ENDPOINTS = frozenset({"chat", "embeddings", "images", "transcriptions", "rerank", "other",
                             "messages", "responses", "gemini"})


def billable(status: int) -> bool:
    """Answers a platform bills: 2xx with content. 204/205 carry none; a 3xx (304, 307) or a
    1xx is no answer from the model; an error costs nothing."""
    return 200 <= status < 300 and status not in (204, 205)


class ClientGone(Exception):
    """The client went away before its request body arrived."""


class RequestHeaders:
    """The request's headers split into what is forwarded and what the proxy reads itself."""

    __slots__ = ("forward", "key", "tags", "origin", "content_type", "length", "accept_encoding")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.forward: list[tuple[bytes, bytes]] = []
        self.key = self.tags = self.origin = None
        self.content_type = ""
        self.length: int | None = None
        self.accept_encoding = False
        drop = REQUEST_DROP
        for name, value in raw:
            if name == b"connection":
                extra = {t.strip().lower().encode() for t in value.decode("latin-1").split(",")}
                drop = drop | extra
        for name, value in raw:
            if name in KEY_HEADERS and self.key is None:
                self.key = value
            elif name == b"x-callmeter-tags":
                self.tags = value.decode("utf-8", "replace")
            elif name == b"origin":
                self.origin = value
            elif name == b"content-type":
                self.content_type = value.decode("latin-1").lower()
            elif name == b"content-length":
                self.length = int(value) if value.isdigit() else None
            elif name == b"accept-encoding":
                self.accept_encoding = True
            if name not in drop:
                self.forward.append((name, value))


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is over ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        if not message.get("more_body"):
            if not parts:
                return bytes(chunk)
            parts.append(chunk)
            return b"".join(parts)
        parts.append(chunk)


def cors_headers(origin: bytes | None) -> list[tuple[bytes, bytes]]:
    return [(b"access-control-allow-origin", origin or b"*"), (b"vary", b"Origin")]


class CallHandler:
    """Runs one call through the proxy; ``app`` supplies transport, spool, metrics, options."""

    def __init__(self, app: ProxyApp, scope: Scope, receive: Receive, send: Send,
                 route: Route) -> None:
        self.app = app
        self.scope = scope
        self.receive = receive
        self.send = send
        self.route = route
        self.call = Call(route.endpoint)
        self.info = RequestInfo()
        self.upstream_seconds: float | None = None
        self._client_gone = False
        self._owner_task: asyncio.Task[Any] | None = None
        self._relay: SseRelay | None = None

    async def run(self) -> None:
        app, call = self.app, self.call
        self._owner_task = asyncio.current_task()
        headers = RequestHeaders(self.scope["headers"])
        call.identify(headers.key or _query_key(self.scope), app.fingerprinter)
        if self.scope["method"] == "HEAD":
            call.endpoint = "probe"  # a reachability check (Claude Code sends HEAD / per run)
        self.origin = headers.origin
        response = None
        skip_record = False
        try:
            if headers.length is not None and headers.length > app.options.max_body_bytes:
                body = None
            else:
                body = await read_body(self.receive, app.options.max_body_bytes)
            if body is None:
                call.tags = parse_tags(headers.tags, None)
                await self.local_error(413, "request body is larger than the proxy's limit of "
                                       f"{app.options.max_body_bytes} bytes", "request_too_large")
                return
            info, body = read_request(call.endpoint, headers.content_type, body)
            self.info = info
            call.model = info.model or self.route.model
            call.stream = info.stream or self.route.stream
            call.tags = parse_tags(headers.tags, info.user)
            if info.malformed:
                call.flag = "malformed_request"
            forward = headers.forward  # this call's own list: appending to it is safe
            if info.inject_usage or not headers.accept_encoding:
                # an edited stream must arrive uncompressed; and never let a transport add gzip
                forward = [h for h in forward if h[0] != b"accept-encoding"]
                forward.append((b"accept-encoding", b"identity"))
            response = await self.open_upstream(forward, body)
            if response is not None:
                await self.relay(response)
        except ClientGone:
            skip_record = True
        finally:
            if response is not None:
                await _close_quietly(response)
            if not call.recorded and not skip_record:
                # cut short (SIGTERM's shutdown timeout cancels the call): count what was sent
                # and streamed, here and now, as there is no later
                call.flag = call.flag or "interrupted"
                self._count_cut_call()
                app.record(call)
            if not skip_record:
                app.observe(self.scope, call, self.upstream_seconds)

    async def open_upstream(self, headers: list[tuple[bytes, bytes]], body: bytes
                            ) -> httpx.Response | None:
        app, call = self.app, self.call
        query = self.scope.get("query_string")
        url = self.route.url + "?" + query.decode("latin-1") if query else self.route.url
        method = self.scope["method"]
        # Host and Content-Length set here, the body given as a ready stream: httpx then skips
        # its request encoding step (a quarter of the proxy's own per-call time)
        headers.append((b"host", app.upstream.host_header))
        if body or method in BODY_METHODS:
            headers.append((b"content-length", str(len(body)).encode()))
        request = httpx.Request(method, app.url(url), headers=headers,
                                stream=httpx.ByteStream(body),
                                extensions={"timeout": app.timeouts})
        request.read()
        try:
            response = await app.transport.handle_async_request(request)
        except (httpx.HTTPError, OSError) as exc:
            failure = describe_failure(exc)
            app.upstream_failed(failure)
            await self.local_error(failure.status, failure.message, failure.code,
                                   kind="upstream_error")
            return None
        self.upstream_seconds = time.perf_counter() - call.t0
        call.status = response.status_code
        return response

    async def local_error(self, status: int, message: str, code: str,
                          kind: str = "proxy_error") -> None:
        """Answer with an OpenAI-style error the proxy itself produced; record it first."""
        self.call.status = status
        self.call.flag = code
        body = error_body(message, code, kind)
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
        if self.origin:
            headers += cors_headers(self.origin)
        self.app.record(self.call)
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    async def relay(self, response: httpx.Response) -> None:
        call = self.call
        headers, ctype, encoding, length = _response_headers(response.headers.raw)
        if self.origin and not any(h[0] == b"access-control-allow-origin" for h in headers):
            headers += cors_headers(self.origin)
        ok = call.status < 400
        sse = ctype.startswith(b"text/event-stream")
        relay = SseRelay(self.info.inject_usage and ok, encoding) if sse else None
        self._relay = relay
        if length is not None and not (relay and relay.strip):
            headers.append((b"content-length", str(length).encode()))
        if sse:
            call.stream = True
        # keep the body to read usage from: known endpoints, and JSON answers of other paths
        # (never a file download's bytes)
        collect = ok and not sse and call.endpoint in USAGE_ENDPOINTS and (
            call.endpoint != "other" or ctype.startswith(b"application/json"))
        await self.send({"type": "http.response.start", "status": call.status,
                         "headers": headers})
        watch = sse or length is None or call.endpoint == "speech"  # long bodies only
        watcher = asyncio.create_task(self._watch_disconnect()) if watch else None
        parts: list[bytes] = []
        try:
            problem = await self._pump(response, relay, parts if collect else None, length,
                                       encoding)
        finally:
            if watcher is not None:
                watcher.cancel()
        if not call.recorded:
            await self._settle_and_record(relay, parts if collect else None, encoding, problem)
        if problem == "interrupted":
            return  # the upstream broke off: end without the final chunk, as it did
        if relay is not None and relay.strip:
            tail = relay.finish()
            if tail:
                await self.send({"type": "http.response.body", "body": tail, "more_body": True})
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, response: httpx.Response, relay: SseRelay | None,
                    parts: list[bytes] | None, length: int | None, encoding: str | None
                    ) -> str | None:
        """Forward each upstream chunk as it arrives; returns why it stopped early, if it did."""
        call, send = self.call, self.send
        remaining = length
        try:
            async for chunk in response.aiter_raw():
                if call.ttft is None:
                    call.mark_first_byte()
                call.bytes_out += len(chunk)
                out = relay.feed(chunk) if relay is not None else chunk
                if parts is not None:
                    parts.append(chunk)
                    if call.bytes_out > COLLECT_LIMIT:
                        parts.clear()
                        parts = None
                        call.flag = "response_too_large"
                if remaining is not None:
                    remaining -= len(chunk)
                    if remaining <= 0 and not call.recorded:
                        # the client is about to have it all: record first (see module doc)
                        await self._settle_and_record(relay, parts, encoding, None)
                elif relay is not None and not call.recorded and DONE in out:
                    # clients stop reading at [DONE]: that is "fully delivered" for a stream
                    await self._settle_and_record(relay, parts, encoding, None)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
        except asyncio.CancelledError:
            if not self._client_gone:
                raise
            task = asyncio.current_task()
            if task is not None:  # (always: a handler runs in a task)
                task.uncancel()
            return self._stopped("client_disconnected")
        except httpx.HTTPError:
            return self._stopped("interrupted")
        return None

    def _stopped(self, why: str) -> str:
        self.app.metrics.errors.labels(why).inc()
        if self.call.flag is None or self.call.flag == "malformed_request":
            self.call.flag = why
        return why

    async def _watch_disconnect(self) -> None:
        """Cancel the call's task when the client goes away mid-response (the ASGI server's
        ``send`` silently drops bytes for a gone client, so this is how we learn of it)."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                if self._owner_task is not None:
                    self._client_gone = True
                    self._owner_task.cancel()
                return

    async def _settle_and_record(self, relay: SseRelay | None, parts: list[bytes] | None,
                                 encoding: str | None, problem: str | None) -> None:
        """Work out the call's usage once the body is complete (or cut short); record it.

        A local token count (no usage reported) runs in a thread: the encoder may still be
        loading, and a long text takes a while; the event loop must not wait for either.
        """
        call, info = self.call, self.info
        if billable(call.status):
            text: str | None = None
            top_up = False
            if relay is not None:
                out = usage_mod.Usage()
                if relay.usage is not None:
                    usage_mod.apply_stream_usage(out, call.endpoint, relay.usage)
                top_up = _cut_after_usage(out, call.endpoint, problem)
                if estimate_mod.needs_estimate(out, call.endpoint) or top_up:
                    text = relay.text()
                call.usage = out
            elif parts is not None and problem is None:
                body = usage_mod.decoded(b"".join(parts), encoding)
                call.usage = usage_mod.usage_from_body(call.endpoint, info, body)
                if estimate_mod.needs_estimate(call.usage, call.endpoint):
                    text = estimate_mod.output_text(body)
            elif call.endpoint == "speech":
                call.usage = usage_mod.usage_from_body("speech", info, b"")
            if text is not None:
                count = estimate_mod.top_up_cut_output if top_up else estimate_mod.estimate
                args = (call.usage, info, text) if top_up else (call.usage, call.endpoint, info,
                                                                 text)
                await asyncio.to_thread(count, *args)
        if not call.recorded:
            self.app.record(call)

    def _count_cut_call(self) -> None:
        """Usage of a call whose answer had begun when it was cut: the usage it reported, else
        its prompt and the streamed text counted locally (loading the tokenizer here if no call
        needed it before: at shutdown there is no later)."""
        call, relay = self.call, self._relay
        if not billable(call.status) or call.usage.usage_source != "none":
            return
        out = usage_mod.Usage()
        if relay is not None and relay.usage is not None:
            usage_mod.apply_stream_usage(out, call.endpoint, relay.usage)
        if estimate_mod.needs_estimate(out, call.endpoint):
            estimate_mod.estimate(out, call.endpoint, self.info,
                                  relay.text() if relay is not None else "")
        elif relay is not None and _cut_after_usage(out, call.endpoint, "interrupted"):
            estimate_mod.top_up_cut_output(out, self.info, relay.text())
        call.usage = out


def _cut_after_usage(out: usage_mod.Usage, endpoint: str, problem: str | None) -> bool:
    """A text stream cut after reporting usage: its output count may predate the cut text."""
    return (problem is not None and out.usage_source == "reported"
            and endpoint in estimate_mod.ESTIMATED_ENDPOINTS)


def _query_key(scope: Scope) -> bytes | None:
    """Gemini's ``?key=`` (curl examples put the key there); fingerprinted, never stored."""
    query = scope.get("query_string") or b""
    if b"key=" not in query:
        return None
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"key" and value:
            return unquote_to_bytes(value)
    return None


def _response_headers(raw: list[tuple[bytes, bytes]]
                      ) -> tuple[list[tuple[bytes, bytes]], bytes, str | None, int | None]:
    headers: list[tuple[bytes, bytes]] = []
    ctype, encoding, length = b"", None, None
    for name, value in raw:
        name = name.lower()
        if name in RESPONSE_DROP:
            if name == b"content-length" and value.isdigit():
                length = int(value)
            continue
        if name == b"content-type":
            ctype = value.lower()
        elif name == b"content-encoding":
            encoding = value.decode("latin-1").strip().lower()
        headers.append((name, value))
    return headers, ctype, encoding, length


async def _close_quietly(response: httpx.Response) -> None:
    try:
        await response.aclose()
    except (httpx.HTTPError, OSError):
        pass
