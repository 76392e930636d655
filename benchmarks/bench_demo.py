"""The demo history: ``build_demo`` of a million calls over 90 days (goal: well under a minute,
≤ 45 s); DuckDB writing as many generated rows into a table in the same run is printed beside
it, for scale only.

This was a timed unit test; speed goals live here, where a busy machine moves a figure instead
of failing the suite.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from benchmarks.ratios import best_of, load_average
from ingest.demo import build_demo
from ledger.connect import open_ledger
from ledger.keys import KeyFingerprinter

GOAL_SECONDS = 45.0
END = datetime(2026, 10, 1, tzinfo=UTC)


def _demo(folder: Path, calls: int) -> float:
    path = folder / f"demo-{time.perf_counter_ns()}.duckdb"
    conn = open_ledger(str(path))
    began = time.perf_counter()
    build_demo(conn, calls=calls, days=90, seed=1,
               fingerprinter=KeyFingerprinter(b"bench-secret"), end=END)
    took = time.perf_counter() - began
    got = conn.execute("SELECT count(*) FROM calls").fetchone()
    conn.close()
    if got is None or got[0] != calls:
        raise AssertionError(f"the demo wrote {got} calls, not {calls}")
    return took


def _limit(folder: Path, calls: int) -> float:
    """A table of ``calls`` generated rows as wide as a ledger row's main columns."""
    conn = duckdb.connect(str(folder / f"limit-{time.perf_counter_ns()}.duckdb"))
    began = time.perf_counter()
    conn.execute(
        "CREATE TABLE t AS SELECT i AS id, md5(i::VARCHAR) AS call_id, "
        "TIMESTAMPTZ '2026-07-01' + to_seconds(i % 7776000) AS started_at, "
        "'gpt-4o-mini' || (i % 7)::VARCHAR AS model, i % 5000 AS input_tokens, "
        "i % 700 AS output_tokens, (i % 3 = 0) AS per_request FROM range(?) r(i)", [calls])
    took = time.perf_counter() - began
    conn.close()
    return took


def run(quick: bool = False) -> dict[str, object]:
    calls = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mine, limit = best_of(1 if quick else 2, lambda: _demo(folder, calls),
                              lambda: _limit(folder, calls))
    out: dict[str, object] = {
        "demo calls": calls,
        "demo build (s)": round(mine, 2),
        "demo calls/s": round(calls / mine),
        f"demo build ≤ {GOAL_SECONDS:.0f} s at 1M": ("n/a (quick)" if quick
                                                     else "yes" if mine <= GOAL_SECONDS else "NO"),
        "load average": load_average(),
    }
    # informative only: the demo draws its calls in Python, the limit does not draw at all
    out["demo build ÷ generated rows into a table"] = round(mine / limit, 1)
    return out
