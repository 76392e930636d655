"""new-api / one-api console logs: API pages and CSV, skipped types, money, quirks, idempotence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from importers_helpers import ROOT, calls, rows, run_import, sample

from ingest.errors import CallmeterError
from ingest.importers.newapi import charged_sql


def test_api_page_maps_calls_skips_non_calls_and_dedupes(tmp_path):
    db = tmp_path / "l.duckdb"
    res = run_import(db, sample("newapi-log-page.json", tmp_path))
    assert res.format == "newapi"
    # 9 items: 3 non-call types, 6 calls of which the last repeats the first
    assert (res.read, res.skipped, res.rejected, res.imported, res.duplicates) == (9, 3, 0, 5, 1)
    assert res.skipped_by == {"type 1 top-up": 1, "type 3 manage": 1, "type 6 refund": 1}
    got = calls(db, "model, billing_mode, status, input_tokens, cached_tokens, output_tokens, "
                    "ttft_ms, latency_ms, key_label, endpoint, charged")
    assert got == [
        ("gpt-4o", "token", 200, 1200, 1024, 212, 812, 3000, "研发-张三", "chat",
         Decimal("0.01025")),                                   # 5125 / 500000
        ("gemini-2.5-pro-c", "request", 200, 5300, 0, 890, None, 14000, "研发-张三", "chat",
         Decimal("0.02")),                                      # frt -1000 means unknown
        ("claude-sonnet-4", "token", 429, 0, 0, 0, None, 1000, "bot-客服", "chat", Decimal(0)),
        ("text-embedding-3-small", "token", 200, 2000, 0, 0, None, 0, "bot-客服",
         "embeddings", Decimal("0.00004")),
        ("deepseek-r1", "token", 500, 0, 0, 0, None, 30000, "研发-张三", "chat", Decimal(0)),
    ]
    keys = rows(db, "SELECT DISTINCT key_id FROM calls ORDER BY 1")
    assert len(keys) == 2 and all(k[0].startswith("k1:") for k in keys)
    assert rows(db, "SELECT tags['user'], tags['group'] FROM calls LIMIT 1") == [
        ("alice", "default")]


def test_reimport_and_overlapping_later_export_add_only_new_rows(tmp_path):
    db = tmp_path / "l.duckdb"
    first = sample("newapi-log-page.json", tmp_path)
    run_import(db, first)
    again = run_import(db, first)
    assert (again.imported, again.duplicates) == (0, 6)
    page = json.loads(first.read_text())
    items = page["data"]["items"]
    later = dict(items[0], created_at=1740790000, quota=777, prompt_tokens=99)
    # the later export comes from the user route: ids are id % 1024 and the order differs
    page["data"]["items"] = [later] + [dict(i, id=i["id"] % 1024) for i in items[:6]]
    second = tmp_path / "later.json"
    second.write_text(json.dumps(page, ensure_ascii=False))
    res = run_import(db, second)
    assert (res.imported, res.duplicates, res.skipped) == (1, 4, 2)
    assert rows(db, "SELECT count(*), sum(charged) FROM calls") == [
        (6, Decimal("0.03029") + Decimal("0.001554"))]


def test_csv_export_rejects_bad_and_torn_rows_by_line(tmp_path):
    db = tmp_path / "l.duckdb"
    res = run_import(db, sample("newapi-usage-log.csv", tmp_path))
    assert (res.read, res.skipped, res.rejected, res.imported, res.duplicates) == (7, 1, 2, 3, 1)
    assert res.rejections[0] == (7, "field quota: 'abc' is not a whole number")
    assert res.rejections[1][0] == 8 and "cut short" in res.rejections[1][1]
    assert calls(db, "model, status, charged, tags['group']") == [
        ("gpt-4o-mini", 200, Decimal("0.00036"), "default"),
        ("gemini-2.5-pro-c", 200, Decimal("0.02"), "vip"),
        ("gpt-4o", 401, Decimal(0), "default"),
    ]


def test_one_api_audio_and_image_rows_are_not_read_as_tokens(tmp_path):
    db = tmp_path / "l.duckdb"
    res = run_import(db, sample("oneapi-log-page.json", tmp_path))
    assert (res.read, res.imported, res.skipped) == (5, 4, 1)
    assert calls(db, "model, endpoint, latency_ms, input_tokens, images, usage_source, "
                     "usage_flag, charged") == [
        ("gpt-4o", "chat", 2300, 1000, 0, "reported", None, Decimal("0.0075")),
        ("tts-1", "speech", 900, 0, 0, "none", "audio_quota_in_tokens", Decimal("0.0045")),
        ("whisper-1", "transcriptions", 4100, 0, 0, "none", "audio_quota_in_tokens",
         Decimal("0.003")),
        ("dall-e-3", "images", 11000, 0, 1, "estimated", "images_assumed_1", Decimal("0.04")),
    ]


def test_quota_per_usd_is_exact_decimal_for_any_rate(tmp_path):
    import duckdb

    conn = duckdb.connect()
    for quota, per_usd, expected in [(5125, 500_000, "0.01025"), (1, 300_000, "0.000003333333"),
                                     (2, 3, "0.666666666667")]:
        value, typ = conn.execute(f"SELECT CAST({charged_sql(str(quota), per_usd)} AS "
                                  f"DECIMAL(38,12)), typeof({charged_sql(str(quota), per_usd)})"
                                  ).fetchone()
        assert value == Decimal(expected) and typ.startswith("DECIMAL")
    db = tmp_path / "l.duckdb"
    run_import(db, sample("newapi-log-page.json", tmp_path), quota_per_usd=1_000_000)
    assert rows(db, "SELECT sum(charged) FROM calls") == [(Decimal("0.015145"),)]


def test_cli_import_prints_the_summary(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMETER_")}
    env["PYTHONPATH"] = str(ROOT)
    db = tmp_path / "l.duckdb"
    src = sample("newapi-log-page.json", tmp_path)
    done = subprocess.run([sys.executable, "-m", "callmeter.cli", "import", str(src),
                           "--db", str(db)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "[newapi]: read 9, imported 5, duplicate 1, skipped 3, rejected 0" in done.stdout
    assert "type 1 top-up 1" in done.stdout


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_corruption_never_crashes_nor_invents_rows(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("fuzz")
    name = data.draw(st.sampled_from(["newapi-log-page.json", "newapi-usage-log.csv",
                                      "oneapi-log-page.json"]))
    raw = bytearray(sample(name, tmp).read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "dup", "insert"]))
        pos = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[pos:]
        elif op == "dup":
            raw[pos:pos] = raw[pos:pos + data.draw(st.integers(1, 80))]
        else:
            raw[pos:pos] = data.draw(st.binary(max_size=12))
    bad = tmp / name
    bad.write_bytes(bytes(raw))
    db = tmp / "l.duckdb"
    try:
        res = run_import(db, bad, "newapi")
    except (CallmeterError, UnicodeError, OSError) as exc:  # a clean, named refusal is fine
        assert str(exc)
        return
    except Exception as exc:  # DuckDB's own parse errors reach the CLI as "cannot be read"
        import duckdb

        assert isinstance(exc, duckdb.Error), repr(exc)
        return
    assert res.imported <= res.read
    text = bad.read_bytes().decode("utf-8", errors="replace")
    for model, in rows(db, "SELECT DISTINCT model FROM calls"):
        assert model in text  # every imported model name is literally in the file


@pytest.mark.slow
def test_benchmark_quick_runs():
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_import import run

    out = run(quick=True)
    assert out["rows"] == 200_000 and "imported" in out["summary"]
