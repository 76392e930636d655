"""Issue 14, point 4: 300 connections that never finish their headers, against a proxy whose
process may hold only 256 descriptors, while streams are under way and new calls arrive. The
proxy closes them after its header timeout (408), every call is served, every served call is
recorded (segments keep rotating during the flood), and the descriptors come back."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import threading
import time

import httpx
import pytest
from harness import ROOT, CliProxy, callmeter, env, rows, test_key, wait_http

KEY = test_key("loris")
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
FILES = 256


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def call(url: str, n: int, delivered: set[int], stream: bool = False) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "X-Callmeter-Tags": f"n={n}"}
    if stream:
        headers["X-Upstream-Behaviour"] = "chunks=30;chunk_delay=0.1"
    try:
        with httpx.stream("POST", url + "/chat/completions", json=CHAT | {"stream": stream},
                          headers=headers, timeout=30) as r:
            data = r.read()
        if r.status_code == 200 and (b"[DONE]" in data if stream else b'"usage"' in data):
            delivered.add(n)
    except httpx.HTTPError:
        pass  # not delivered: the assertion on `delivered` says which


@pytest.mark.slow
def test_300_slow_loris_connections_cost_no_call_and_no_descriptor(upstream, tmp_path):
    db = tmp_path / "callmeter.duckdb"
    px = CliProxy(upstream.url, db, access_log=False)
    px.stop()

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FILES, FILES))

    proc = subprocess.Popen(px.proc.args, cwd=ROOT, preexec_fn=few_files,
                            env=env(CALLMETER_HEADER_TIMEOUT="2",
                                    CALLMETER_SPOOL_MAX_SECONDS="0.2"),
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "p.log", "wb"))
    px.proc = proc
    delivered: set[int] = set()
    lorises: list[socket.socket] = []
    try:
        wait_http(px.origin + "/healthz", proc=proc)
        baseline = open_fds(proc.pid)
        streams = [threading.Thread(target=call, args=(px.url, n, delivered, True))
                   for n in range(20)]
        for t in streams:
            t.start()
        time.sleep(0.5)  # the streams are under way (3 s each)
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", px.port), timeout=30)
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow")
            lorises.append(s)
        late = [threading.Thread(target=call, args=(px.url, n, delivered)) for n in
                range(100, 110)]
        for t in late:
            t.start()
        for t in streams + late:
            t.join(60)
        closed = 0
        for s in lorises:  # each one was answered 408 and closed by the proxy
            s.settimeout(15)
            got = b""
            try:
                while chunk := s.recv(4096):
                    got += chunk
            except (ConnectionResetError, TimeoutError):
                pass
            closed += got.startswith(b"HTTP/1.1 408") or got == b""
        deadline = time.monotonic() + 10
        while open_fds(proc.pid) > baseline + 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        after = open_fds(proc.pid)
        health = httpx.get(px.origin + "/healthz").json()
    finally:
        for s in lorises:
            s.close()
        proc.terminate()
        proc.wait(30)
    assert closed == 300
    assert delivered == set(range(20)) | set(range(100, 110)), sorted(delivered)
    assert after <= baseline + 5, (baseline, after)
    assert health["spool"]["records_dropped"] == 0, health
    callmeter("load", "--db", str(db))
    recorded = {int(r["n"]) for r in rows(db, "SELECT tags['n'] AS n FROM calls")}
    assert delivered <= recorded
    print(f"\nslow-loris: 300 held connections closed (408), {len(delivered)} calls served "
          f"and recorded, descriptors {baseline} → {after}, limit {FILES}")
