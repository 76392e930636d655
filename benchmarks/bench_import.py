"""Benchmark: import a large new-api style console export and report rows/s and peak memory.

``python benchmarks/bench_import.py [--rows N] [--format csv|jsonl] [--quick]`` generates the
export with DuckDB (about 200 bytes a row), then runs ``callmeter import`` on it in a child
process and reads the child's peak RSS. ``run(quick)`` returns the figures as a dict for a
benchmark runner; quick means 200k rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from .charts import chart
from .ratios import best_of, load_average, ratio_row, scaling

ROOT = Path(__file__).resolve().parent.parent
FULL_ROWS = 10_000_000
QUICK_ROWS = 200_000
RATIO_ROWS = 2_000_000  # the row: a 2M-row new-api CSV
SCALING_ROWS = (1_000_000, 10_000_000)
GOAL_RATIO = 1.5

# One row per call as the new-api console logs it: mostly consume rows, 2 % errors, a few
# top-ups, a per-request (-c) model in the mix, cache tokens on some rows, unicode key labels.
GENERATE_SQL = """
SELECT
  i % 1024 AS id,
  1735689600 + i // 8 AS created_at,
  CASE WHEN i % 50 = 7 THEN 5 WHEN i % 997 = 3 THEN 1 ELSE 2 END AS type,
  'user' || (i % 40) AS username,
  ['研发-张三', 'bot-客服', 'etl', 'data-team', 'search'][1 + i % 5] || '-' || (i % 60)
    AS token_name,
  1 + i % 300 AS token_id,
  ['gpt-4o', 'gpt-4o-mini', 'gemini-2.5-pro-c', 'claude-sonnet-4', 'deepseek-v3'][1 + i % 5]
    AS model_name,
  CASE WHEN i % 50 = 7 THEN 0 ELSE 100 + (i * 7919) % 40000 END AS quota,
  CASE WHEN i % 50 = 7 THEN 0 ELSE 50 + (i * 31) % 6000 END AS prompt_tokens,
  CASE WHEN i % 50 = 7 THEN 0 ELSE (i * 17) % 1500 END AS completion_tokens,
  (i % 20) AS use_time,
  i % 3 = 0 AS is_stream,
  1 + i % 12 AS channel,
  'default' AS "group",
  CASE WHEN i % 5 = 2
    THEN '{"model_price":0.02,"group_ratio":1,"frt":' || (i % 3000) || '}'
    WHEN i % 50 = 7 THEN '{"status_code":429,"error_type":"upstream_error"}'
    ELSE '{"model_price":-1,"model_ratio":1.25,"completion_ratio":4,"cache_tokens":'
      || CASE WHEN i % 4 = 0 THEN 32 ELSE 0 END || ',"frt":' || (i % 3000) || '}' END AS other
FROM range(__ROWS__) t(i)
"""


def generate(path: Path, rows: int, fmt: str = "csv") -> Path:
    """Write a ``rows``-row export to ``path`` (CSV with a header, or JSON Lines)."""
    conn = duckdb.connect()
    try:
        options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT json"
        select = GENERATE_SQL.replace("__ROWS__", str(rows))
        conn.execute(f"COPY ({select}) TO '{path}' ({options})")
    finally:
        conn.close()
    return path


def time_import(path: Path, db: Path) -> dict:
    """Run ``callmeter import`` in a child process; wall time, its output, its peak RSS."""
    code = "from callmeter.cli import main; main()"
    cmd = [sys.executable, "-c", code, "import", str(path), "--format", "newapi", "--db", str(db)]
    env = dict(os.environ, CALLMETER_SECRET_FILE=str(db.parent / "secret"))
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"import failed: {proc.stdout}\n{proc.stderr}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"seconds": seconds, "output": proc.stdout.strip(),
            "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime}


def _import_once(export: Path, work: Path) -> float:
    """``callmeter import`` of ``export`` into a fresh ledger (child process); its seconds."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return float(time_import(export, work / "bench.duckdb")["seconds"])


def _read_csv_once(export: Path, work: Path) -> None:
    """The limit: ``CREATE TABLE AS SELECT * FROM read_csv(file)`` into a file database, in a
    child process as well (so both sides pay a process start)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    code = ("import duckdb, sys; c = duckdb.connect(sys.argv[2]); "
            "c.execute('CREATE TABLE t AS SELECT * FROM read_csv(?)', [sys.argv[1]]); c.close()")
    subprocess.run([sys.executable, "-c", code, str(export), str(work / "limit.duckdb")],
                   check=True, capture_output=True)


def measure(rows: int, rounds: int) -> tuple[float, float]:
    """(import seconds, limit seconds) for a ``rows``-row new-api CSV, best of ``rounds``."""
    with tempfile.TemporaryDirectory(prefix="bench-import-ratio-") as tmp:
        export = generate(Path(tmp) / "newapi.csv", rows)
        mine, limit = best_of(rounds, lambda: _import_once(export, Path(tmp) / "a"),
                              lambda: _read_csv_once(export, Path(tmp) / "b"))
    return mine, limit


def limit_ratio(rows: int, rounds: int) -> dict:
    mine, limit = measure(rows, rounds)
    return ratio_row(f"import {rows / 1e6:g}M-row new-api CSV", mine, limit, GOAL_RATIO,
                     "DuckDB CTAS read_csv", rows=rows) | {"import rounds": rounds}


def run(quick: bool = False, fmt: str = "csv", rows: int | None = None,
        workdir: Path | None = None, export: Path | None = None) -> dict:
    """The ratio against the limit (the issue's 2M-row row; 200k quick), then, in full runs,
    the scaling curve (1M, 10M); ``rows`` or ``export`` given: one import's figures only."""
    if rows is None and export is None:
        out = limit_ratio(QUICK_ROWS if quick else RATIO_ROWS, 1 if quick else 3)
        if not quick:
            curve = scaling(measure, SCALING_ROWS)
            out["scaling (rows: callmeter s / limit s)"] = curve
            out["scaling chart"] = chart("import", "rows", curve)
        out["load average"] = load_average()
        return out
    return one_import(quick, fmt, rows, workdir, export)


def one_import(quick: bool = False, fmt: str = "csv", rows: int | None = None,
               workdir: Path | None = None, export: Path | None = None) -> dict:
    """Generate an export (or reuse ``export`` when it exists) and import it into a fresh
    ledger; return the figures."""
    rows = rows or (QUICK_ROWS if quick else FULL_ROWS)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        folder = Path(tmp)
        export = export or folder / f"newapi-export.{'csv' if fmt == 'csv' else 'jsonl'}"
        t0 = time.perf_counter()
        if not export.exists():
            generate(export, rows, fmt)
        gen_seconds = time.perf_counter() - t0
        size_mb = export.stat().st_size / 1e6
        figures = time_import(export, folder / "bench.duckdb")
    return {
        "benchmark": "import",
        "format": fmt,
        "rows": rows,
        "file_mb": round(size_mb, 1),
        "generate_seconds": round(gen_seconds, 2),
        "import_seconds": round(figures["seconds"], 2),
        "rows_per_second": round(rows / figures["seconds"]),
        "cpu_seconds": round(figures["cpu_seconds"], 2),
        # comparable across runs on a shared machine, where wall time depends on the others
        "cpu_seconds_per_million_rows": round(figures["cpu_seconds"] * 1e6 / rows, 2),
        "peak_rss_mb": round(figures["peak_rss_mb"]),
        "load_average": round(os.getloadavg()[0], 1),
        "summary": next((line.strip() for line in figures["output"].splitlines()
                         if "[newapi]" in line), ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    parser.add_argument("--export", type=Path, default=None,
                        help="keep the generated export here and reuse it on the next run")
    args = parser.parse_args()
    print(json.dumps(run(args.quick, args.format, args.rows, export=args.export), indent=2,
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
