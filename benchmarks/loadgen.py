"""A small, fast HTTP/1.1 load generator (uvloop + httptools, keep-alive, one connection per
worker) for what ``wrk`` cannot measure: streams (time to first token, gaps between chunks,
chunks lost or merged into one HTTP chunk) — and for non-streamed load when ``wrk`` is not
installed.

    python -m benchmarks.loadgen --url http://127.0.0.1:P/v1/chat/completions \
        --mode fixed|stream --concurrency 64 --seconds 5 [--chunks 50 --pace 0.02]

prints one JSON object. Every figure is measured here, at the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from urllib.parse import urlsplit

import httptools

BODY = (b'{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello"}],'
        b'"max_tokens":16%s}')


def request_bytes(url: str, stream: bool, behaviour: str = "") -> bytes:
    parts = urlsplit(url)
    body = BODY % (b',"stream":true' if stream else b"")
    extra = f"x-upstream-behaviour: {behaviour}\r\n" if behaviour else ""
    head = (f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
            f"authorization: Bearer sk-bench-0000000000000000000000001234\r\n"
            f"content-type: application/json\r\n{extra}content-length: {len(body)}\r\n\r\n")
    return head.encode() + body


class Conn(asyncio.Protocol):
    """One keep-alive connection; ``send`` returns when the whole response has arrived."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("connection lost"))
        if not self.closed.done():
            self.closed.set_result(None)

    def start(self, payload: bytes) -> asyncio.Future:
        self.done = asyncio.get_running_loop().create_future()
        self.first = self.last = 0.0
        self.max_gap = 0.0
        self.events = self.merged = 0
        self.t0 = time.perf_counter()
        self.transport.write(payload)
        return self.done

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        now = time.perf_counter()
        if not self.first:
            self.first = now
        elif now - self.last > self.max_gap:
            self.max_gap = now - self.last
        self.last = now
        events = body.count(b"data: ")
        self.events += events
        if events > 1:  # several upstream events framed as one HTTP chunk: not flushed apart
            self.merged += events - 1

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())


async def connect(host: str, port: int) -> Conn:
    _t, conn = await asyncio.get_running_loop().create_connection(Conn, host, port)
    return conn


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


async def fixed(url: str, concurrency: int, seconds: float, warmup: float) -> dict:
    """Each worker sends non-streamed requests back to back; latency per request."""
    parts = urlsplit(url)
    payload = request_bytes(url, stream=False)
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    measure_from, stop = start + warmup, start + warmup + seconds

    async def worker() -> None:
        nonlocal errors
        conn = await connect(parts.hostname, parts.port)
        while (now := time.perf_counter()) < stop:
            status = await conn.start(payload)
            if now >= measure_from:
                latencies.append(time.perf_counter() - conn.t0)
                errors += status != 200
        conn.transport.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    ms = [x * 1000 for x in latencies]
    return {"requests": len(ms), "errors": errors, "rps": len(ms) / seconds,
            "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "max_ms": max(ms, default=None)}


async def streams(url: str, concurrency: int, seconds: float, chunks: int, pace: float,
                  warmup: float) -> dict:
    """Each worker opens streams back to back: TTFT, largest gap, events lost or merged."""
    parts = urlsplit(url)
    behaviour = f"chunks={chunks};chunk_delay={pace}" if pace else f"chunks={chunks}"
    payload = request_bytes(url, stream=True, behaviour=behaviour)
    expected = chunks + 3  # role chunk, content chunks, finish chunk, [DONE]
    ttft: list[float] = []
    totals: list[float] = []
    gaps: list[float] = []
    stats = {"streams": 0, "errors": 0, "short_streams": 0, "lost_events": 0, "merged": 0}
    start = time.perf_counter()
    measure_from, stop = start + warmup, start + warmup + seconds

    async def worker(i: int) -> None:
        # paced streams start spread over one stream's length and drift with a little jitter,
        # as independent users do; all starting in the same instant would measure the burst
        await asyncio.sleep(pace * (chunks + 3) * i / concurrency if pace else 0)
        conn = await connect(parts.hostname, parts.port)
        while (now := time.perf_counter()) < stop:
            if pace:
                await asyncio.sleep(random.uniform(0, pace))
            try:
                status = await conn.start(payload)
            except ConnectionError:
                stats["errors"] += 1
                conn = await connect(parts.hostname, parts.port)
                continue
            if now < measure_from:
                continue
            stats["streams"] += 1
            stats["errors"] += status != 200
            ttft.append((conn.first - conn.t0) * 1000)
            totals.append((time.perf_counter() - conn.t0) * 1000)
            gaps.append(conn.max_gap * 1000)
            stats["merged"] += conn.merged
            if conn.events < expected:
                stats["short_streams"] += 1
                stats["lost_events"] += expected - conn.events
        conn.transport.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return dict(stats, events_per_stream=expected, ttft_p50_ms=pct(ttft, 50),
                ttft_p99_ms=pct(ttft, 99), total_p99_ms=pct(totals, 99),
                max_gap_ms=max(gaps, default=None), gap_p99_ms=pct(gaps, 99))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=("fixed", "stream"), default="fixed")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--pace", type=float, default=0.0)
    args = parser.parse_args()
    import uvloop

    if args.mode == "fixed":
        coro = fixed(args.url, args.concurrency, args.seconds, args.warmup)
    else:
        coro = streams(args.url, args.concurrency, args.seconds, args.chunks, args.pace,
                       args.warmup)
    print(json.dumps(uvloop.run(coro)))


if __name__ == "__main__":
    main()
