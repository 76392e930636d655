"""The progress runner behind the CLI's import bar and the Data page's: it must move.

DuckDB reports a statement's progress only while its progress bar is enabled; without it the
bars sat at 0 % and jumped to 100 % (issue 17, bug 10). A real import of a real file through
``ingest.imports.import_paths`` must report values strictly between 0 and 100 before 100.
"""

from __future__ import annotations

import csv

import duckdb

from ingest.importers import ImportOptions
from ingest.imports import import_paths
from ingest.progress import run_reporting_progress


def test_a_long_scan_reports_progress_between_0_and_100(tmp_path):
    conn = duckdb.connect()
    conn.execute(f"COPY (SELECT range AS a, 'x' || range AS b FROM range(3000000)) "
                 f"TO '{tmp_path / 'big.csv'}'")
    seen: list[float] = []
    run_reporting_progress(conn, lambda: conn.execute(
        f"CREATE TABLE t AS SELECT * FROM read_csv('{tmp_path / 'big.csv'}')"), seen.append,
        every=0.02)
    assert seen[-1] == 100.0
    assert any(0 < p < 100 for p in seen[:-1]), seen
    assert seen[:-1] == sorted(seen[:-1])
    # the connection's own settings are left as they were
    assert conn.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False


def test_an_import_reports_moving_progress_and_records_the_given_name(tmp_path):
    file = tmp_path / "tmpXYZ-upload.csv"
    with file.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["started_at", "key_label", "model", "input_tokens", "output_tokens",
                    "status"])
        for i in range(400_000):
            w.writerow([f"2025-03-{1 + i % 28:02d}T10:{i % 60:02d}:{i % 59:02d}Z",
                        f"team-{i % 7}", "gpt-4o-mini", 100 + i % 900, 20 + i % 50, 200])
    seen: list[float] = []

    def around(conn, _label, work):
        return run_reporting_progress(conn, work, seen.append, every=0.02)

    db = str(tmp_path / "ledger.duckdb")
    results, _ = import_paths(db, [file], "csv", ImportOptions(source_name="march.csv"),
                              around=around)
    assert results[0].read == 400_000 and results[0].file == "march.csv"
    assert any(0 < p < 100 for p in seen[:-1]), seen
    logged = duckdb.connect(db).execute("SELECT file FROM imports").fetchall()
    assert logged == [("march.csv",)]
