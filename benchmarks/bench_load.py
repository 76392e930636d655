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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
SEGMENT_ROWS = 200_000
FULL_ROWS = 5_000_000
QUICK_ROWS = 600_000

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


def run(quick: bool) -> dict:
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


def profile(rows: int = 1_000_000) -> dict:
    """Where ``load`` spends its time, step by step in-process (``--profile``): DuckDB's JSON
    reader, the normalising select, the in-batch dedupe (QUALIFY row_number), the anti-join."""
    from ingest.loader import finished_segments, segments_sql
    from ledger.config import spool_dir
    from ledger.connect import open_ledger
    from ledger.schema import CALL_COLUMNS

    cols = ", ".join(CALL_COLUMNS)
    steps = {
        "read_json (count through the normalising select)": "SELECT count(*) FROM ({raw})",
        "read_json + normalise (materialised)": "CREATE OR REPLACE TEMP TABLE src AS {sql}",
        "anti-join + QUALIFY row_number dedupe": (
            f"CREATE OR REPLACE TEMP TABLE o AS SELECT {cols} FROM src WHERE NOT EXISTS "
            "(SELECT 1 FROM calls c WHERE c.call_id = src.call_id) "
            "QUALIFY row_number() OVER (PARTITION BY src.call_id) = 1"),
        "anti-join without in-batch dedupe": (
            f"CREATE OR REPLACE TEMP TABLE o AS SELECT {cols} FROM src WHERE NOT EXISTS "
            "(SELECT 1 FROM calls c WHERE c.call_id = src.call_id)"),
        "insert into calls": f"INSERT INTO calls ({cols}) SELECT {cols} FROM o",
    }
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-load-profile-") as tmp:
        db = str(Path(tmp) / "ledger.duckdb")
        write_segments(spool_dir(db), rows, 0)
        conn = open_ledger(db)
        sql = segments_sql(finished_segments(spool_dir(db)))
        raw = sql  # the reader is the innermost part of the normalised select
        for name, step in steps.items():
            start = time.perf_counter()
            conn.execute(step.format(sql=sql, raw=raw))
            out[f"{name}, s for {rows:,} rows"] = round(time.perf_counter() - start, 2)
        conn.close()
    return out


if __name__ == "__main__":
    import json

    if "--profile" in sys.argv:
        print(json.dumps(profile(), indent=2))
    else:
        print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
