"""A real OpenAI-format stand-in for the platform, served by uvicorn on a free loopback port.

Used by the proxy tests, the reliability tests and the benchmarks::

    with UpstreamServer() as up:          # a thread; up.url == "http://127.0.0.1:PORT/v1"
        ...
    python -m tests.upstream --port 0     # a process; prints "listening http://…/v1"

Every endpoint of the platform's docs answers (chat completions plain and streamed, embeddings,
images, speech, transcriptions, rerank, models), and so do the Anthropic Messages, OpenAI
Responses and Gemini native APIs (tests/upstream_native.py, which cites the SDK sources it is
built from); any other path is echoed as JSON. What it does
is chosen per request by an ``X-Upstream-Behaviour: key=value;key=value`` header (or for the
whole server with ``UpstreamServer(behaviour=...)``):

    status=429 retry_after=7   answer with that status, an OpenAI error body and Retry-After
    delay=0.5                  wait before the response headers
    chunk_delay=0.02           wait between stream chunks (and speech chunks)
    chunks=5                   content chunks of a stream: "Hello" then " world" × (chunks-1)
    cut_after=2                stop a stream after that many content chunks, dropping the connection
    no_usage=1                 never report usage, even when stream_options.include_usage asks
    prompt_tokens=11 completion_tokens=… cached_tokens=0 reasoning_tokens=0   reported usage
    thinking_separate=1        Gemini-style: reasoning not inside completion_tokens, total adds up
    total_off=1                total_tokens off by 1000 (a usage that does not add up)
    gzip=1                     gzip the (non-streamed) body
    malformed=1                200 with a body that is not JSON
    set_cookie=1               the response sets a cookie
    speech_bytes=48000         size of the audio returned by audio/speech (4 KiB chunks)
    rerank_style=jina|cohere|newapi    where rerank usage is reported

Requests seen are kept in ``server.requests`` (method, path, query, headers, body), newest last.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["UpstreamServer", "ProxyServer", "SeenRequest", "build_app", "parse_behaviour"]

BEHAVIOUR_HEADER = "x-upstream-behaviour"
CREATED = 1_700_000_000


@dataclass
class SeenRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StandIn:
    """State shared by the routes: default behaviour and what was received."""

    behaviour: dict[str, str] = field(default_factory=dict)
    requests: deque = field(default_factory=lambda: deque(maxlen=1000))
    # how each chunked response ended: "completed", "cut" (on purpose), "client_closed"
    stream_events: deque = field(default_factory=lambda: deque(maxlen=1000))


def parse_behaviour(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (text or "").replace(",", ";").split(";"):
        key, sep, value = part.strip().partition("=")
        if key:
            out[key.strip()] = value.strip() if sep else "1"
    return out


def _behaviour(request: Request) -> dict[str, str]:
    state: StandIn = request.app.state.stand_in
    merged = dict(state.behaviour)
    merged.update(parse_behaviour(request.headers.get(BEHAVIOUR_HEADER)))
    return merged


def _int(b: dict, key: str, default: int) -> int:
    return int(b[key]) if key in b else default


def _error(status: int, b: dict) -> Response:
    kinds = {401: "invalid_api_key", 403: "permission_denied", 429: "rate_limit_exceeded",
             500: "server_error", 503: "service_unavailable"}
    body = {"error": {"message": f"stand-in error {status}", "type": kinds.get(status, "error"),
                      "param": None, "code": kinds.get(status, "error")}}
    headers = {"retry-after": b["retry_after"]} if "retry_after" in b else None
    return JSONResponse(body, status_code=status, headers=headers)


def _json(payload: dict, b: dict, status: int = 200) -> Response:
    if "malformed" in b:
        return Response(b'{"id": "broken", "choices": [', status_code=status,
                        media_type="application/json")
    raw = json.dumps(payload).encode()
    headers = {"set-cookie": "standin_session=abc123; Path=/"} if "set_cookie" in b else {}
    if "gzip" in b:
        headers["content-encoding"] = "gzip"
        raw = gzip.compress(raw)
    return Response(raw, status_code=status, media_type="application/json", headers=headers)


class ChunkedResponse(Response):
    """Sends ``chunks`` one message each, pausing between them; may stop mid-way (cut)."""

    def __init__(self, chunks: list[bytes], media_type: str, pause: float = 0.0,
                 cut_after: int | None = None) -> None:
        super().__init__(None, media_type=media_type)
        self.chunks = chunks
        self.pause = pause
        self.cut_after = cut_after

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[override]
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        events = scope["app"].state.stand_in.stream_events
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for i, chunk in enumerate(self.chunks):
                if self.cut_after is not None and i >= self.cut_after:
                    events.append("cut")
                    return  # returning without the final message drops the connection
                if i and self.pause:
                    await asyncio.sleep(self.pause)
                if gone.is_set():
                    events.append("client_closed")
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            events.append("completed")
        finally:
            watcher.cancel()


def chat_words(n: int) -> list[str]:
    """The stand-in's reply, one piece per chunk: "Hello" then " world" (one token each)."""
    return ["Hello"] + [" world"] * max(n - 1, 0)


def chat_usage(b: dict, completion: int) -> dict:
    prompt = _int(b, "prompt_tokens", 11)
    completion = _int(b, "completion_tokens", completion)
    cached = _int(b, "cached_tokens", 0)
    reasoning = _int(b, "reasoning_tokens", 0)
    total = prompt + completion + (reasoning if "thinking_separate" in b else 0)
    if "total_off" in b:
        total += 1000
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0}}


def _sse(obj: dict | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    return b"data: " + data.encode() + b"\n\n"


async def _common(request: Request) -> tuple[dict, dict, Response | None]:
    """Record the request, apply delay and status; returns (behaviour, json body, early)."""
    raw = await request.body()
    request.app.state.stand_in.requests.append(SeenRequest(
        request.method, request.url.path, request.url.query, dict(request.headers), raw))
    b = _behaviour(request)
    if "delay" in b:
        await asyncio.sleep(float(b["delay"]))
    if "status" in b and int(b["status"]) >= 400:
        return b, {}, _error(int(b["status"]), b)
    body: dict = {}
    if raw and request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(raw)
        except ValueError:
            return b, {}, JSONResponse({"error": {"message": "invalid JSON body",
                                                  "type": "invalid_request_error"}}, 400)
    return b, body, None


async def chat_completions(request: Request) -> Response:
    b, body, early = await _common(request)
    if early:
        return early
    model = body.get("model", "gpt-4o")
    words = chat_words(_int(b, "chunks", 5))
    base = {"id": "chatcmpl-standin", "created": CREATED, "model": model,
            "system_fingerprint": "fp_standin"}
    usage = None if "no_usage" in b else chat_usage(b, len(words))
    if not body.get("stream"):
        payload = dict(base, object="chat.completion", choices=[{
            "index": 0, "message": {"role": "assistant", "content": "".join(words)},
            "logprobs": None, "finish_reason": "stop"}])
        if usage:
            payload["usage"] = usage
        return _json(payload, b)
    include = bool((body.get("stream_options") or {}).get("include_usage")) and usage
    extra = {"usage": None} if include else {}
    chunk = dict(base, object="chat.completion.chunk")
    out = [_sse(dict(chunk, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                      "finish_reason": None}], **extra))]
    for w in words:
        out.append(_sse(dict(chunk, choices=[{"index": 0, "delta": {"content": w},
                                              "finish_reason": None}], **extra)))
    out.append(_sse(dict(chunk, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}],
                         **extra)))
    if include:
        out.append(_sse(dict(chunk, choices=[], usage=usage)))
    out.append(_sse("[DONE]"))
    cut = int(b["cut_after"]) + 1 if "cut_after" in b else None  # +1: the role chunk
    return ChunkedResponse(out, "text/event-stream", float(b.get("chunk_delay", 0)), cut)


async def embeddings(request: Request) -> Response:
    b, body, early = await _common(request)
    if early:
        return early
    inputs = body.get("input", "")
    inputs = inputs if isinstance(inputs, list) else [inputs]
    dim = _int(b, "dim", 8)
    data = [{"object": "embedding", "index": i, "embedding": [0.001 * (i + 1)] * dim}
            for i in range(len(inputs))]
    tokens = _int(b, "prompt_tokens", 5 * len(inputs))
    payload = {"object": "list", "data": data, "model": body.get("model")}
    if "no_usage" not in b:
        payload["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return _json(payload, b)


async def images(request: Request) -> Response:
    b, body, early = await _common(request)
    if early:
        return early
    n = int(body.get("n") or 1)
    model = body.get("model") or "dall-e-2"
    key = "b64_json" if body.get("response_format") == "b64_json" else "url"
    value = "aW1hZ2U=" if key == "b64_json" else "https://example.invalid/img.png"
    payload: dict = {"created": CREATED, "data": [{key: value} for _ in range(n)]}
    if model.startswith("gpt-image") and "no_usage" not in b:
        payload["usage"] = {"input_tokens": 50, "output_tokens": 4160 * n, "total_tokens":
                            50 + 4160 * n, "input_tokens_details": {"text_tokens": 50,
                                                                    "image_tokens": 0}}
        payload["size"] = body.get("size", "1024x1024")
    return _json(payload, b)


async def speech(request: Request) -> Response:
    b, _body, early = await _common(request)
    if early:
        return early
    size = _int(b, "speech_bytes", 48_000)
    audio = bytes(range(256)) * (size // 256 + 1)
    chunks = [audio[i:min(i + 4096, size)] for i in range(0, size, 4096)]
    return ChunkedResponse(chunks, "audio/mpeg", float(b.get("chunk_delay", 0)),
                           int(b["cut_after"]) if "cut_after" in b else None)


async def transcriptions(request: Request) -> Response:
    b, _body, early = await _common(request)
    if early:
        return early
    form = await request.form()
    model = str(form.get("model") or "whisper-1")
    fmt = str(form.get("response_format") or "json")
    seconds = float(b.get("seconds", "3.5"))
    text = "Hello from the stand-in."
    if fmt == "text":
        return PlainTextResponse(text)
    payload: dict = {"text": text}
    if fmt == "verbose_json":
        payload.update(task="transcribe", language="english", duration=seconds, segments=[])
    if "no_usage" not in b:
        if model.startswith("whisper"):
            payload["usage"] = {"type": "duration", "seconds": seconds}
        else:
            payload["usage"] = {"type": "tokens", "input_tokens": 42, "output_tokens": 7,
                                "total_tokens": 49,
                                "input_token_details": {"text_tokens": 0, "audio_tokens": 42}}
    return _json(payload, b)


async def rerank(request: Request) -> Response:
    b, body, early = await _common(request)
    if early:
        return early
    docs = body.get("documents") or []
    results = [{"index": i, "relevance_score": round(1 - i / 10, 3)} for i in range(len(docs))]
    tokens = _int(b, "total_tokens", 20 * max(len(docs), 1))
    payload: dict = {"model": body.get("model"), "results": results}
    style = b.get("rerank_style", "jina")
    if "no_usage" in b:
        pass
    elif style == "cohere":
        payload["meta"] = {"billed_units": {"search_units": 1}}
    elif style == "newapi":
        payload["usage"] = {"prompt_tokens": tokens, "completion_tokens": 0,
                            "total_tokens": tokens}
    else:
        payload["usage"] = {"total_tokens": tokens}
    return _json(payload, b)


MODELS = ("gpt-4o", "gpt-4o-c", "gpt-4o-mini", "gemini-2.5-pro", "gemini-2.5-pro-c",
          "text-embedding-3-small", "dall-e-3", "gpt-image-1", "tts-1", "whisper-1",
          "jina-reranker-v2")


async def models(request: Request) -> Response:
    b, _body, early = await _common(request)
    if early:
        return early
    return _json({"object": "list", "data": [
        {"id": m, "object": "model", "created": CREATED, "owned_by": "stand-in"}
        for m in MODELS]}, b)


async def echo(request: Request) -> Response:
    b, _body, early = await _common(request)
    if early:
        return early
    return _json({"object": "echo", "method": request.method, "path": request.url.path,
                  "query": request.url.query}, b)


def _native_routes() -> list[Route]:
    """Anthropic Messages, OpenAI Responses and Gemini native (tests/upstream_native.py)."""
    try:
        import upstream_native
    except ImportError:  # run as ``python -m tests.upstream``
        from tests import upstream_native
    return upstream_native.routes()


def build_app(behaviour: dict[str, str] | None = None) -> Starlette:
    post = ["POST"]
    routes = [
        Route("/v1/chat/completions", chat_completions, methods=post),
        Route("/v1/embeddings", embeddings, methods=post),
        Route("/v1/images/generations", images, methods=post),
        Route("/v1/audio/speech", speech, methods=post),
        Route("/v1/audio/transcriptions", transcriptions, methods=post),
        Route("/v1/rerank", rerank, methods=post),
        Route("/v1/models", models, methods=["GET"]),
        *_native_routes(),
        Route("/{path:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    app = Starlette(routes=routes)
    app.state.stand_in = StandIn(behaviour=dict(behaviour or {}))
    return app


def free_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


class ThreadedServer:
    """A uvicorn server on a free loopback port in a background thread; a context manager."""

    name = "server"
    stop_timeout = 10.0

    def _serve(self, config: uvicorn.Config) -> None:
        self._sock = free_socket()
        self.port = self._sock.getsockname()[1]
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]},
                                        name=self.name, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The base URL a client (or the proxy's --upstream) uses: ``http://127.0.0.1:P/v1``."""
        return self.origin + "/v1"

    def start(self):
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=self.stop_timeout)
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class UpstreamServer(ThreadedServer):
    """The stand-in on a free port in a background thread; a context manager."""

    name = "stand-in upstream"

    def __init__(self, behaviour: dict[str, str] | None = None, *, log_level: str = "warning",
                 **uvicorn_options) -> None:
        self.app = build_app(behaviour)
        self._serve(uvicorn.Config(self.app, log_level=log_level, lifespan="off",
                                   **uvicorn_options))

    @property
    def state(self) -> StandIn:
        return self.app.state.stand_in

    @property
    def requests(self) -> deque:
        return self.state.requests

    @property
    def stream_events(self) -> deque:
        return self.state.stream_events

    def set_behaviour(self, **behaviour: object) -> None:
        self.state.behaviour = {k: str(v) for k, v in behaviour.items()}



class ProxyServer(ThreadedServer):
    """The recording proxy in front of ``upstream_url`` on a free port, in a thread.

    ``db`` is the ledger path; the spool and the install secret go beside it, as with
    ``callmeter proxy --db``. Options are :class:`ingest.proxy.ProxyOptions` fields.
    """

    name = "callmeter proxy"
    stop_timeout = 30.0

    def __init__(self, upstream_url: str, db, *, log_level: str = "warning",
                 **options) -> None:
        from pathlib import Path

        from ingest.proxy import ProxyOptions, build_app, uvicorn_config
        from ledger.config import ledger_home, spool_dir
        from ledger.keys import SECRET_FILE_NAME, KeyFingerprinter, load_or_create_secret

        self.db = str(db)
        self.spool_folder: Path = spool_dir(self.db)
        secret = load_or_create_secret(ledger_home(self.db) / SECRET_FILE_NAME)
        options.setdefault("access_log", False)
        self.options = ProxyOptions(upstream=upstream_url, **options)
        self.app = build_app(self.options, self.spool_folder, KeyFingerprinter(secret))
        self._serve(uvicorn_config(self.app, self.options, log_level=log_level))

    def flush(self) -> None:
        """Close the current spool segment so a load sees every call recorded so far."""
        self.app.spool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="OpenAI-format stand-in upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--behaviour", default="", help="default key=value;... behaviour")
    args = parser.parse_args()
    sock = free_socket(args.host) if args.port == 0 else None
    port = sock.getsockname()[1] if sock else args.port
    print(f"listening http://{args.host}:{port}/v1", flush=True)
    config = uvicorn.Config(build_app(parse_behaviour(args.behaviour)), host=args.host,
                            port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    server.run(sockets=[sock] if sock else None)


if __name__ == "__main__":
    main()
