"""Render a benchmark results file as the Markdown table docs/performance.md carries.

    python -m benchmarks.report [benchmarks/results/latest.json]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def render(report: dict) -> str:
    m = report["machine"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(report["started"]))
    lines = [f"Run {when}, {'quick' if report['quick'] else 'full'} sizes; {m['cpus']} CPUs "
             f"({m['processor']}), {m['platform']}, Python {m['python']}.", "",
             "| benchmark | figure | value |", "|---|---|---|"]
    for bench, results in report["results"].items():
        for metric, value in results.items():
            if isinstance(value, float):
                value = f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
            text = str(value).replace("|", "/").replace("\n", " ")
            lines.append(f"| {bench.removeprefix('bench_')} | {metric} | {text} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results" / "latest.json"
    print(render(json.loads(path.read_text())))
