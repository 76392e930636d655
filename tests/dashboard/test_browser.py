"""One real browser: headless Debian Chromium loads every page of a served dashboard."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from dashboard_ledger import APP, ROOT, build_ledger

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = {"overview": "", "models": "models", "keys": "keys", "key": "key",
         "billing": "billing", "recommendations": "recommendations", "finance": "finance",
         "prices": "prices", "data": "data"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} missing: apt-get install -y chromium"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    db = build_ledger(tmp_path / "demo.duckdb")
    port = _free_port()
    env = {**os.environ, "CALLMETER_DB": db}
    env.pop("CALLMETER_DASHBOARD_PASSWORD", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", APP, "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def test_every_page_loads_in_chromium(served):
    from playwright.sync_api import sync_playwright

    shots = Path(tempfile.gettempdir()) / "callmeter-dashboard-screenshots"
    shots.mkdir(exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for name, path in PAGES.items():
            page.goto(f"{served}/{path}?from=2025-03-01&to=2025-03-31", timeout=30_000)
            page.wait_for_selector("h1", timeout=30_000)
            page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                                   timeout=30_000)
            page.wait_for_timeout(1500)  # let plotly draw
            assert page.locator("[data-testid='stException']").count() == 0, name
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        browser.close()
    assert len(list(shots.glob("*.png"))) == len(PAGES)
    print(f"screenshots in {shots}")
