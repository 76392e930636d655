"""Shared pieces of the reliability tests: real `callmeter` processes, the stand-in upstream
in its own process, the ledger read back, and the scan for secrets in callmeter's files.

Every API key these tests send carries :data:`KEY_MARKER`, so finding the marker in any file
callmeter wrote is certainly a leak.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx

ROOT = Path(__file__).resolve().parents[2]
KEY_MARKER = "cmleak-"          # in every key the reliability tests send
OTHER_TEST_KEYS = ("sk-proxytest-7Qz9XkL2mVb8NcR4-wxyz",   # tests/ingest's proxy key
                   "sk-oteltest-Zr81PqLm4VbX2cW9-kq7t")   # tests/otel_sender.py's key
FORBIDDEN = (KEY_MARKER.encode(), b"Authorization", b"authorization:", b"Bearer ",
             *(k.encode() for k in OTHER_TEST_KEYS))
# What callmeter writes: ledgers (and their WAL), spool segments and torn tails, rejected rows,
# reports, the install secret, and the proxy logs these tests capture (callmeter itself logs
# to stderr only). Test inputs (samples, hand-written logs) are not callmeter's and not scanned.
CALLMETER_FILES = re.compile(
    r"(\.duckdb(\.wal)?$|\.spool/|\.rejected/|\.tail$|(^|/)(proxy|otel)-\d+\.log$|"
    r"callmeter\.secret$|(^|/)report[^/]*$)")


def test_key(name: str = "") -> str:
    """A fresh API key carrying the marker."""
    return f"sk-{KEY_MARKER}{name}{'-' if name else ''}{secrets.token_hex(8)}"


test_key.__test__ = False  # not a test


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("CALLMETER_")}
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + out.get("PYTHONPATH", "")
    out.update(extra)
    return out


class UpstreamProcess:
    """``python -m tests.upstream`` in its own process (so load and kill tests measure the
    proxy, not a stand-in sharing the test's GIL)."""

    def __init__(self, behaviour: str = "") -> None:
        args = [sys.executable, "-m", "tests.upstream", "--port", "0"]
        if behaviour:
            args += ["--behaviour", behaviour]
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("listening "):
            self.proc.kill()
            raise RuntimeError(f"stand-in upstream did not start: {line!r}")
        self.url = line.split()[1]
        wait_http(self.url + "/models")

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGKILL)  # a stand-in: no graceful wait for slow calls

    def __enter__(self) -> UpstreamProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_http(url: str, seconds: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before serving {url}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {seconds}s")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class CliServer:
    """A ``callmeter`` server command as a real subprocess on a free port, started once its
    /healthz answers; its output (log) goes to ``<log_dir>/<command>-<port>.log``."""

    def __init__(self, command: str, db: Path, *args: str, port: int | None = None,
                 log_dir: Path | None = None, **env_extra: str) -> None:
        self.db = Path(db)
        self.port = port or free_port()
        self.log_path = (log_dir or self.db.parent) / f"{command}-{self.port}.log"
        argv = [sys.executable, "-m", "callmeter.cli", command, "--port", str(self.port),
                "--db", str(self.db), *args]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env(**env_extra),
                                     stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_http(self.origin + "/healthz", proc=self.proc)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"{command} did not start:\n" + self.log_path.read_text()
                               ) from None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def spool(self) -> Path:
        return self.db.with_name(self.db.stem + ".spool")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def stop(self) -> int:
        code = stop_process(self.proc)
        self._log.close()
        return code

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.stop()


class CliProxy(CliServer):
    """``callmeter proxy --upstream URL``."""

    def __init__(self, upstream_url: str, db: Path, *extra: str, access_log: bool = True,
                 port: int | None = None, log_dir: Path | None = None,
                 **env_extra: str) -> None:
        super().__init__("proxy", db, "--upstream", upstream_url,
                         "--access-log" if access_log else "--no-access-log", *extra,
                         port=port, log_dir=log_dir, **env_extra)

    @property
    def url(self) -> str:
        return self.origin + "/v1"


class CliOtel(CliServer):
    """``callmeter otel``: the OTLP/HTTP receiver."""

    def __init__(self, db: Path, port: int | None = None) -> None:
        super().__init__("otel", db, port=port)


def callmeter(*args: str, check: bool = True, timeout: float = 120,
              **env_extra: str) -> subprocess.CompletedProcess:
    """Run ``callmeter ARGS`` as a user would; returns the completed process (text)."""
    done = subprocess.run([sys.executable, "-m", "callmeter.cli", *args], cwd=ROOT,
                          env=env(**env_extra), capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"callmeter {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


def rows(db: Path, sql: str = "SELECT * FROM calls ORDER BY started_at", params=None
         ) -> list[dict]:
    """The ledger's rows as dicts, read-only (the ledger must not be held elsewhere)."""
    conn = duckdb.connect(str(db), read_only=True)
    try:
        cur = conn.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        conn.close()


def callmeter_files(*roots: Path) -> list[Path]:
    """Files under ``roots`` that callmeter writes (see :data:`CALLMETER_FILES`)."""
    found = []
    for root in roots:
        if not root.exists():
            continue
        for path in root.rglob("*"):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and CALLMETER_FILES.search(rel):
                found.append(path)
    return found


def leaks(*roots: Path, extra: tuple[bytes, ...] = ()) -> list[tuple[str, str]]:
    """(file, what) for every forbidden string found in a callmeter-written file."""
    out = []
    for path in callmeter_files(*roots):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for needle in (*FORBIDDEN, *extra):
            if needle in data:
                out.append((str(path), needle.decode()))
    return out


def load_rows_tagged(db: Path, tag: str = "case") -> dict[str, dict]:
    """`callmeter load`, then the ledger's rows by the value of tag ``tag`` (each once)."""
    callmeter("load", "--db", str(db))
    found = rows(db, f"SELECT *, tags['{tag}'] AS tag_value FROM calls")
    out = {r["tag_value"]: r for r in found if r["tag_value"] is not None}
    assert len(out) == len([r for r in found if r["tag_value"] is not None]), "recorded twice"
    return out
