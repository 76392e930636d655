"""The `callmeter` command line: its help, and the dashboard it serves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer.main

from callmeter.cli import app

ROOT = Path(__file__).resolve().parents[2]


def env_without_settings() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMETER_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callmeter.cli", *args], cwd=cwd,
                          env=env or env_without_settings(), capture_output=True, text=True,
                          timeout=60)


def test_help_lists_every_command(tmp_path):
    done = run_cli("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    registered = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert {"import", "load", "dashboard", "demo"} <= set(registered)
    for name in registered:
        assert f" {name} " in done.stdout, name


@pytest.mark.parametrize("command", ["import", "load", "dashboard", "demo"])
def test_every_ledger_command_takes_db(tmp_path, command):
    done = run_cli(command, "--help", cwd=tmp_path)
    assert done.returncode == 0 and "--db" in done.stdout and "CALLMETER_DB" in done.stdout


def test_dashboard_beyond_localhost_needs_a_password(tmp_path):
    done = run_cli("dashboard", "--host", "0.0.0.0", "--db", str(tmp_path / "l.duckdb"),
                   cwd=tmp_path)
    assert done.returncode == 2
    assert "without a password" in done.stderr and "CALLMETER_DASHBOARD_PASSWORD" in done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not (ROOT / "dashboard" / "app.py").exists(), reason="no dashboard app yet")
def test_dashboard_serves_and_owns_the_ledger_while_it_runs(tmp_path):
    db = tmp_path / "l.duckdb"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "callmeter.cli", "dashboard", "--port", str(port), "--db",
         str(db)], cwd=tmp_path, env=env_without_settings(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "dashboard did not come up"
            time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        done = run_cli("load", "--db", str(db), cwd=tmp_path)
        assert done.returncode == 0
        assert f"process {proc.pid} (callmeter dashboard)" in done.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
