"""Issue 14, point 2: a real disk (tmpfs) filled and freed under steady traffic. Recording
resumes within 2 s of the space coming back; every call served meanwhile is counted as
dropped on /metrics and /healthz (whose body stays small); the ledger holds every call
counted as written."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from harness import CliProxy, callmeter, rows, test_key

KEY = test_key("tmpfs")
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): "
                    f"{done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Write a filler file until the disk is full."""
    filler = folder / "filler"
    block = b"\0" * 65536
    with open(filler, "wb", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(block)
    return filler


class SteadyTraffic(threading.Thread):
    """About 20 calls a second, each tagged n=<i>; remembers which were fully served."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.delivered, self.stop = url, set(), threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                r = client.post(self.url + "/chat/completions", json=CHAT, headers={
                    "Authorization": f"Bearer {KEY}", "X-Callmeter-Tags": f"n={n}"})
                if r.status_code == 200 and r.json()["usage"]["total_tokens"] == 16:
                    self.delivered.add(n)
                n += 1
                time.sleep(0.05)


def health(px: CliProxy) -> tuple[int, dict, int]:
    r = httpx.get(px.origin + "/healthz")
    return r.status_code, r.json(), len(r.content)


def test_full_disk_then_freed_resumes_recording_within_2s_and_counts_every_drop(
        upstream, small_disk, tmp_path):
    db = small_disk / "callmeter.duckdb"
    px = CliProxy(upstream.url, db, access_log=False, log_dir=tmp_path,
                  CALLMETER_SECRET_FILE=str(tmp_path / "callmeter.secret"))
    traffic = SteadyTraffic(px.url)
    try:
        traffic.start()
        time.sleep(1.0)
        filler = fill(small_disk)
        time.sleep(3.0)  # ~60 calls while the disk is full
        status, body, size = health(px)
        assert (status, body["status"]) == (503, "not_recording"), body
        assert body["spool"]["records_dropped"] > 0
        filler.unlink()
        freed = time.monotonic()
        while health(px)[0] != 200:
            assert time.monotonic() - freed < 2.0, "recording did not resume within 2 s"
            time.sleep(0.05)
        resumed = time.monotonic() - freed
        time.sleep(1.0)
    finally:
        traffic.stop.set()
        traffic.join(15)
    status, body, size = health(px)
    metrics = httpx.get(px.origin + "/metrics").text
    px.stop()
    spool = body["spool"]
    assert status == 200 and size < 2048, size  # the body does not grow with every drop
    assert f"callmeter_spool_records_dropped {float(spool['records_dropped'])}" in metrics
    assert f"callmeter_spool_records_written {float(spool['records_written'])}" in metrics
    assert spool["records_written"] + spool["records_dropped"] == len(traffic.delivered)
    callmeter("load", "--db", str(db))
    recorded = {int(r["n"]) for r in rows(db, "SELECT tags['n'] AS n FROM calls")}
    assert len(recorded) == spool["records_written"] and recorded <= traffic.delivered
    print(f"\ntmpfs: {len(traffic.delivered)} delivered, {spool['records_written']} written, "
          f"{spool['records_dropped']} dropped while full (counted), recording again "
          f"{resumed:.2f} s after freeing; /healthz {size} bytes")
