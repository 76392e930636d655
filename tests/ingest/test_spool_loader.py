"""The spool: segments rotate, `load` is idempotent, crashes and a held ledger lose nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ingest.loader import load_spool
from ledger.config import spool_dir
from ledger.connect import open_ledger
from ledger.spool import SpoolWriter

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMETER_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "callmeter.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def record(i: int, **extra) -> dict:
    out = {"call_id": f"req-{i}", "source": "proxy",
           "started_at": f"2025-03-01T10:00:{i % 60:02d}+02:00", "model": "gpt-4o",
           "endpoint": "chat", "input_tokens": 100 + i, "output_tokens": 10, "status": 200}
    out.update(extra)
    return out


def segments(folder: Path, suffix: str = ".jsonl") -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(suffix))


def test_writer_starts_a_new_segment_when_the_size_limit_is_reached(tmp_path):
    writer = SpoolWriter(tmp_path, max_bytes=1000, max_seconds=3600)
    for i in range(50):
        assert writer.append(record(i))
    writer.close()
    closed = segments(tmp_path)
    assert len(closed) >= 5 and not segments(tmp_path, ".open")
    lines = [json.loads(line) for p in closed for line in p.read_text().splitlines()]
    assert [r["call_id"] for r in lines] == [f"req-{i}" for i in range(50)]
    assert all(p.stat().st_size < 1000 + 300 for p in closed)  # a limit, plus one last record
    assert writer.health.records_written == 50 and writer.health.recording


def test_writer_closes_an_old_segment_on_the_next_write_or_when_asked(tmp_path):
    writer = SpoolWriter(tmp_path, max_seconds=0.2)
    writer.append(record(1))
    assert len(segments(tmp_path, ".open")) == 1 and not segments(tmp_path)
    time.sleep(0.3)
    writer.append(record(2))  # the first segment is due: closed, a new one opened
    assert len(segments(tmp_path)) == 1 and len(segments(tmp_path, ".open")) == 1
    time.sleep(0.3)
    writer.rotate_if_due()  # an idle writer still hands its calls over
    assert len(segments(tmp_path)) == 2 and not segments(tmp_path, ".open")


def test_load_twice_inserts_each_call_once_with_exact_values(tmp_path):
    conn = open_ledger(str(tmp_path / "l.duckdb"))
    spool = tmp_path / "spool"
    writer = SpoolWriter(spool)
    writer.append(record(1, charged=Decimal("0.000123456789"), tags={"team": "search"}))
    writer.append(record(2, model="gemini-2.5-pro-c", stream=True, ttft_ms=120))
    writer.append({"started_at": "2025-03-01T00:00:00Z", "model": "whisper-1",
                   "endpoint": "transcriptions", "audio_seconds": 61.5, "source": "proxy"})
    writer.close()

    first = load_spool(conn, spool)
    assert (first.segments, first.rows, first.inserted, first.duplicates) == (1, 3, 3, 0)
    assert not segments(spool)  # retired only after the commit

    writer = SpoolWriter(spool)  # the same calls delivered again (e.g. a replayed segment)
    writer.append(record(1, charged=Decimal("0.000123456789"), tags={"team": "search"}))
    writer.append(record(2, model="gemini-2.5-pro-c", stream=True, ttft_ms=120))
    writer.close()
    again = load_spool(conn, spool)
    assert (again.rows, again.inserted, again.duplicates) == (2, 0, 2)
    assert load_spool(conn, spool).segments == 0

    rows = conn.execute(
        "SELECT call_id, started_at, base_model, billing_mode, stream, requests, charged, "
        "tags['team'], audio_seconds FROM calls ORDER BY started_at").fetchall()
    assert len(rows) == 3
    whisper, one, two = rows
    assert whisper[0].startswith("h1:") and whisper[8] == 61.5
    assert one[0] == "req-1"
    assert one[1] == datetime(2025, 3, 1, 8, 0, 1, tzinfo=UTC)  # +02:00 stored as UTC
    assert one[6] == Decimal("0.000123456789") and one[7] == "search"
    assert one[2:6] == ("gpt-4o", "token", False, 1)
    assert two[2:6] == ("gemini-2.5-pro", "request", True, 1)
    conn.close()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_segment_torn_by_a_crash_loads_every_complete_line_and_reports_the_rest(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    lines = [json.dumps(record(i)) for i in range(3)]
    torn = spool / f"20250301T100000000000-{dead_pid()}-000001.jsonl.open"
    torn.write_text("\n".join(lines) + "\n" + lines[0][:25])  # kill -9 mid-write
    live = spool / f"20250301T100000000000-{os.getpid()}-000001.jsonl.open"
    live.write_text(json.dumps(record(9)) + "\n")  # a writer still running: left alone

    conn = open_ledger(str(tmp_path / "l.duckdb"))
    result = load_spool(conn, spool)
    assert result.inserted == 3
    assert len(result.set_aside) == 1
    assert "half a last line (25 bytes)" in result.set_aside[0]
    assert (spool / "torn" / (torn.name + ".tail")).read_text() == lines[0][:25]
    assert conn.execute("SELECT list(call_id ORDER BY call_id) FROM calls").fetchone()[0] == [
        "req-0", "req-1", "req-2"]
    assert live.exists()
    assert load_spool(conn, spool).inserted == 0  # and nothing twice
    conn.close()


HOLDER = """
import duckdb, sys, time
conn = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(120)
"""


def test_a_held_ledger_is_named_and_imports_reach_it_through_the_spool_exactly_once(tmp_path):
    db = tmp_path / "l.duckdb"
    open_ledger(str(db)).close()
    csv_file = tmp_path / "calls.csv"
    csv_file.write_text("started_at,model,input_tokens,output_tokens,key_label\n"
                        "2025-03-01T10:00:00Z,gpt-4o,100,10,a\n"
                        "2025-03-01T10:00:01Z,gpt-4o-c,200,20,b\n")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        began = time.monotonic()
        done = run_cli("load", "--db", str(db), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"process {holder.pid}" in done.stdout
        assert time.monotonic() - began < 30  # says so, never waits for the holder

        done = run_cli("import", str(csv_file), "--db", str(db), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"process {holder.pid}" in done.stderr
        assert "queued for the ledger's owner 2" in done.stdout
        assert len(segments(spool_dir(str(db)))) == 1
    finally:
        holder.kill()
        holder.wait()

    done = run_cli("load", "--db", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 new" in done.stdout
    done = run_cli("load", "--db", str(db), cwd=tmp_path)
    assert "loaded 0 segment(s)" in done.stdout
    conn = duckdb.connect(str(db), read_only=True)
    assert conn.execute("SELECT list(model ORDER BY started_at), count(DISTINCT call_id) "
                        "FROM calls").fetchone() == (["gpt-4o", "gpt-4o-c"], 2)
    conn.close()


HOLD_AS = """
import duckdb, sys, time
conn = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("holding", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("mode, argv, says, never", [
    ("ro", [], ["open read-only", "a read-only holder never loads the spool",
                "until `callmeter load` runs"], ["read-write", "loads the spool by itself"]),
    ("rw", ["callmeter.cli", "import"], ["open read-write", "(callmeter import)",
                                         "does not load segments written after it started",
                                         "run `callmeter load` again"],
     ["read-only", "loads the spool by itself"]),
    ("rw", ["callmeter.cli", "dashboard"], ["open read-write", "(callmeter dashboard)",
                                            "loads the spool by itself"], ["read-only"]),
], ids=["notebook-read-only", "another-import", "dashboard"])
def test_the_owner_message_says_what_will_happen_to_the_spool(tmp_path, mode, argv, says,
                                                              never):
    """A notebook reading the ledger holds it read-only and never loads the spool; another
    `import` exits without loading it; only a dashboard loads it by itself."""
    db = tmp_path / "l.duckdb"
    open_ledger(str(db)).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_AS, str(db), mode, *argv],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        done = run_cli("load", "--db", str(db), cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    for phrase in says:
        assert phrase in text, text
    for phrase in never:
        assert phrase not in text, text
