"""Benchmark: the dashboard's speed as a user feels it, in headless Chromium (issue 17's goal:
every page's first render ≤ 1 s once the app is warm, a filter change ≤ 0.5 s, on 10M calls).

``streamlit run dashboard/app.py`` serves the demo ledger of :mod:`benchmarks.bench_dashboard`
(``callmeter demo --no-serve --calls N``, built once and cached). Debian's Chromium (Playwright,
``/usr/bin/chromium``) opens the app on the demo's last 30 days and the Overview is drawn once
(the app is warm: Python, DuckDB and the ledger's marker loaded). Then, for every page:

- **first render**: click the page in the sidebar → the script run is over and the page stays
  idle (Streamlit's ``data-test-script-state``), its queries not yet cached;
- **filter change**: pick the first model in the sidebar's Models filter → drawn again;

the time from the click to the page being drawn, as the browser sees it (server, websocket,
rendering). Quick (CI smoke, about 2 minutes): the 1M-call ledger bench_dashboard built just
before; full: 10M.

    .venv/bin/python -m benchmarks.bench_dashboard_browser [--quick] [--calls N]

writes its figures into ``benchmarks/results/latest.json`` beside the others (``python -m
benchmarks`` runs it too).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from .bench_dashboard import END, demo_ledger
from .browser import CHROMIUM, IDLE, RUNNING, launch, serve_dashboard

PAGES = ("Overview", "Models", "Keys", "Key detail", "Billing modes", "Recommendations",
         "Finance", "Prices", "Data")
GOAL_FIRST_S, GOAL_FILTER_S = 1.0, 0.5
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def drawn_after(page: Any, action: Any, timeout_s: float = 300) -> float:
    """Seconds from ``action()`` until the app's script run is over and the page stayed idle
    for 150 ms (the quiet time is not counted)."""
    t0 = time.perf_counter()
    action()
    try:  # the run may start a moment after the click; a very fast one may never be seen
        page.wait_for_selector(RUNNING, timeout=2000)
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: the run was already over
        pass
    while True:
        page.wait_for_selector(IDLE, timeout=timeout_s * 1000)
        done = time.perf_counter()
        page.wait_for_timeout(150)
        if page.locator(RUNNING).count() == 0:
            return done - t0


def open_page(page: Any, title: str) -> None:
    page.locator("[data-testid='stSidebarNav'] a").filter(
        has=page.get_by_text(title, exact=True)).click()


def _models_filter(page: Any) -> Any:
    return page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']").filter(
        has=page.get_by_text("Models", exact=True))


def pick_first_model(page: Any) -> str:
    """Choose the first model in the sidebar's Models filter (not "Select all"); its name."""
    _models_filter(page).get_by_role("button", name="Open").click()
    option = page.get_by_role("option").filter(has_not_text="Select all").first
    name = option.inner_text().strip()
    option.click()
    page.keyboard.press("Escape")
    return name


def clear_model(page: Any, name: str) -> None:
    """Back to every model, drawn before the next page is measured."""
    remove = _models_filter(page).get_by_role("button", name=f"Remove {name}", exact=True)
    drawn_after(page, lambda: remove.click())


def measure(db: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    end = date.fromisoformat(END) - timedelta(days=1)
    query = f"?from={end - timedelta(days=29)}&to={end}&tz=UTC"
    out: dict[str, Any] = {}
    with serve_dashboard(db) as url, sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        out["warm_up_s"] = drawn_after(page, lambda: page.goto(url + "/" + query,
                                                                timeout=300_000))
        for title in PAGES:
            name = title.lower().replace(" ", "_")
            out[f"{name}_first_render_s"] = drawn_after(page, lambda t=title: open_page(page, t))
            picked: list[str] = []
            out[f"{name}_filter_change_s"] = drawn_after(
                page, lambda picked=picked: picked.append(pick_first_model(page)))
            clear_model(page, picked[0])
        browser.close()
    for what, goal in (("first_render", GOAL_FIRST_S), ("filter_change", GOAL_FILTER_S)):
        per_page = {k.removesuffix(f"_{what}_s"): v for k, v in out.items()
                    if k.endswith(f"_{what}_s")}
        out[f"max_{what}_s"] = max(per_page.values())
        out[f"pages_over_{what}_goal"] = ", ".join(
            p for p, v in per_page.items() if v > goal) or "none"
    return out


def run(quick: bool = False, calls: int | None = None) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        return {"skipped": f"{CHROMIUM} missing (apt-get install -y chromium)"}
    calls = calls or (1_000_000 if quick else 10_000_000)
    db = demo_ledger(calls)
    return {"calls": calls, "goal_first_render_s": GOAL_FIRST_S,
            "goal_filter_change_s": GOAL_FILTER_S, **measure(str(db))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--calls", type=int)
    args = parser.parse_args()
    result = run(args.quick, args.calls)
    for metric, value in result.items():
        print(f"  {metric:<40} {value:.3f}" if isinstance(value, float) else
              f"  {metric:<40} {value}")
    report = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"results": {}}
    report.setdefault("results", {})["dashboard_browser"] = result
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
