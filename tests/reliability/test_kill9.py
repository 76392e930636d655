"""Issue 9, property 1: `kill -9` of a real `callmeter proxy` with 1000 calls completed and 200
in flight; after a restart and `callmeter load`, every call whose response was fully delivered
is in the ledger, none twice."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from harness import CliProxy, UpstreamProcess, callmeter, rows, test_key

COMPLETED, IN_FLIGHT, AFTER_RESTART = 1000, 200, 10
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
KEY = test_key("kill9")


async def one_call(client: httpx.AsyncClient, url: str, n: int, *, stream: bool,
                   behaviour: str = "", started: asyncio.Event | None = None) -> bool:
    """One chat call tagged n=<n>; True when its whole response arrived."""
    headers = {"Authorization": f"Bearer {KEY}", "X-Callmeter-Tags": f"n={n}",
               "X-Upstream-Behaviour": behaviour}
    body = CHAT | {"stream": stream}
    try:
        async with client.stream("POST", url + "/chat/completions", json=body,
                                 headers=headers) as r:
            data = b""
            async for chunk in r.aiter_raw():
                data += chunk
                if started is not None:
                    started.set()
            if r.status_code != 200:
                return False
            if stream:
                return data.rstrip().endswith(b"data: [DONE]")
            return json.loads(data)["usage"]["completion_tokens"] == 3
    except httpx.HTTPError:
        return False


async def drive(url: str, proxy: CliProxy) -> tuple[set[int], set[int]]:
    """1000 calls to completion, then 200 held open; kill -9 while they are."""
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        gate = asyncio.Semaphore(50)

        async def completed(n: int) -> bool:
            async with gate:
                return await one_call(client, url, n, stream=n % 2 == 0, behaviour="chunks=3")

        results = await asyncio.gather(*(completed(n) for n in range(COMPLETED)))
        delivered = {n for n, ok in enumerate(results) if ok}
        events = [asyncio.Event() for _ in range(IN_FLIGHT)]
        flying = []
        for i in range(IN_FLIGHT):
            n = COMPLETED + i
            if i % 2:  # a stream under way: first chunks delivered, [DONE] far off
                coro = one_call(client, url, n, stream=True, started=events[i],
                                behaviour="chunks=2000;chunk_delay=0.05")
            else:      # waiting for the upstream's headers
                events[i].set()
                coro = one_call(client, url, n, stream=False, behaviour="delay=60")
            flying.append(asyncio.ensure_future(coro))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 30)
        await asyncio.sleep(0.3)  # the header-waiting half has reached the upstream
        proxy.kill9()
        late = await asyncio.gather(*flying)
        # a call that somehow completed anyway counts as delivered
        delivered |= {COMPLETED + i for i, ok in enumerate(late) if ok}
    return delivered, set(range(COMPLETED, COMPLETED + IN_FLIGHT))


@pytest.mark.slow
def test_kill9_loses_no_delivered_call_and_loads_none_twice(tmp_path):
    db = tmp_path / "callmeter.duckdb"
    with UpstreamProcess() as up:
        proxy = CliProxy(up.url, db, "--max-connections", "2000")
        delivered, in_flight = asyncio.run(drive(proxy.url, proxy))
        assert len(delivered) == COMPLETED, "every call before the kill must have completed"
        open_segments = list(proxy.spool.glob("*.jsonl.open"))
        assert open_segments, "the killed proxy left its open segment behind"
        with CliProxy(up.url, db, port=proxy.port) as again:
            for n in range(COMPLETED + IN_FLIGHT, COMPLETED + IN_FLIGHT + AFTER_RESTART):
                r = httpx.post(again.url + "/chat/completions", json=CHAT, headers={
                    "Authorization": f"Bearer {KEY}", "X-Callmeter-Tags": f"n={n}"})
                assert r.status_code == 200
                delivered.add(n)
    first = callmeter("load", "--db", str(db))
    second = callmeter("load", "--db", str(db))  # nothing left, nothing twice
    assert "0 new" in second.stdout + second.stderr or "0 segment" in second.stdout + \
        second.stderr, second.stdout + second.stderr
    ledger = rows(db, "SELECT call_id, tags['n'] AS n, status FROM calls")
    by_n: dict[int, int] = {}
    for row in ledger:
        by_n[int(row["n"])] = by_n.get(int(row["n"]), 0) + 1
    missing = delivered - set(by_n)
    twice = {n for n, count in by_n.items() if count > 1}
    assert not missing, f"{len(missing)} delivered calls missing, e.g. {sorted(missing)[:5]}"
    assert not twice, f"recorded twice: {sorted(twice)[:5]}"
    assert len({r["call_id"] for r in ledger}) == len(ledger)
    assert set(by_n) <= delivered | in_flight  # nothing invented
    print(f"\nkill9: delivered {len(delivered)}, in ledger {len(ledger)}, "
          f"in-flight recorded {len(set(by_n) & in_flight)}/{len(in_flight)}, "
          f"load: {first.stdout.strip()} {first.stderr.strip()}")
