"""Issue 19, point 1: `kill -9` of a real `callmeter otel` while exporters are sending loses no
span it acknowledged. The senders then retry what got no answer (as OTLP exporters do) and
re-send some acknowledged batches too; after `callmeter load` every span is one call."""

from __future__ import annotations

import threading
import time

import httpx
from harness import CliOtel, callmeter, rows
from otlp_requests import T0, chat, request, span

BATCHES, SPANS_PER_BATCH, SENDERS = 400, 5, 4


def batch(n: int) -> tuple[bytes, set[str]]:
    """Batch n: SPANS_PER_BATCH chat spans with fixed ids (so a resend is the same spans)."""
    spans = [span(chat(inp=1000 * n + i), start=T0 + n * 1_000_000,
                  trace_id=n.to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"))
             for i in range(SPANS_PER_BATCH)]
    ids = {f"otel:{n.to_bytes(16, 'big').hex()}:{(i + 1).to_bytes(8, 'big').hex()}"
           for i in range(SPANS_PER_BATCH)}
    return request(spans).SerializeToString(), ids


def send_all(url: str, todo: list[int], acked: set[int], stop: threading.Event) -> None:
    with httpx.Client(timeout=10) as client:
        for n in todo:
            if stop.is_set():
                return
            try:
                r = client.post(url, content=batch(n)[0],
                                headers={"content-type": "application/x-protobuf"})
            except httpx.HTTPError:
                continue  # no answer: not acknowledged
            if r.status_code == 200:
                acked.add(n)


def test_kill9_loses_nothing_acknowledged(tmp_path):
    db = tmp_path / "callmeter.duckdb"
    acked: set[int] = set()
    stop = threading.Event()
    with CliOtel(db) as otel:
        url = otel.origin + "/v1/traces"
        shares = [list(range(i, BATCHES, SENDERS)) for i in range(SENDERS)]
        threads = [threading.Thread(target=send_all, args=(url, share, acked, stop))
                   for share in shares]
        for t in threads:
            t.start()
        while len(acked) < BATCHES // 2:
            time.sleep(0.005)
        otel.kill9()  # senders are mid-request
        stop.set()
        for t in threads:
            t.join()
    killed_with = set(acked)
    assert 0 < len(killed_with) < BATCHES
    callmeter("load", "--db", str(db))
    stored = {r["call_id"] for r in rows(db, "SELECT call_id FROM calls")}
    for n in killed_with:
        assert batch(n)[1] <= stored, f"batch {n} was acknowledged but is not in the ledger"

    # restart; senders retry every unacknowledged batch and re-send 50 acknowledged ones
    resend = [n for n in range(BATCHES) if n not in killed_with] + sorted(killed_with)[:50]
    with CliOtel(db) as otel:
        again: set[int] = set()
        send_all(otel.origin + "/v1/traces", resend, again, threading.Event())
        assert again == set(resend)
    callmeter("load", "--db", str(db))
    got = rows(db, "SELECT call_id, input_tokens FROM calls")
    assert len(got) == len({r["call_id"] for r in got}) == BATCHES * SPANS_PER_BATCH
    assert sorted(r["input_tokens"] for r in got) == sorted(
        1000 * n + i for n in range(BATCHES) for i in range(SPANS_PER_BATCH))
