"""Figures as ratios against the machine's own limit, measured in the same run (issue 20).

The machine is shared and noisy: an absolute time says as much about the neighbours as about
callmeter. Each benchmark therefore also times the limit for the same work (DuckDB reading the
same file into a table, one grouped scan of the same calls, a bare forwarder), interleaved with
callmeter's own runs, best of N each, and reports ``callmeter ÷ limit`` beside both figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def best_of(rounds: int, *work: Callable[[], float | None]) -> list[float]:
    """Run each of ``work`` ``rounds`` times, interleaved (a, b, a, b…), and return each one's
    best seconds. A callable may return its own seconds (e.g. a child's), else it is timed."""
    best = [float("inf")] * len(work)
    for _ in range(max(rounds, 1)):
        for i, fn in enumerate(work):
            t0 = time.perf_counter()
            took = fn()
            best[i] = min(best[i], took if took is not None else time.perf_counter() - t0)
    return best


def ratio_row(name: str, mine: float, limit: float, goal: float, limit_name: str,
              unit: str = "s", rows: int | None = None) -> dict[str, object]:
    """The figures of one table row: ratio first, then both absolute figures, the goal."""
    ratio = mine / limit if limit > 0 else float("inf")
    rate = f" ({rows / mine:,.0f} rows/s vs {rows / limit:,.0f})" if rows and mine and limit else ""
    return {
        f"RATIO {name} ÷ {limit_name} (goal ≤ {goal})": round(ratio, 2),
        f"{name}: callmeter / limit {unit}": f"{mine:.3f} / {limit:.3f}{rate}",
        f"{name}: ratio met": "yes" if ratio <= goal else "NO",
    }


def scaling(measure: Callable[[int, int], tuple[float, float]],
            sizes: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """``measure(size, rounds=1)`` → (callmeter s, limit s) at each size, keyed ``1M``, ``10M``:
    the scaling curve a chart draws."""
    out = {}
    for size in sizes:
        mine, limit = measure(size, 1)
        out[f"{size // 1_000_000}M"] = {"callmeter_s": round(mine, 2), "limit_s": round(limit, 2)}
    return out


def load_average() -> float:
    return round(os.getloadavg()[0], 1)
