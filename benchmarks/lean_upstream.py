"""A lean OpenAI-format stand-in for benchmarks: raw asyncio + httptools on uvloop.

The Starlette stand-in in ``tests/upstream.py`` records every request and builds each answer
with Starlette's machinery; on a 2-core machine where the load generator, the upstream and the
proxy share the CPU that would make the *upstream* the bottleneck of the direct baseline. This
one answers ``POST …/chat/completions`` (plain and streamed, same shape and usage as the test
stand-in) and ``GET …/models`` with prebuilt bytes, keep-alive, nothing else.

Streams are sent chunked, one ``transport.write`` per event. ``X-Upstream-Behaviour`` (same
syntax as the test stand-in) or ``--behaviour`` chooses ``chunks=N`` and ``chunk_delay=S``
(seconds between events; a paced stream). ``stream_options.include_usage`` adds the usage chunk.

    python -m benchmarks.lean_upstream --port 0      # prints "listening http://127.0.0.1:P/v1"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket

import httptools

CREATED = 1_700_000_000
USAGE = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16,
         "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}
MODELS = b'{"object":"list","data":[{"id":"gpt-4o","object":"model","owned_by":"bench"}]}'


def parse_behaviour(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.replace(",", ";").split(";"):
        key, sep, value = part.strip().partition("=")
        if key:
            out[key] = value if sep else "1"
    return out


def completion(model: str) -> bytes:
    return json.dumps({
        "id": "chatcmpl-lean", "object": "chat.completion", "created": CREATED, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world"},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": USAGE, "system_fingerprint": "fp_lean"}, separators=(",", ":")).encode()


def stream_events(model: str, chunks: int, include_usage: bool) -> list[bytes]:
    base = {"id": "chatcmpl-lean", "object": "chat.completion.chunk", "created": CREATED,
            "model": model, "system_fingerprint": "fp_lean"}

    def event(obj) -> bytes:
        data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
        return b"data: " + data.encode() + b"\n\n"

    def delta(d: dict, finish=None) -> bytes:
        return event(dict(base, choices=[{"index": 0, "delta": d, "finish_reason": finish}]))

    out = [delta({"role": "assistant", "content": ""})]
    out += [delta({"content": "Hello" if i == 0 else " world"}) for i in range(chunks)]
    out.append(delta({}, "stop"))
    if include_usage:
        out.append(event(dict(base, choices=[], usage=dict(USAGE, completion_tokens=chunks,
                                                           total_tokens=11 + chunks))))
    out.append(event("[DONE]"))
    return [b"%x\r\n%s\r\n" % (len(e), e) for e in out]


def response_head(status: int, ctype: bytes, length: int | None) -> bytes:
    size = b"transfer-encoding: chunked" if length is None else b"content-length: %d" % length
    return (b"HTTP/1.1 %d OK\r\ncontent-type: %s\r\n%s\r\n\r\n" % (status, ctype, size))


class LeanHTTP(asyncio.Protocol):
    """One connection: parse requests with httptools, answer from prebuilt bytes."""

    default: dict[str, str] = {}
    cache: dict[tuple, object] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []
        self.behaviour = ""
        self.url = b""

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-upstream-behaviour":
            self.behaviour = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url, raw = self.url, b"".join(self.body)
        behaviour = self.behaviour
        self.url, self.body, self.behaviour = b"", [], ""
        if url.endswith(b"/chat/completions"):
            self.chat(raw, behaviour)
        elif url.endswith(b"/models"):
            self.transport.write(response_head(200, b"application/json", len(MODELS)) + MODELS)
        else:
            body = b'{"object":"echo"}'
            self.transport.write(response_head(200, b"application/json", len(body)) + body)
        if not self.parser.should_keep_alive():
            self.transport.close()

    def chat(self, raw: bytes, behaviour: str) -> None:
        request = json.loads(raw) if raw else {}
        model = request.get("model", "gpt-4o")
        if not request.get("stream"):
            key = ("c", model)
            body = self.cache.get(key) or self.cache.setdefault(key, completion(model))
            self.transport.write(response_head(200, b"application/json", len(body)) + body)
            return
        b = dict(self.default, **parse_behaviour(behaviour)) if behaviour else self.default
        include = bool((request.get("stream_options") or {}).get("include_usage"))
        chunks, delay = int(b.get("chunks", 5)), float(b.get("chunk_delay", 0))
        key = ("s", model, chunks, include)
        events = self.cache.get(key) or self.cache.setdefault(
            key, stream_events(model, chunks, include))
        self.transport.write(response_head(200, b"text/event-stream", None))
        if not delay:
            for e in events:
                self.transport.write(e)
            self.transport.write(b"0\r\n\r\n")
        else:
            self.paced(events, delay, 0)

    def paced(self, events, delay: float, i: int) -> None:
        if self.transport.is_closing():
            return
        if i == len(events):
            self.transport.write(b"0\r\n\r\n")
            return
        self.transport.write(events[i])
        asyncio.get_running_loop().call_later(delay, self.paced, events, delay, i + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--behaviour", default="")
    args = parser.parse_args()
    LeanHTTP.default = parse_behaviour(args.behaviour)
    import uvloop

    async def serve() -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        server = await asyncio.get_running_loop().create_server(LeanHTTP, sock=sock,
                                                                backlog=4096)
        print(f"listening http://{args.host}:{sock.getsockname()[1]}/v1", flush=True)
        await server.serve_forever()

    uvloop.run(serve())


if __name__ == "__main__":
    main()
