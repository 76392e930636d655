"""Issue 14, point 3: the proxy and the loader in different PID namespaces (as a proxy
container and a dashboard container sharing the spool volume), and a proxy that is PID 1 of
its namespace killed with SIGKILL. Liveness is the writer's lock on its open segment, which
the kernel releases when the writer dies, in whatever namespace: 0 delivered calls lost."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from harness import ROOT, callmeter, env, free_port, rows, test_key, wait_http

KEY = test_key("ns")
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]


@pytest.fixture(scope="module", autouse=True)
def namespaces_work():
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    done = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot create PID namespaces here: {done.stderr.strip()}")


def namespaced_proxy(upstream_url: str, db: Path, port: int, *, pid1: bool,
                     log: Path) -> subprocess.Popen:
    """`callmeter proxy` in a new PID namespace: as its PID 1, or as PID 2 under a shell."""
    cmd = [sys.executable, "-m", "callmeter.cli", "proxy", "--upstream", upstream_url,
           "--port", str(port), "--db", str(db), "--no-access-log"]
    if not pid1:
        cmd = ["sh", "-c", " ".join(cmd) + "; true"]  # the shell stays PID 1
    proc = subprocess.Popen([*UNSHARE, *cmd], cwd=ROOT, env=env(),
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
    wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
    return proc


def namespaced_load(db: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*UNSHARE, sys.executable, "-m", "callmeter.cli", "load", "--db",
                           str(db)], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=120)


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        out += [int(k) for k in kids]
        todo += [int(k) for k in kids]
    return out


def proxy_host_pid(proc: subprocess.Popen) -> int:
    """The host PID of the python process serving the proxy inside the namespace."""
    for pid in descendants(proc.pid):
        if b"callmeter.cli" in Path(f"/proc/{pid}/cmdline").read_bytes() and \
                Path(f"/proc/{pid}/comm").read_text().strip().startswith("python"):
            return pid
    raise AssertionError("proxy process not found")


def calls(url: str, first: int, count: int, delivered: set[int], pause: float = 0.0) -> None:
    with httpx.Client(timeout=10) as client:
        for n in range(first, first + count):
            r = client.post(url + "/chat/completions", json=CHAT, headers={
                "Authorization": f"Bearer {KEY}", "X-Callmeter-Tags": f"n={n}"})
            if r.status_code == 200 and r.json()["usage"]["total_tokens"] == 16:
                delivered.add(n)
            time.sleep(pause)


def ledger_ns(db: Path) -> set[int]:
    return {int(r["n"]) for r in rows(db, "SELECT tags['n'] AS n FROM calls")}


@pytest.mark.slow
def test_loader_in_another_pid_namespace_never_takes_a_live_segment(upstream, tmp_path):
    db = tmp_path / "callmeter.duckdb"
    port = free_port()
    proxy = namespaced_proxy(upstream.url, db, port, pid1=False, log=tmp_path / "p.log")
    delivered: set[int] = set()
    traffic = threading.Thread(target=calls, args=(f"http://127.0.0.1:{port}/v1", 0, 300,
                                                   delivered, 0.02))
    loads = []
    try:
        traffic.start()
        while traffic.is_alive():  # the "dashboard container" loads again and again
            loads.append(namespaced_load(db))
        loads.append(namespaced_load(db))
        live = list((tmp_path / "callmeter.spool").glob("*.jsonl.open"))
        assert live, "the live proxy's open segment must still be there"
    finally:
        proxy.send_signal(signal.SIGKILL)
        proxy.wait(30)
    assert all(done.returncode == 0 for done in loads), loads[-1].stderr
    callmeter("load", "--db", str(db))  # the writer is gone: its segment is taken now
    missing = delivered - ledger_ns(db)
    assert len(delivered) == 300 and not missing, f"{len(missing)} delivered calls lost"
    print(f"\nnamespaces: {len(delivered)} delivered, {len(loads)} loads from another PID "
          f"namespace during traffic, 0 lost")


@pytest.mark.slow
def test_killed_pid1_proxy_leaves_a_segment_the_next_loader_recovers(upstream, tmp_path):
    db = tmp_path / "callmeter.duckdb"
    port = free_port()
    delivered: set[int] = set()
    first = namespaced_proxy(upstream.url, db, port, pid1=True, log=tmp_path / "p1.log")
    calls(f"http://127.0.0.1:{port}/v1", 0, 100, delivered)
    import os

    os.kill(proxy_host_pid(first), signal.SIGKILL)  # PID 1 of its namespace: all of it dies
    first.wait(30)
    # the restarted container: PID 1 again, same spool; a loader both there and on the host
    second = namespaced_proxy(upstream.url, db, port, pid1=True, log=tmp_path / "p2.log")
    try:
        calls(f"http://127.0.0.1:{port}/v1", 100, 10, delivered)
        assert namespaced_load(db).returncode == 0
        callmeter("load", "--db", str(db))
        assert set(range(100)) <= ledger_ns(db), "the killed proxy's calls were not recovered"
    finally:
        os.kill(proxy_host_pid(second), signal.SIGKILL)
        second.wait(30)
    callmeter("load", "--db", str(db))
    missing = delivered - ledger_ns(db)
    assert len(delivered) == 110 and not missing, f"{len(missing)} delivered calls lost"
