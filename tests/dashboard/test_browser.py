"""Real Chromium on a real user's ledger: every page, every role, every Finance "By" value.

The dashboard is served with ``streamlit run`` on the messy ledger (tests/dashboard/
messy_ledger.py: proxy calls with the OpenAI SDK incl. ``GET /models`` and a keyless call,
label-only keys from a new-api sync and a CSV export, tags, unpriced models, a closed month with
platform refunds and fees) behind a users file. Headless Debian Chromium (Playwright, never a
downloaded browser) signs in as the finance user and as a key owner, opens every page from the
sidebar, picks every Finance "By" value, and fails on any Python exception, any error box, or
any JavaScript error. Screenshots go to ``$TMPDIR/callmeter-dashboard-screenshots/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from messy_ledger import PASSWORDS, build_messy_ledger, write_users_file

from benchmarks.browser import CHROMIUM, launch, serve_dashboard, settle, sign_in

PAGES = ("Overview", "Models", "Keys", "Key detail", "Billing modes", "Recommendations",
         "Finance", "Prices", "Data")
SHOTS = Path(tempfile.gettempdir()) / "callmeter-dashboard-screenshots"
SERVER_LOG: list[Path] = []   # the served app's output file

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} missing: apt-get install -y chromium"),
]


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    return build_messy_ledger(tmp_path_factory.mktemp("messy") / "ledger.duckdb")


@pytest.fixture(scope="module")
def served(messy) -> Iterator[str]:
    users = write_users_file(Path(messy.path).parent)
    query = f"?from={messy.earlier_month}&to={messy.current_month.replace(day=28)}"
    with serve_dashboard(messy.path, users_file=users, log=SERVER_LOG) as url:
        yield url + "/" + query


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        chromium = launch(pw)
        yield chromium
        chromium.close()


def problems(page, js_errors: list[str]) -> list[str]:
    """What a user would see as broken: exceptions, error boxes, JavaScript errors."""
    found = [f"exception: {t[:300]}" for t in
             page.locator("[data-testid='stException']").all_inner_texts()]
    found += [f"error box: {t[:300]}" for t in
              page.locator("[data-testid='stAlertContentError']").all_inner_texts()]
    found += [f"javascript: {e}" for e in js_errors]
    return found


def open_page(page, title: str) -> None:
    link = page.locator("[data-testid='stSidebarNav'] a").filter(
        has=page.get_by_text(title, exact=True))
    link.click()
    settle(page)


def signed_in(browser, url: str, user: str):
    """A new page signed in as ``user``, and the list its JavaScript errors go to."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    sign_in(page, url, user, PASSWORDS[user])
    return page, js_errors


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_every_page_under_every_role(served, browser, user):
    page, js_errors = signed_in(browser, served, user)
    seen = {}
    for title in PAGES:
        open_page(page, title)
        seen[title] = problems(page, js_errors)
        js_errors.clear()
        page.screenshot(path=str(SHOTS / f"{user}-{title.replace(' ', '_')}.png"),
                        full_page=True)
    page.close()
    assert {t: p for t, p in seen.items() if p} == {}


def finance_by_values(page) -> list[str]:
    box = page.locator("[data-testid='stSelectbox']", has_text="By")
    box.click()
    options = page.locator("[role='option']")
    options.first.wait_for()
    values = options.all_inner_texts()
    page.keyboard.press("Escape")
    return values


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_every_finance_by_value(served, browser, user):
    page, js_errors = signed_in(browser, served, user)
    open_page(page, "Finance")
    values = finance_by_values(page)
    assert {"key", "model", "day"} <= {v.strip() for v in values}, values
    assert any(v.startswith("tag:") for v in values), values   # the ledger has tags
    seen = {}
    for value in values:
        page.locator("[data-testid='stSelectbox']", has_text="By").click()
        page.locator("[role='option']", has_text=re.compile(f"^{re.escape(value)}$")).click()
        settle(page)
        seen[value] = problems(page, js_errors)
        js_errors.clear()
    page.close()
    assert {v: p for v, p in seen.items() if p} == {}


def metric(page, label: str) -> str:
    box = page.locator("[data-testid='stMetric']").filter(
        has=page.get_by_text(label, exact=True))
    return box.locator("[data-testid='stMetricValue']").inner_text().strip()


def test_upload_on_the_data_page_refreshes_counts_and_never_shows_a_temp_path(
        served, browser, tmp_path):
    """Runs last: it adds 3 calls to the shared ledger."""
    export = tmp_path / "march-export.csv"
    export.write_text("started_at,key_label,model,input_tokens,output_tokens,status\n"
                      "2025-03-02T10:00:00Z,upload-team,gpt-4o-mini,100,20,200\n"
                      "2025-03-02T10:01:00Z,upload-team,gpt-4o-mini,110,20,200\n"
                      "2025-03-02T10:02:00Z,upload-team,gpt-4o-mini,120,20,200\n")
    page, js_errors = signed_in(browser, served, "alice")
    open_page(page, "Data")
    before = int(metric(page, "Rows").replace(",", ""))
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(
        str(export))
    page.get_by_role("button", name="Import", exact=True).wait_for()
    page.get_by_role("button", name="Import", exact=True).click()
    settle(page)
    assert problems(page, js_errors) == []
    assert int(metric(page, "Rows").replace(",", "")) == before + 3
    text = page.locator("[data-testid='stMain']").inner_text()
    with page.expect_download() as download:   # the "Recent imports" table, as its CSV
        page.locator(".st-key-csv_imports button").click()
    text += Path(download.value.path()).read_text()
    assert "march-export.csv" in text
    # the upload went through a temporary folder (tempfile.mkdtemp: tmpXXXXXXXX): never shown
    assert not re.search(re.escape(tempfile.gettempdir()) + r"/tmp\w{8}", text), text
    assert str(tmp_path) not in text
    page.close()


def test_the_server_logged_no_traceback(served):
    """Runs after every page was drawn: the server's own output holds no Python traceback
    (an exception Streamlit caught still shows there)."""
    text = SERVER_LOG[-1].read_text()
    assert "You can now view your Streamlit app" in text or "Local URL" in text, text[-2000:]
    assert "Traceback" not in text, text[-4000:]


if __name__ == "__main__":   # serve the messy ledger by hand
    import pricing

    pricing.install()
    m = build_messy_ledger(Path(tempfile.mkdtemp()) / "ledger.duckdb")
    print(m)
    subprocess.run([sys.executable, "-m", "streamlit", "run", str(Path(__file__).parents[2] /
                    "dashboard" / "app.py")], env={**os.environ, "CALLMETER_DB": m.path},
                   check=False)
