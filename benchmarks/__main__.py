"""Run every ``benchmarks/bench_*.py`` (each exposes ``run(quick) -> dict``), print a table,
write it as JSON.

    python -m benchmarks            full sizes (a few minutes)
    python -m benchmarks --quick    smoke sizes, as CI runs them so the suite cannot rot
    python -m benchmarks --only pricing,import
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).parent


def discover(only: set[str] | None) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    return [n for n in names if not only or n.removeprefix("bench_") in only]


def machine() -> dict:
    import os

    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()}


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    report = {"machine": machine(), "quick": args.quick, "started": time.time(), "results": {}}
    failed = False
    for name in discover(only):
        print(f"== {name} ==", flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            result = module.run(quick=args.quick)
        except Exception:  # a broken benchmark is reported, the others still run
            traceback.print_exc()
            result = {"error": traceback.format_exc(limit=3)}
            failed = True
        report["results"][name] = result
        for metric, value in result.items():
            print(f"  {metric:<48} {_fmt(value)}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
