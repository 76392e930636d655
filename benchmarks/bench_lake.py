"""Benchmark: three writers loading into one DuckLake lake at once, and the overview query there.

Starts a throwaway PostgreSQL cluster (tests/lake/pgcluster.py). Each writer is a process with
its own spool folder (segments written beforehand with DuckDB, as a proxy would leave them)
loading through ``load_spool`` — the production path, under the lake's writer lock. The same
segments are then loaded one folder after another into an embedded file, the one-owner path.
Then ``n_overview`` calls are generated into both targets and the dashboard's overview query
(cost, calls and tokens by day × model over ``priced_calls``) is timed on each.

``run(quick)``: quick = 3 × 10k calls and a 100k-call overview; full = 3 × 1M and 30M.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "lake"))

from pgcluster import missing_reason, start_cluster  # noqa: E402

WRITERS = 3
SEGMENT_ROWS = 50_000

SEGMENT_SQL = """
COPY (
  SELECT 'w{w}-' || i AS call_id, 'proxy' AS source,
    TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_seconds(i % 31536000) AS started_at,
    ['gpt-4o', 'gpt-4o-c', 'gpt-4o-mini', 'claude-sonnet-4'][1 + i % 4] AS model,
    'k1:' || (i % 300) AS key_id, 'chat' AS endpoint, 200 AS status,
    100 + i % 4000 AS input_tokens, i % 500 AS output_tokens, '0.001' AS charged
  FROM range({start}, {stop}) t(i)
) TO '{path}' (FORMAT json)
"""

OVERVIEW_SQL = """
SELECT CAST(started_at AT TIME ZONE 'UTC' AS DATE) AS day, model, sum(requests) AS calls,
  sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cost) AS cost,
  count(*) - count(cost) AS unpriced
FROM priced_calls WHERE started_at >= TIMESTAMPTZ '2025-01-01 00:00:00+00'
GROUP BY ALL ORDER BY day, model
"""

PRICES_SQL = """
INSERT INTO prices (model, effective_from, input, cached_input, output, request)
VALUES ('gpt-4o', DATE '2024-01-01', 2.5, 1.25, 10, NULL),
       ('gpt-4o-c', DATE '2024-01-01', NULL, NULL, NULL, 0.01),
       ('gpt-4o-mini', DATE '2024-01-01', 0.15, 0.075, 0.6, NULL)
"""

LOADER = """
import sys
import pricing
from ledger.connect import open_ledger
pricing.install()
from ingest.loader import load_spool
conn = open_ledger(sys.argv[1])
print(load_spool(conn, sys.argv[2], keep=True).inserted)
"""


def _spools(folder: Path, per_writer: int) -> list[Path]:
    out = []
    con = duckdb.connect()
    for w in range(WRITERS):
        spool = folder / f"spool-{w}"
        spool.mkdir()
        for n, start in enumerate(range(0, per_writer, SEGMENT_ROWS)):
            stop = min(start + SEGMENT_ROWS, per_writer)
            path = spool / f"20250101T000000000000-{w}-{n:06d}.jsonl"
            con.execute(SEGMENT_SQL.format(w=w, start=start, stop=stop, path=path))
        out.append(spool)
    con.close()
    return out


def _concurrent_load(db: str, spools: list[Path]) -> tuple[float, list[int]]:
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", LOADER, db, str(s)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for s in spools]
    counts = [int(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError("a lake loader failed")
    return time.perf_counter() - t0, counts


def _restore(spools: list[Path]) -> None:
    for s in spools:
        for seg in (s / "loaded").glob("*.jsonl"):
            seg.rename(s / seg.name)


def _serial_load(db: str, spools: list[Path]) -> float:
    from ingest.loader import load_spool
    from ledger.connect import open_ledger

    t0 = time.perf_counter()
    conn = open_ledger(db)
    for s in spools:
        load_spool(conn, s, keep=True)
    conn.close()
    return time.perf_counter() - t0


def _overview(conn, n: int) -> float:
    from ingest.normalise import normalised_select
    from ledger import insert_new_calls
    from ledger.schema import CALL_COLUMNS

    given = {"call_id": "'o-' || i", "source": "'demo'", "model": "['gpt-4o', 'gpt-4o-c', "
             "'gpt-4o-mini', 'claude-sonnet-4'][1 + i % 4]",
             "started_at": "TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_seconds(i % 31536000)",
             "input_tokens": "100 + i % 4000", "output_tokens": "i % 500"}
    cols = ", ".join(f"{given.get(c, 'NULL')} AS {c}" for c in CALL_COLUMNS)
    conn.execute("BEGIN TRANSACTION")
    insert_new_calls(conn, normalised_select(f"SELECT {cols} FROM range({n}) t(i)"))
    conn.execute(PRICES_SQL)
    conn.execute("COMMIT")
    conn.execute(OVERVIEW_SQL).fetchall()  # warm (extension, metadata caches)
    t0 = time.perf_counter()
    conn.execute(OVERVIEW_SQL).fetchall()
    return time.perf_counter() - t0


def run(quick: bool = True) -> dict:
    reason = missing_reason()
    if reason:
        return {"skipped": reason}
    from ledger.connect import open_ledger

    per_writer, n_overview = (10_000, 100_000) if quick else (1_000_000, 30_000_000)
    cluster = start_cluster()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-lake-") as tmp:
            folder = Path(tmp)
            spools = _spools(folder, per_writer)
            lake = cluster.lake_target(cluster.create_database())
            open_ledger(lake, data_path=str(folder / "lake")).close()
            lake_s, counts = _concurrent_load(lake, spools)
            _restore(spools)
            file_db = str(folder / "ledger.duckdb")
            file_s = _serial_load(file_db, spools)
            total = WRITERS * per_writer
            lake2 = cluster.lake_target(cluster.create_database())
            on_lake = open_ledger(lake2, data_path=str(folder / "lake2"))
            lake_q = _overview(on_lake, n_overview)
            on_lake.close()
            on_file = open_ledger(str(folder / "overview.duckdb"))
            file_q = _overview(on_file, n_overview)
            on_file.close()
    finally:
        cluster.stop()
    return {
        "writers": WRITERS,
        "calls_per_writer": per_writer,
        "lake_calls_inserted": sum(counts),
        "lake_concurrent_load_s": lake_s,
        "lake_calls_per_s": total / lake_s,
        "file_serial_load_s": file_s,
        "file_calls_per_s": total / file_s,
        "overview_calls": n_overview,
        "overview_lake_s": lake_q,
        "overview_file_s": file_q,
        "overview_lake_over_file": lake_q / file_q,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--full" not in sys.argv), indent=2))
