"""Issue 9, property 4: 500 concurrent streams through a real `callmeter proxy` for a while
(CALLMETER_TEST_LOAD_SECONDS, default 40 after a 5 s warm-up): zero errors, zero lost records,
and the proxy's memory flat (peak RSS of the last 20 s not above the first 20 s)."""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import pytest
from harness import CliProxy, UpstreamProcess, callmeter, rows, test_key

STREAMS = 500
SECONDS = float(os.environ.get("CALLMETER_TEST_LOAD_SECONDS", "40"))
WARM_UP = 5.0
WINDOW = min(20.0, SECONDS / 2)
KEY = test_key("load")
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
BEHAVIOUR = "chunks=10;chunk_delay=0.3"  # 3 s per stream, 10 output tokens


async def run_load(url: str, proxy: CliProxy) -> dict:
    stop_at = time.monotonic() + WARM_UP + SECONDS
    done, errors, samples = 0, [], []
    headers = {"Authorization": f"Bearer {KEY}", "X-Upstream-Behaviour": BEHAVIOUR,
               "X-Callmeter-Tags": "run=load"}
    connector = aiohttp.TCPConnector(limit=STREAMS + 10)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < stop_at:
                try:
                    async with session.post(url + "/chat/completions", json=BODY,
                                            headers=headers) as r:
                        data = await r.read()
                    if r.status != 200 or not data.rstrip().endswith(b"data: [DONE]"):
                        errors.append(f"{r.status}: {data[-80:]!r}")
                    else:
                        done += 1
                except (TimeoutError, aiohttp.ClientError) as exc:
                    errors.append(repr(exc))

        async def sample() -> None:
            start = time.monotonic()
            while time.monotonic() < stop_at:
                await asyncio.sleep(1.0)
                samples.append((time.monotonic() - start, proxy.rss_kib()))

        await asyncio.gather(sample(), *(worker() for _ in range(STREAMS)))
    return {"done": done, "errors": errors, "samples": samples}


@pytest.mark.slow
def test_500_concurrent_streams_no_errors_no_loss_flat_memory(tmp_path):
    db = tmp_path / "callmeter.duckdb"
    with UpstreamProcess() as up, CliProxy(up.url, db, access_log=False) as px:
        result = asyncio.run(run_load(px.url, px))
        assert px.stop() in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
    assert not result["errors"], (len(result["errors"]), result["errors"][:5])
    callmeter("load", "--db", str(db))
    got = rows(db, "SELECT count(*) AS n, count(DISTINCT call_id) AS d, "
                   "sum(output_tokens) AS out, count(*) FILTER (WHERE status <> 200) AS bad "
                   "FROM calls WHERE tags['run'] = 'load'")[0]
    assert (got["n"], got["d"], got["bad"]) == (result["done"], result["done"], 0)
    assert got["out"] == 10 * result["done"]
    measured = [(t - WARM_UP, kib) for t, kib in result["samples"] if t >= WARM_UP]
    first = max(kib for t, kib in measured if t < WINDOW)
    last = max(kib for t, kib in measured if t >= SECONDS - WINDOW)
    rate = result["done"] / (WARM_UP + SECONDS)
    print(f"\nload: {STREAMS} concurrent streams, {SECONDS:.0f}+{WARM_UP:.0f} s, "
          f"{result['done']} streams ({rate:.0f}/s), 0 errors, {got['n']} rows; "
          f"proxy RSS peak first {WINDOW:.0f} s {first / 1024:.1f} MiB, "
          f"last {WINDOW:.0f} s {last / 1024:.1f} MiB")
    assert last <= first * 1.05 + 4 * 1024, "proxy memory grew under steady load"
