"""Processes for the proxy benchmark: start a server and wait for its port, measure its RSS,
drive load with ``wrk`` (when installed) or :mod:`benchmarks.loadgen`, stop it by its pid."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CHAT = "/v1/chat/completions"
WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.body = '{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-0000000000000000000000001234"
done = function(s, latency, requests)
  local e = s.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%f,"errors":%d,"p50_ms":%f,"p99_ms":%f,"max_ms":%f}\n',
    s.requests, s.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {_tail(proc)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {seconds}s")


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by ``pid`` and its worker processes."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, seconds: float, quiet: float = 0.05) -> None:
    """Wait until a freshly started server stops using CPU (start-up work such as loading
    token tables in a thread is done), so it is not measured as request latency."""
    deadline = time.monotonic() + seconds
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - before < quiet:
            return
        before = now


def _tail(proc: subprocess.Popen) -> str:
    log = getattr(proc, "log_path", None)
    return Path(log).read_text()[-2000:] if log and Path(log).exists() else ""


class Server:
    """A server process started with ``cmd`` listening on ``port``; a context manager."""

    def __init__(self, cmd: list[str], port: int, env: dict | None = None,
                 start_seconds: float = 60) -> None:
        self.cmd, self.port, self.start_seconds = cmd, port, start_seconds
        self.env = dict(os.environ, **(env or {}))
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        log = tempfile.NamedTemporaryFile("w", prefix="bench-server-", suffix=".log",
                                          delete=False)
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.proc.log_path = log.name  # type: ignore[attr-defined]
        wait_port(self.port, self.proc, self.start_seconds)
        wait_idle(self.proc.pid, self.start_seconds)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the server + workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{CHAT}"

    def rss_mb(self) -> float:
        """Resident memory of the server and its worker processes."""
        return sum(_rss_kb(pid) for pid in _tree(self.proc.pid)) / 1024


def _tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return pids
    for child in children:
        pids += _tree(int(child))
    return pids


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """Samples a server's RSS every ``every`` seconds in a thread while load runs."""

    def __init__(self, server: Server, every: float = 0.5) -> None:
        self.server, self.every = server, every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - t0, self.server.rss_mb()))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def has_wrk() -> bool:
    return shutil.which("wrk") is not None


def load_fixed(url: str, concurrency: int, seconds: float, warmup: float = 1.0) -> dict:
    """Non-streamed POSTs back to back on ``concurrency`` keep-alive connections."""
    if has_wrk():
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(WRK_SCRIPT)
        base = ["wrk", "-t1", f"-c{concurrency}", "--timeout", "30s", "-s", f.name, url]
        try:
            if warmup:
                subprocess.run(base[:5] + [f"-d{max(int(warmup), 1)}s"] + base[5:],
                               capture_output=True, check=True, timeout=120)
            out = subprocess.run(base[:5] + [f"-d{max(int(seconds), 1)}s"] + base[5:],
                                 capture_output=True, text=True, check=True, timeout=300)
        finally:
            os.unlink(f.name)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["rps"] = result["requests"] / result["seconds"]
        result["client"] = "wrk"
        return result
    result = _loadgen(["--url", url, "--mode", "fixed", "--concurrency", str(concurrency),
                       "--seconds", str(seconds), "--warmup", str(warmup)])
    result["client"] = "loadgen"
    return result


def load_streams(url: str, concurrency: int, seconds: float, chunks: int, pace: float = 0.0,
                 warmup: float = 1.0) -> dict:
    return _loadgen(["--url", url, "--mode", "stream", "--concurrency", str(concurrency),
                     "--seconds", str(seconds), "--chunks", str(chunks), "--pace", str(pace),
                     "--warmup", str(warmup)])


def _loadgen(args: list[str]) -> dict:
    out = subprocess.run([PY, "-m", "benchmarks.loadgen", *args], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_average() -> float:
    return os.getloadavg()[0]
