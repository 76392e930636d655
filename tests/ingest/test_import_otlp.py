"""Issue 19, point 2: `callmeter import --format otlp` for OTLP/JSON trace files.

``data/samples/otlp-traces.jsonl`` was written by the SDK's OTLP/JSON file exporter
(opentelemetry-exporter-otlp-json-file 0.66b1, the Collector file exporter's line format) for the
test app of tests/otel_sender.py: its scenario once under OpenLLMetry, once under openai-v2.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import httpx
from otel_helpers import OtelServer
from otlp_requests import chat, otlp_json, request, span

from ingest.importers import FORMATS
from ingest.importers.base import detect_format

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "samples" / "otlp-traces.jsonl"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callmeter.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def rows(db: Path, sql: str) -> list[tuple]:
    import duckdb

    conn = duckdb.connect(str(db), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_sample_imports_once_with_the_stand_in_tokens(tmp_path):
    db = tmp_path / "l.duckdb"
    assert detect_format(SAMPLE, FORMATS).NAME == "otlp"
    first = cli("import", str(SAMPLE), "--db", str(db))
    assert first.returncode == 0, first.stderr
    assert "[otlp]: read 18, imported 16, duplicate 0, skipped 2, rejected 0" in first.stdout
    again = cli("import", str(SAMPLE), "--db", str(db))
    assert "imported 0, duplicate 16" in again.stdout
    got = rows(db, "SELECT model, sum(input_tokens), sum(output_tokens), count(*) FROM calls "
                   "WHERE source = 'otel' GROUP BY model ORDER BY model")
    assert got == [("gemini-2.5-pro-c", 6000, 8, 2), ("gpt-4o", 240, 10, 6),
                   ("gpt-4o-c", 1800, 600, 2), ("gpt-4o-mini", 100, 14, 2),
                   ("o4-mini", 128, 80, 2), ("text-embedding-3-small", 30, 0, 2)]
    statuses = rows(db, "SELECT status, count(*) FROM calls GROUP BY 1 ORDER BY 1")
    assert statuses == [(200, 14), (429, 2)]


def test_gzip_bad_lines_and_other_signals(tmp_path):
    good = request([span(chat(inp=33))])
    no_model = request([span({"gen_ai.usage.input_tokens": 5, "gen_ai.operation.name": "chat"})])
    text = "\n".join([json.dumps(otlp_json(good)), "{torn line", '{"resourceMetrics": []}',
                      json.dumps(otlp_json(no_model)), ""])
    path = tmp_path / "traces.jsonl.gz"
    path.write_bytes(gzip.compress(text.encode()))
    db = tmp_path / "l.duckdb"
    out = cli("import", str(path), "--db", str(db))
    assert out.returncode == 0, out.stderr
    assert "read 4, imported 1, duplicate 0, skipped 1, rejected 2" in out.stdout
    assert f"rejected {path}:2: not JSON" in out.stdout
    assert f"rejected {path}:4: span " in out.stdout and "without a model" in out.stdout
    assert rows(db, "SELECT input_tokens FROM calls") == [(33,)]


def test_file_and_receiver_agree_on_ids(tmp_path):
    """Spans received live and then imported from the Collector's file are one call each."""
    db = tmp_path / "l.duckdb"
    req = request([span(chat(inp=i + 1)) for i in range(3)])
    with OtelServer(db) as otel:
        r = httpx.post(otel.traces_url, content=req.SerializeToString(),
                       headers={"content-type": "application/x-protobuf"})
        assert r.status_code == 200
        otel.rows()
    path = tmp_path / "collector.json"
    path.write_text(json.dumps(otlp_json(req), indent=2))  # one pretty-printed document
    out = cli("import", str(path), "--format", "otlp", "--db", str(db))
    assert "read 3, imported 0, duplicate 3" in out.stdout, out.stdout + out.stderr
