"""Benchmark: ``callmeter load`` — spool segments into the ledger, rows per second (goal ≥ 500k).

Segments are written the way the proxy writes them (one JSON object per line, the record
fields of :meth:`ingest.proxy.record.Call.record`, ``px:`` + uuid-hex call ids, ISO start times
with an offset, tags on some calls), about 200k records per segment (the proxy's 64 MiB
rotation size holds ~220k). Two loads are timed as a user runs them, ``callmeter load`` in a
child process: into an empty ledger, then a second batch into the ledger that now holds the
first (the steady state: the anti-join on ``call_id`` runs against existing rows).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from .charts import chart
from .ratios import best_of, load_average, ratio_row, scaling

ROOT = Path(__file__).resolve().parent.parent
SEGMENT_ROWS = 200_000
FULL_ROWS = 5_000_000
QUICK_ROWS = 600_000
RATIO_ROWS, RATIO_ROWS_QUICK = 1_000_000, 200_000  # the row: 1M records
SCALING_ROWS = (1_000_000, 10_000_000)
GOAL_RATIO = 1.5

RECORDS_SQL = """
SELECT
  'px:' || md5(CAST(i + $offset AS VARCHAR)) AS call_id,
  'proxy' AS source,
  strftime(TIMESTAMP '2026-10-01' + to_seconds(i // 3), '%Y-%m-%dT%H:%M:%S.%f') || '+00:00'
    AS started_at,
  (50 + i * 7 % 4000)::INTEGER AS latency_ms,
  'chat' AS endpoint,
  i % 3 = 0 AS stream,
  CASE WHEN i % 97 = 5 THEN 429 ELSE 200 END AS status,
  1 AS requests,
  (11 + i * 31 % 6000) AS input_tokens,
  CASE WHEN i % 4 = 0 THEN 32 ELSE 0 END AS cached_tokens,
  (i * 17 % 1500) AS output_tokens,
  0 AS reasoning_tokens, 0 AS images, 0 AS characters, 0.0 AS audio_seconds,
  'reported' AS usage_source,
  CASE WHEN i % 3 = 0 THEN (20 + i % 900)::INTEGER END AS ttft_ms,
  ['gpt-4o', 'gpt-4o-c', 'gpt-4o-mini', 'gemini-2.5-pro-c', 'deepseek-v3'][1 + i % 5] AS model,
  ['gpt-4o', 'gpt-4o', 'gpt-4o-mini', 'gemini-2.5-pro', 'deepseek-v3'][1 + i % 5] AS base_model,
  CASE WHEN i % 5 IN (1, 3) THEN 'request' ELSE 'token' END AS billing_mode,
  'k1:' || md5(CAST(i % 300 AS VARCHAR)) AS key_id,
  'sk-…' || lpad(CAST(i % 300 AS VARCHAR), 4, '0') AS key_hint,
  CASE WHEN i % 10 = 0 THEN {'team': 'search', 'app': 'bot'} END AS tags
FROM range($rows) t(i)
"""


def write_segments(folder: Path, rows: int, offset: int) -> int:
    """Closed segments of proxy-shaped records; returns the number of files."""
    folder.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect()
    try:
        files = 0
        for start in range(0, rows, SEGMENT_ROWS):
            n = min(SEGMENT_ROWS, rows - start)
            path = folder / f"20261001T000000000000-1-{offset + start:09d}.jsonl"
            sql = RECORDS_SQL.replace("$offset", str(offset + start)).replace("$rows", str(n))
            conn.execute(f"COPY ({sql}) TO '{path}' (FORMAT json)")
            files += 1
        return files
    finally:
        conn.close()


def time_load(db: Path) -> tuple[float, str]:
    cmd = [sys.executable, "-c", "from callmeter.cli import main; main()", "load", "--db",
           str(db)]
    env = dict(os.environ, CALLMETER_SECRET_FILE=str(db.parent / "secret"))
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"callmeter load failed: {proc.stdout}\n{proc.stderr}")
    return seconds, proc.stdout.strip()


LOAD_IN_CHILD = """
import sys, time
from ingest.loader import load_spool
from ledger.config import spool_dir
from ledger.connect import open_ledger
import pricing
pricing.install()
conn = open_ledger(sys.argv[1])
t0 = time.perf_counter()
result = load_spool(conn, spool_dir(sys.argv[1]), keep=True)
took = time.perf_counter() - t0
conn.close()
print(took, result.inserted)
"""


def _load_once(segments: Path, work: Path) -> float:
    """``load_spool`` of a copy of ``segments`` into a fresh ledger, in a child process (as
    ``callmeter load`` runs it, start-up apart); its own seconds."""
    from ledger.config import spool_dir

    shutil.rmtree(work, ignore_errors=True)
    db = work / "ledger.duckdb"
    spool = spool_dir(str(db))
    spool.mkdir(parents=True)
    for p in segments.iterdir():
        os.link(p, spool / p.name)  # hard links: --keep moves them, the sources stay
    env = dict(os.environ, CALLMETER_SECRET_FILE=str(work / "secret"))
    out = subprocess.run([sys.executable, "-c", LOAD_IN_CHILD, str(db)], capture_output=True,
                         text=True, cwd=ROOT, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1].split()[0])  # after the progress bar


def _read_json_once(segments: Path, work: Path) -> None:
    """The limit: DuckDB's own JSON reader, the same segments, the same columns, into a table
    of a file database (no normalising, no ids, no pricing, no dedupe)."""
    from ledger.schema import duckdb_columns_struct

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    files = sorted(str(p) for p in segments.iterdir())
    with duckdb.connect(str(work / "limit.duckdb")) as conn:
        conn.execute(f"CREATE TABLE t AS SELECT * FROM read_json({files!r}, "
                     f"format='newline_delimited', columns={duckdb_columns_struct()})")


def measure(rows: int, rounds: int) -> tuple[float, float]:
    """(load seconds, limit seconds) for ``rows`` records, best of ``rounds`` each."""
    with tempfile.TemporaryDirectory(prefix="bench-load-ratio-") as tmp:
        segments = Path(tmp) / "segments"
        write_segments(segments, rows, 0)
        mine, limit = best_of(rounds, lambda: _load_once(segments, Path(tmp) / "a"),
                              lambda: _read_json_once(segments, Path(tmp) / "b"))
    return mine, limit


def limit_ratio(rows: int, rounds: int) -> dict:
    """``load`` of ``rows`` records ÷ DuckDB ``read_json`` of the same segments into a table."""
    mine, limit = measure(rows, rounds)
    return ratio_row(f"load {rows / 1e6:g}M records", mine, limit, GOAL_RATIO,
                     "DuckDB read_json into a table", rows=rows) | {"rounds": rounds}


def run(quick: bool) -> dict:
    figures = limit_ratio(RATIO_ROWS_QUICK if quick else RATIO_ROWS, 1 if quick else 3)
    figures.update(_steady_state(quick))
    if not quick:
        curve = scaling(measure, SCALING_ROWS)
        figures["scaling (rows: callmeter s / limit s)"] = curve
        figures["scaling chart"] = chart("load", "records", curve)
    figures["load average"] = load_average()
    return figures


def _steady_state(quick: bool) -> dict:
    """Two loads as a user runs them (``callmeter load``, start-up included): into an empty
    ledger, then into the ledger holding the first batch (the anti-join's steady state)."""
    from ledger.config import spool_dir

    rows = QUICK_ROWS if quick else FULL_ROWS
    half = rows // 2
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        db = Path(tmp) / "ledger.duckdb"
        spool = spool_dir(str(db))
        write_segments(spool, half, 0)
        first, out1 = time_load(db)
        write_segments(spool, half, half)
        second, out2 = time_load(db)
        with duckdb.connect(str(db), read_only=True) as conn:
            in_ledger = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    rate1, rate2 = half / first, half / second
    return {
        "rows per load": half,
        "into empty ledger: seconds / rows/s": f"{first:.2f} / {rate1:,.0f}",
        "into ledger holding the first batch: seconds / rows/s": f"{second:.2f} / {rate2:,.0f}",
        "4. callmeter load rows/s, slower of the two (≥ 500k)": round(min(rate1, rate2)),
        "4. met": "yes" if min(rate1, rate2) >= 500_000 and in_ledger == rows else "NO",
        "rows in ledger after both (expected)": f"{in_ledger} ({rows})",
        "load output": next((line for line in (out2 + "\n" + out1).splitlines()
                             if line.startswith("loaded")), out2),
    }


def profile(rows: int = 1_000_000, sheet: bool = False) -> dict:
    """Where ``load`` spends its time, step by step in-process (``--profile [--sheet]``), beside
    the limit: DuckDB's JSON reader into a table; the same through the normalising select;
    ``load``'s insert (priced when a sheet is loaded), its repeat check, the commit and the
    rollup append that follows. Wall and CPU seconds (the machine is shared)."""
    from ingest.loader import finished_segments, segments_sql
    from ledger import CALL_COLUMNS, calls_added, hooks
    from ledger.config import spool_dir
    from ledger.connect import open_ledger
    from ledger.insert import REPEATS_SQL
    from ledger.schema import duckdb_columns_struct
    from pricing import load_prices

    out: dict[str, str] = {}

    def step(name: str, work: Callable[[], object]) -> object:
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        out[f"{name} (wall / CPU s)"] = (f"{time.perf_counter() - wall:.2f} / "
                                         f"{time.process_time() - cpu:.2f}")
        return result

    cols = ", ".join(CALL_COLUMNS)
    with tempfile.TemporaryDirectory(prefix="bench-load-profile-") as tmp:
        db = str(Path(tmp) / "ledger.duckdb")
        write_segments(spool_dir(db), rows, 0)
        paths = finished_segments(spool_dir(db))
        sql = segments_sql(paths)
        with duckdb.connect(str(Path(tmp) / "limit.duckdb")) as lim:
            step("limit: read_json into a table", lambda: lim.execute(
                f"CREATE TABLE t AS SELECT * FROM read_json({[str(p) for p in paths]!r}, "
                f"format='newline_delimited', columns={duckdb_columns_struct()})"))
            step("read_json + normalise into a table",
                 lambda: lim.execute(f"CREATE TABLE n AS {sql}"))
        conn = open_ledger(db)
        if sheet:
            load_prices(conn, ROOT / "data" / "prices.csv")
        conn.execute("BEGIN TRANSACTION")
        last = {"last": conn.execute("SELECT coalesce(max(rowid), -1) FROM calls").fetchone()[0]}
        insert = hooks.insert_sql(f"SELECT {cols} FROM ({sql}) src", cols, conn)
        step("load: insert" + (" (priced)" if sheet else " (no sheet)"),
             lambda: conn.execute(insert).fetchall())
        step("load: repeat check", lambda: conn.execute(REPEATS_SQL, last).fetchall())
        step("load: commit", lambda: conn.execute("COMMIT"))
        step("load: rollup append (pricing.rollup, after the load)", lambda: calls_added(conn))
        conn.close()
    return out


if __name__ == "__main__":
    import json

    if "--profile" in sys.argv:
        print(json.dumps(profile(sheet="--sheet" in sys.argv), indent=2))
    else:
        print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
