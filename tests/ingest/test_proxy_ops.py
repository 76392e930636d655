"""Operating the proxy: health, metrics, an unwritable spool, SIGTERM, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from proxy_helpers import PROXY_TEST_KEY, load_rows
from typer.testing import CliRunner
from upstream import free_socket

from callmeter.cli import app as cli_app
from ingest.loader import load_spool
from ledger.connect import open_ledger

AUTH = {"Authorization": f"Bearer {PROXY_TEST_KEY}"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
ROOT = Path(__file__).resolve().parents[2]


def test_healthz_reports_recording(proxy):
    r = httpx.get(proxy.origin + "/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["recording"] is True
    assert body["spool"]["folder"] == str(proxy.spool_folder)


def test_metrics_count_requests_tokens_and_spool(proxy):
    httpx.post(proxy.url + "/chat/completions", json=CHAT, headers=AUTH)
    httpx.post(proxy.url + "/chat/completions", json=CHAT,
               headers=AUTH | {"X-Upstream-Behaviour": "status=429"})
    text = httpx.get(proxy.origin + "/metrics").text
    assert ('callmeter_proxy_requests_total{endpoint="chat",model="gpt-4o",status="200"} 1.0'
            in text)
    assert ('callmeter_proxy_requests_total{endpoint="chat",model="gpt-4o",status="429"} 1.0'
            in text)
    assert 'callmeter_proxy_tokens_total{kind="input",model="gpt-4o"} 11.0' in text
    assert 'callmeter_proxy_tokens_total{kind="output",model="gpt-4o"} 5.0' in text
    assert 'callmeter_proxy_upstream_latency_seconds_count{endpoint="chat"} 2.0' in text
    assert "callmeter_spool_recording 1.0" in text
    assert "callmeter_spool_records_written 2.0" in text


def test_unwritable_spool_keeps_serving_and_says_so_loudly(proxy):
    folder = proxy.spool_folder
    proxy.flush()
    shutil.rmtree(folder, ignore_errors=True)
    folder.write_text("not a folder")  # as root, a file where the folder should be
    try:
        r = httpx.post(proxy.url + "/chat/completions", json=CHAT, headers=AUTH)
        assert r.status_code == 200  # still serving
        health = httpx.get(proxy.origin + "/healthz")
        assert health.status_code == 503
        body = health.json()
        assert body["recording"] is False and body["status"] == "not_recording"
        assert body["spool"]["last_error"] and body["spool"]["records_dropped"] == 1
        assert "NOT recorded" in body["message"]
        assert "callmeter_spool_recording 0.0" in httpx.get(proxy.origin + "/metrics").text
    finally:
        folder.unlink()
    time.sleep(1.1)  # the writer retries an unwritable spool once a second
    assert httpx.post(proxy.url + "/chat/completions", json=CHAT, headers=AUTH).status_code == 200
    assert httpx.get(proxy.origin + "/healthz").json()["recording"] is True
    assert len(load_rows(proxy)) == 1


def test_cli_help_lists_flags():
    result = CliRunner().invoke(cli_app, ["proxy", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in ("--upstream", "--host", "--port", "--timeout", "--connect-timeout",
                 "--max-connections", "--max-body-bytes", "--workers", "--db"):
        assert flag in result.output


def test_cli_without_upstream_says_how_to_give_it(tmp_path):
    result = CliRunner().invoke(cli_app, ["proxy", "--db", str(tmp_path / "c.duckdb")],
                                env={"CALLMETER_UPSTREAM": ""})
    assert result.exit_code != 0 and "CALLMETER_UPSTREAM" in result.output


def _start_cli_proxy(upstream_url: str, db: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = dict(os.environ, CALLMETER_UPSTREAM=upstream_url, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "callmeter.cli", "proxy", "--port",
                             str(port), "--db", str(db), "--no-access-log", *extra],
                            env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("proxy did not start: " + (proc.stderr.read() if proc.stderr else ""))


@pytest.mark.slow
def test_sigterm_finishes_in_flight_stream_and_flushes(upstream, tmp_path):
    db = tmp_path / "callmeter.duckdb"
    proc, port = _start_cli_proxy(upstream.url, db, "--workers", "2")
    received: list[bytes] = []
    under_way = threading.Event()

    def slow_stream() -> None:
        with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions",
                          json=CHAT | {"stream": True}, timeout=20,
                          headers=AUTH | {"X-Upstream-Behaviour":
                                          "chunks=20;chunk_delay=0.05"}) as r:
            for chunk in r.iter_raw():
                received.append(chunk)
                under_way.set()

    try:
        for _ in range(3):
            assert httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT,
                              headers=AUTH).status_code == 200
        reader = threading.Thread(target=slow_stream)
        reader.start()
        assert under_way.wait(timeout=10)
        proc.send_signal(signal.SIGTERM)
        reader.join(timeout=20)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert b"data: [DONE]" in b"".join(received)  # the in-flight stream was finished
    spool = db.with_name("callmeter.spool")
    assert not list(spool.glob("*.open"))  # every segment closed on the way out
    conn = open_ledger(str(db))
    try:
        load_spool(conn, spool)
        rows = conn.execute("SELECT stream, output_tokens, usage_flag FROM calls "
                            "ORDER BY stream").fetchall()
    finally:
        conn.close()
    assert rows == [(False, 5, None)] * 3 + [(True, 20, None)]


def test_cli_proxy_serves_and_records_with_one_worker(upstream, tmp_path):
    db = tmp_path / "callmeter.duckdb"
    proc, port = _start_cli_proxy(upstream.url, db)
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/chat/completions", json=CHAT, headers=AUTH)
        assert r.status_code == 200 and r.json()["usage"]["total_tokens"] == 16
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["upstream"] == upstream.url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    lines = b"".join(p.read_bytes() for p in db.with_name("callmeter.spool").glob("*.jsonl"))
    [record] = [json.loads(line) for line in lines.splitlines()]
    assert record["input_tokens"] == 11 and record["source"] == "proxy"


def test_httpx_transport_serves_the_same(upstream, tmp_path):
    from upstream import ProxyServer

    with ProxyServer(upstream.url, tmp_path / "c.duckdb", transport="httpx") as px:
        r = httpx.post(px.url + "/chat/completions", json=CHAT, headers=AUTH)
        assert r.json()["usage"]["prompt_tokens"] == 11
        with httpx.stream("POST", px.url + "/chat/completions", json=CHAT | {"stream": True},
                          headers=AUTH) as s:
            events = [line for line in s.iter_lines() if line.startswith("data:")]
        assert events[-1] == "data: [DONE]" and not any('"choices": []' in e for e in events)
        rows = load_rows(px)
    assert [(r["stream"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
        (False, 11, 5), (True, 11, 5)]
