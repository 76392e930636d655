"""Benchmark: every dashboard page's queries on a large demo ledger (goal ≤ 300 ms each on 10M).

The ledger is built as a user builds one (``callmeter demo --no-serve --calls N``, fixed
``--end`` and seed so it is cached in ``$TMPDIR/callmeter-bench`` and reused). Each page is then
run through Streamlit's AppTest from the real entry file, with the app's own query layer
(:mod:`dashboard.queries`, caches cleared before every page); each cursor the layer opens is one
query, timed from ``execute`` to its last fetch. Reported: the slowest query of each page and
which it was, the page's script time, and the rollup build after the demo.

Quick: 300k calls (the demo's default). Full: 10M. 100M only when ``CALLMETER_BENCH_100M=1``
(about 10 GB of disk and a long build on this machine; a full run without it says so).
"""

from __future__ import annotations

import inspect
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
PAGES = ("overview", "models", "keys", "key_detail", "billing", "recommendations", "finance",
         "prices", "data")
END = "2026-11-01"
CACHE = Path(tempfile.gettempdir()) / "callmeter-bench"


def demo_ledger(calls: int) -> Path:
    """A cached demo ledger of ``calls`` calls (built once with the real CLI)."""
    path = CACHE / f"demo-{calls}.duckdb"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part.duckdb")
    part.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", "from callmeter.cli import main; main()", "demo", "--no-serve",
           "--calls", str(calls), "--days", "90", "--seed", "42", "--end", END, "--db",
           str(part)]
    env = dict(os.environ, CALLMETER_SECRET_FILE=str(CACHE / "secret"))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"callmeter demo failed: {proc.stdout}\n{proc.stderr}")
    part.rename(path)
    return path


class TimedCursor:
    """A DuckDB cursor that adds the time spent in execute and fetches to its query's total."""

    def __init__(self, cursor, label: str, times: dict) -> None:
        self._cursor, self._label, self._times = cursor, label, times

    def _timed(self, name):
        method = getattr(self._cursor, name)

        def call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                result = method(*args, **kwargs)
            finally:
                self._times[self._label] += time.perf_counter() - t0
            return self if result is self._cursor else result
        return call

    def __getattr__(self, name):
        if name in ("execute", "fetchall", "fetchone", "fetchmany", "df", "fetchdf", "arrow",
                    "fetch_arrow_table", "pl", "fetchnumpy", "sql", "query"):
            return self._timed(name)
        return getattr(self._cursor, name)


def _caller() -> str:
    """The public query-layer function that opened the cursor (``queries.totals``, …)."""
    frames = inspect.stack(context=0)[2:12]
    for frame in frames:
        if frame.filename.endswith("queries.py") and not frame.function.startswith("_"):
            return f"queries.{frame.function}"
    for frame in frames:
        if "dashboard" in frame.filename or "pricing" in frame.filename:
            return f"{Path(frame.filename).stem}.{frame.function}"
    return "other"


def page_queries(db: Path) -> dict[str, dict]:
    """Run each page; per page the time of every query it made (seconds) and the script time."""
    import streamlit as st
    from streamlit import config as st_config
    from streamlit.testing.v1 import AppTest

    from dashboard import connection

    st_config.set_option("server.address", "127.0.0.1")
    for name in list(logging.root.manager.loggerDict):  # AppTest's "no runtime" chatter
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)
    os.environ["CALLMETER_DB"] = str(db)
    times: dict[str, float] = defaultdict(float)
    counter = [0]
    original = connection.Ledger.cursor

    def cursor(self):
        counter[0] += 1
        return TimedCursor(original(self), f"{_caller()}#{counter[0]}", times)

    connection.Ledger.cursor = cursor
    out = {}
    try:
        first = AppTest.from_file(APP, default_timeout=600)
        first.run()  # opens the ledger, loads the spool, brings the rollup up to date
        for page in PAGES:
            st.cache_data.clear()
            times.clear()
            at = AppTest.from_file(APP, default_timeout=600)
            at.switch_page(f"app_pages/{page}.py")
            t0 = time.perf_counter()
            at.run()
            script = time.perf_counter() - t0
            if at.exception:
                raise RuntimeError(f"page {page} failed: {at.exception[0].value}")
            merged: dict[str, float] = defaultdict(float)
            for label, seconds in times.items():
                merged[label.split("#")[0]] = max(merged[label.split("#")[0]], seconds)
            out[page] = {"queries": dict(merged), "script": script}
    finally:
        connection.Ledger.cursor = original
        st.cache_data.clear()
        st.cache_resource.clear()
    return out


def bench_size(calls: int, limit_ms: float, tmp: Path) -> dict:
    source = demo_ledger(calls)
    db = tmp / f"ledger-{calls}.duckdb"
    shutil.copy(source, db)
    from dashboard.connection import open_dashboard_ledger
    from ingest.config import settings_from_env

    t0 = time.perf_counter()
    ledger = open_dashboard_ledger(settings_from_env(str(db)))
    ledger.refresh(force=True)
    rollup_seconds = time.perf_counter() - t0
    ledger.conn.close()
    pages = page_queries(db)
    label = f"{calls // 1_000_000}M" if calls >= 1_000_000 else f"{calls // 1000}k"
    out: dict[str, object] = {f"{label}: rollup build after demo, s": round(rollup_seconds, 2)}
    worst_all = 0.0
    for page, info in pages.items():
        worst_name, worst = max(info["queries"].items(), key=lambda kv: kv[1],
                                default=("none", 0.0))
        worst_all = max(worst_all, worst)
        out[f"{label} {page}: slowest query ms (which) / queries / script s"] = (
            f"{worst * 1000:.0f} ({worst_name.split('.')[-1]}) / {len(info['queries'])} / "
            f"{info['script']:.2f}")
    out[f"7. {label}: slowest query of any page ms (≤ {limit_ms:.0f})"] = round(worst_all * 1000)
    out[f"7. {label} met"] = "yes" if worst_all * 1000 <= limit_ms else "NO"
    return out


def run(quick: bool) -> dict:
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        if quick:
            out.update(bench_size(300_000, 300, Path(tmp)))
            out["7. note"] = "quick mode: 300k calls (the goal is for 10M; full runs it)"
        else:
            out.update(bench_size(10_000_000, 300, Path(tmp)))
            if os.environ.get("CALLMETER_BENCH_100M") == "1":
                out.update(bench_size(100_000_000, 1000, Path(tmp)))
            else:
                out["7. 100M"] = "not run (set CALLMETER_BENCH_100M=1; ~10 GB, long build)"
    out["benchmark process peak RSS MB"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
