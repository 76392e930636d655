"""The served dashboard driven by headless Debian Chromium (Playwright, never a downloaded
browser): shared by the browser test suite (tests/dashboard/test_browser.py) and the page-speed
benchmark (benchmarks/bench_dashboard_browser.py)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .harness import ROOT, Server, free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
APP = ROOT / "dashboard" / "app.py"
# Streamlit marks the app element with the script's state; "notRunning" once a run is drawn
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
RUNNING = "[data-testid='stApp'][data-test-script-state='running']"


def launch(pw: Any) -> Any:
    """Headless Chromium from Debian's package."""
    return pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)


@contextmanager
def serve_dashboard(db: str, *, users_file: Path | None = None, address: str = "127.0.0.1",
                    env: dict[str, str] | None = None, start_seconds: float = 120,
                    log: list[Path] | None = None) -> Iterator[str]:
    """``streamlit run dashboard/app.py`` on ``db``; yields its base URL (and appends the
    server's output file to ``log`` when given)."""
    port = free_port()
    extra = {"CALLMETER_DB": db, **(env or {})}
    if users_file is not None:
        extra["CALLMETER_USERS_FILE"] = str(users_file)
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
           "--server.address", address, "--server.port", str(port),
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    server = Server(cmd, port, env=extra, start_seconds=start_seconds)
    server.env.pop("CALLMETER_DASHBOARD_PASSWORD", None)
    if users_file is None:
        server.env.pop("CALLMETER_USERS_FILE", None)
    with server:
        if log is not None and server.proc is not None:
            log.append(Path(server.proc.log_path))  # type: ignore[attr-defined]
        yield f"http://127.0.0.1:{port}"


def settle(page: Any, timeout_ms: float = 120_000, quiet_ms: int = 250) -> float:
    """Wait until the app's script run has finished and the page stays idle ``quiet_ms``;
    returns the seconds waited (the time a user waits for the page to be drawn)."""
    t0 = time.perf_counter()
    deadline = t0 + timeout_ms / 1000
    while True:
        page.wait_for_selector(IDLE, timeout=max(deadline - time.perf_counter(), 0.1) * 1000)
        done = time.perf_counter()
        page.wait_for_timeout(quiet_ms)
        if page.locator(RUNNING).count() == 0 and page.locator(IDLE).count() == 1:
            return done - t0
        if time.perf_counter() > deadline:
            raise TimeoutError("the dashboard kept running")


def sign_in(page: Any, url: str, user: str, password: str) -> None:
    """Open ``url`` and sign in through the login form (a users file or shared password)."""
    page.goto(url, timeout=120_000)
    page.get_by_label("User", exact=True).wait_for(timeout=120_000)
    if page.get_by_label("User", exact=True).is_enabled():
        page.get_by_label("User", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("[data-testid='stSidebarNav']", timeout=120_000)
    settle(page)


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
