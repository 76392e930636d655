"""`callmeter import --format csv`: defaults, bad rows reported by line, re-import is a no-op."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]

GOOD_AND_BAD = """\
started_at,model,endpoint,input_tokens,cached_tokens,output_tokens,status,charged,tags
2025-03-01T10:00:00Z,gpt-4o,chat,1000,200,50,200,0.0041,team=search
yesterday-ish,gpt-4o,chat,10,0,1,200,,
2025-03-01T10:00:02+01:00,gpt-4o-c,chat,500,0,20,200,0.01,"team=support,app=bot"
2025-03-01T10:00:03Z,gpt-4o,chat,-5,0,1,200,,
2025-03-01T10:00:04Z,gpt-4o,telepathy,10,0,1,200,,
2025-03-01T10:00:05Z,gpt-4o,chat,10,20,1,200,,
2025-03-01T10:00:06Z,,chat,10,0,1,200,,
2025-03-01 10:00:07,text-embedding-3-small,embeddings,300,0,0,,,
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMETER_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "callmeter.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def rejected_rows(db: Path) -> list[dict]:
    folder = db.with_name(db.stem + ".rejected")
    files = sorted(folder.iterdir())
    with files[-1].open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_bad_rows_are_listed_by_line_and_the_good_rows_go_in(tmp_path):
    src = tmp_path / "export.csv"
    src.write_text(GOOD_AND_BAD)
    db = tmp_path / "l.duckdb"
    done = run_cli("import", str(src), "--format", "csv", "--db", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "read 8, imported 3, duplicate 0, skipped 0, rejected 5" in done.stdout

    rejected = rejected_rows(db)
    assert [(r["file"], r["line"]) for r in rejected] == [(str(src), str(n))
                                                         for n in (3, 5, 6, 7, 8)]
    reasons = {int(r["line"]): r["reason"] for r in rejected}
    assert reasons[3] == "field started_at: 'yesterday-ish' is not a time"
    assert reasons[5] == "field input_tokens: '-5' is negative"
    assert "'telepathy' is not one of" in reasons[6]
    assert reasons[7] == "field cached_tokens: more than input_tokens"
    assert reasons[8].startswith("field model: missing")
    for line in (3, 5, 6, 7, 8):
        assert f"rejected {src}:{line}: {reasons[line]}" in done.stdout

    conn = duckdb.connect(str(db), read_only=True)
    rows = conn.execute(
        "SELECT started_at, model, base_model, billing_mode, endpoint, requests, status, "
        "input_tokens, cached_tokens, charged, tags, source, call_id FROM calls "
        "ORDER BY started_at").fetchall()
    conn.close()
    assert [r[:9] for r in rows] == [
        (datetime(2025, 3, 1, 9, 0, 2, tzinfo=UTC), "gpt-4o-c", "gpt-4o", "request", "chat",
         1, 200, 500, 0),
        (datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC), "gpt-4o", "gpt-4o", "token", "chat",
         1, 200, 1000, 200),
        (datetime(2025, 3, 1, 10, 0, 7, tzinfo=UTC), "text-embedding-3-small",
         "text-embedding-3-small", "token", "embeddings", 1, 200, 300, 0),
    ]
    assert [r[9] for r in rows] == [Decimal("0.01"), Decimal("0.0041"), None]
    assert rows[0][10] == {"team": "support", "app": "bot"}
    assert {r[11] for r in rows} == {"csv"}
    assert all(r[12].startswith("h1:") for r in rows)


def test_importing_the_same_file_again_changes_nothing(tmp_path):
    src = tmp_path / "export.csv"
    src.write_text(GOOD_AND_BAD)
    db = tmp_path / "l.duckdb"
    run_cli("import", str(src), "--db", str(db), cwd=tmp_path)
    conn = duckdb.connect(str(db), read_only=True)
    before = conn.execute("SELECT list(call_id ORDER BY call_id), count(*) FROM calls").fetchone()
    conn.close()

    done = run_cli("import", str(src), "--db", str(db), cwd=tmp_path)  # auto-detected: csv
    assert done.returncode == 0, done.stderr
    assert "[csv]: read 8, imported 0, duplicate 3, skipped 0, rejected 5" in done.stdout
    conn = duckdb.connect(str(db), read_only=True)
    assert conn.execute("SELECT list(call_id ORDER BY call_id), count(*) FROM calls"
                        ).fetchone() == before
    assert conn.execute("SELECT list(imported ORDER BY started_at) FROM imports"
                        ).fetchone()[0] == [3, 0]
    conn.close()


def test_timezone_option_places_times_without_an_offset(tmp_path):
    src = tmp_path / "local.csv"
    src.write_text("started_at,model\n2025-07-01 12:00:00,qwen-plus\n")
    db = tmp_path / "l.duckdb"
    done = run_cli("import", str(src), "--timezone", "Asia/Shanghai", "--db", str(db),
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    conn = duckdb.connect(str(db), read_only=True)
    assert conn.execute("SELECT started_at FROM calls").fetchone()[0] == datetime(
        2025, 7, 1, 4, 0, tzinfo=UTC)
    conn.close()


def test_exit_status_is_an_error_only_when_nothing_could_be_read(tmp_path):
    db = tmp_path / "l.duckdb"
    empty = tmp_path / "empty.csv"
    empty.write_text("started_at,model\n")
    assert run_cli("import", str(empty), "--db", str(db), cwd=tmp_path).returncode == 1
    missing = run_cli("import", str(tmp_path / "nope.csv"), "--db", str(db), cwd=tmp_path)
    assert missing.returncode == 1 and "nope.csv" in missing.stderr

    all_bad = tmp_path / "bad.csv"
    all_bad.write_text("started_at,model\nnot a time,gpt-4o\n")
    done = run_cli("import", str(all_bad), "--db", str(db), cwd=tmp_path)
    assert done.returncode == 0  # read, then rejected: reported, not a failure
    assert "read 1, imported 0, duplicate 0, skipped 0, rejected 1" in done.stdout


def test_with_a_price_sheet_a_later_row_of_an_id_never_replaces_the_first(tmp_path):
    """A re-sent export repeats some ids further down with other fields: the first row of each
    id stays, as the docs promise. The id window and pricing's joins against the sheet reorder
    rows (DuckDB 1.5.5); the rows are numbered where they are staged and go in by that number."""
    src = tmp_path / "export.csv"
    rows = 300_000
    with src.open("w", encoding="utf-8") as out:
        out.write("call_id,started_at,model,endpoint,input_tokens,output_tokens,latency_ms\n")
        line = "c{i},2025-03-{d:02d}T10:{m:02d}:00Z,gpt-4o,chat,{t},7,{lat}\n"
        replays = 0
        for i in range(rows):
            out.write(line.format(i=i, d=1 + i % 28, m=i % 60, t=100 + i, lat=40 + i % 1000))
            if i >= 2000 and i % 500 == 0:  # row i - 2000 again, re-timed
                j = i - 2000
                out.write(line.format(i=j, d=1 + j % 28, m=j % 60, t=100 + j, lat=99_999))
                replays += 1
    db = tmp_path / "l.duckdb"
    loaded = run_cli("prices", "load", str(ROOT / "data" / "prices.csv"), "--db", str(db),
                     cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    done = run_cli("import", str(src), "--format", "csv", "--db", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"imported {rows:,}".replace(",", "") in done.stdout.replace(",", "")
    assert f"duplicate {replays}" in done.stdout
    conn = duckdb.connect(str(db), read_only=True)
    assert conn.execute("SELECT count(*), count(*) FILTER (WHERE latency_ms = 99999), "
                        "count(*) FILTER (WHERE memo_cost IS NOT NULL) FROM calls"
                        ).fetchone() == (rows, 0, rows)
    # the rows went in by line: rowid order is the file's (ids c0, c1, ... in file order),
    # which the first-row rule counts on (the joins once put 27,943 rows behind later ones)
    assert conn.execute(
        "SELECT count(*) FILTER (WHERE n < before) FROM (SELECT n, lag(n) OVER (ORDER BY rowid) "
        "AS before FROM (SELECT rowid, CAST(substr(call_id, 2) AS INTEGER) AS n FROM calls))"
    ).fetchone() == (0,)
    conn.close()
