"""new-api / one-api console logs: current and older builds, calls vs adjustments, money, quirks.

The samples are built from the platforms' code (docs/samples.md names the files and
functions read); the identity of a row across routes and builds is tested against the
stand-in console in test_newapi_identity.py.
"""

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

from ingest.importers.newapi import charged_sql
from ledger.errors import CallmeterError

QPU = Decimal(500_000)


def test_current_build_page_calls_adjustments_and_skips(tmp_path):
    """A /api/log/self page of new-api 2026: position ids, request ids, tasks and a refund."""
    db = tmp_path / "l.duckdb"
    res = run_import(db, sample("newapi-log-page.json", tmp_path), quota_per_unit=QPU)
    # 11 rows: 8 calls, a refund and a task settlement (adjustments), a top-up
    assert (res.read, res.imported, res.adjustments, res.skipped, res.duplicates) == (
        11, 8, 2, 1, 0)
    assert res.skipped_by == {"type 1 top-up": 1}
    assert res.notes == []                      # the quota unit was given
    got = calls(db, "model, billing_mode, status, input_tokens, cached_tokens, output_tokens, "
                    "images, image_size, usage_source, usage_flag, charged",
                order="started_at DESC")
    assert got == [
        # 1920 quota = (1200 - 1024 + 1024 × 0.5 + 212 × 4) × 1.25
        ("gpt-4o", "token", 200, 1200, 1024, 212, 0, None, "reported", None,
         Decimal("0.00384")),
        ("gemini-2.5-pro-c", "request", 200, 5300, 0, 890, 0, None, "reported", None,
         Decimal("0.02")),
        ("claude-sonnet-4", "token", 429, 0, 0, 0, 0, None, "reported", None, Decimal(0)),
        # Claude semantics: prompt 50 excludes the 4000 cache reads and 100 cache writes
        ("claude-sonnet-4", "token", 200, 4150, 4000, 80, 0, None, "reported",
         "anthropic_usage_normalised", Decimal("0.002926")),
        # tiered_expr logs model_price 0 but bills per token
        ("gemini-3-pro", "token", 200, 3000, 0, 400, 0, None, "reported", None,
         Decimal("0.0205")),
        # prompt_tokens 1 is image_handler.go's placeholder; n = 2 from other.image_request
        ("dall-e-3", "request", 200, 0, 0, 0, 2, "1024x1024", "reported", None,
         Decimal("0.08")),
        ("text-embedding-3-small", "token", 200, 2000, 0, 0, 0, None, "reported", None,
         Decimal("0.00004")),
        ("deepseek-r1", "token", 502, 0, 0, 0, 0, None, "reported", None, Decimal(0)),
    ]
    assert rows(db, "SELECT kind, amount, model, task_id, key_label FROM adjustments "
                    "ORDER BY occurred_at") == [
        ("settlement", Decimal("0.025"), "veo-3", "task_7Hx1Lp", "研发-张三"),
        ("refund", Decimal("-0.3"), "sora-2", "task_9aK2mQ", "研发-张三"),
    ]
    # the platform's net charge for the page: consumed quota − refunded + settled
    net = rows(db, "SELECT (SELECT sum(charged) FROM calls) + (SELECT sum(amount) "
                   "FROM adjustments)")[0][0]
    page = json.loads((tmp_path / "newapi-log-page.json").read_text())["data"]["items"]
    quota = sum(r["quota"] * {2: 1, 6: -1}.get(r["type"], 0) for r in page)
    assert net == Decimal(quota) / QPU


def test_an_adjustment_is_never_a_call(tmp_path):
    db = tmp_path / "l.duckdb"
    run_import(db, sample("newapi-log-page.json", tmp_path), quota_per_unit=QPU)
    assert rows(db, "SELECT count(*) FROM calls WHERE model IN ('sora-2', 'veo-3')") == [(0,)]
    assert rows(db, "SELECT count(*), sum(requests) FROM priced_calls") == [(8, 8)]


def test_older_build_page_ids_mod_1024_and_a_repeated_row(tmp_path):
    """new-api before 2026-02: no request_id, user routes show id % 1024."""
    db = tmp_path / "l.duckdb"
    res = run_import(db, sample("newapi-log-page-2025.json", tmp_path), quota_per_unit=QPU)
    # 9 items: 2 non-call types, a refund, 6 calls of which the last repeats the first
    assert (res.read, res.skipped, res.adjustments, res.imported, res.duplicates) == (
        9, 2, 1, 5, 1)
    assert calls(db, "model, status, input_tokens, ttft_ms, latency_ms, key_label, endpoint, "
                     "charged") == [
        ("gpt-4o", 200, 1200, 812, 3000, "研发-张三", "chat", Decimal("0.01025")),
        ("gemini-2.5-pro-c", 200, 5300, None, 14000, "研发-张三", "chat", Decimal("0.02")),
        ("claude-sonnet-4", 429, 0, None, 1000, "bot-客服", "chat", Decimal(0)),
        ("text-embedding-3-small", 200, 2000, None, 0, "bot-客服", "embeddings",
         Decimal("0.00004")),
        ("deepseek-r1", 500, 0, None, 30000, "研发-张三", "chat", Decimal(0)),
    ]
    assert rows(db, "SELECT kind, amount FROM adjustments") == [("refund", Decimal("-0.003"))]
    keys = rows(db, "SELECT DISTINCT key_id FROM calls ORDER BY 1")
    assert len(keys) == 2 and all(k[0].startswith("k1:") for k in keys)
    assert rows(db, "SELECT tags['user'], tags['group'] FROM calls LIMIT 1") == [
        ("alice", "default")]


def test_reimport_and_overlapping_later_export_add_only_new_rows(tmp_path):
    db = tmp_path / "l.duckdb"
    first = sample("newapi-log-page-2025.json", tmp_path)
    run_import(db, first, quota_per_unit=QPU)
    again = run_import(db, first, quota_per_unit=QPU)
    assert (again.imported, again.adjustments, again.duplicates) == (0, 0, 7)
    page = json.loads(first.read_text())
    items = page["data"]["items"]
    later = dict(items[0], created_at=1740790000, quota=777, prompt_tokens=99)
    # the later export comes from the admin route: real ids, another order
    page["data"]["items"] = [later] + [dict(i, id=i["id"] + 4096) for i in items[:6]]
    second = tmp_path / "later.json"
    second.write_text(json.dumps(page, ensure_ascii=False))
    res = run_import(db, second, quota_per_unit=QPU)
    assert (res.imported, res.duplicates, res.skipped) == (1, 4, 2)
    assert rows(db, "SELECT count(*), sum(charged) FROM calls") == [
        (6, Decimal("0.03029") + Decimal("0.001554"))]


def test_csv_export_rejects_bad_and_torn_rows_by_line(tmp_path):
    db = tmp_path / "l.duckdb"
    res = run_import(db, sample("newapi-usage-log.csv", tmp_path), quota_per_unit=QPU)
    assert (res.read, res.skipped, res.rejected, res.imported, res.duplicates) == (7, 1, 2, 3, 1)
    assert res.rejections[0] == (7, "field quota: 'abc' is not a whole number")
    assert res.rejections[1][0] == 8 and "cut short" in res.rejections[1][1]
    assert calls(db, "model, status, charged, tags['group']") == [
        ("gpt-4o-mini", 200, Decimal("0.00036"), "default"),
        ("gemini-2.5-pro-c", 200, Decimal("0.02"), "vip"),
        ("gpt-4o", 401, Decimal(0), "default"),
    ]


def test_one_api_export_tests_audio_images_and_two_equal_calls(tmp_path):
    db = tmp_path / "l.duckdb"
    res = run_import(db, sample("oneapi-log-page.json", tmp_path), quota_per_unit=QPU)
    # one-api's type 5 is a channel test (RecordTestLog), not an error
    assert res.skipped_by == {"type 1 top-up": 1, "type 5 channel test (one-api)": 1}
    assert (res.read, res.imported, res.adjustments) == (7, 5, 0)
    assert calls(db, "model, endpoint, latency_ms, input_tokens, images, usage_source, "
                     "usage_flag, charged") == [
        # two equal calls in one second (different request ids) are two calls
        ("gpt-4o", "chat", 2300, 1000, 0, "reported", None, Decimal("0.0075")),
        ("gpt-4o", "chat", 2300, 1000, 0, "reported", None, Decimal("0.0075")),
        ("tts-1", "speech", 900, 0, 0, "none", "audio_quota_in_tokens", Decimal("0.0045")),
        ("whisper-1", "transcriptions", 4100, 0, 0, "none", "audio_quota_in_tokens",
         Decimal("0.003")),
        ("dall-e-3", "images", 11000, 0, 1, "estimated", "images_assumed_1", Decimal("0.04")),
    ]


@pytest.mark.parametrize("qpu, quota, expected", [
    (500_000, 1920, "0.00384"), (1_000_000, 1920, "0.00192"), (300_000, 1, "0.000003333333"),
    (Decimal("7.5"), 3, "0.4"), (Decimal("2.5e5"), 5, "0.00002"), (3, 2, "0.666666666667"),
])
def test_quota_per_unit_is_exact_decimal_for_any_unit(qpu, quota, expected):
    import duckdb

    conn = duckdb.connect()
    sql = charged_sql(str(quota), qpu)
    value, typ = conn.execute(f"SELECT CAST({sql} AS DECIMAL(38,12)), typeof({sql})").fetchone()
    assert value == Decimal(expected) and typ.startswith("DECIMAL")


def test_an_unknown_quota_unit_is_said_not_assumed_silently(tmp_path):
    db = tmp_path / "l.duckdb"
    res = run_import(db, sample("newapi-log-page.json", tmp_path))
    assert len(res.notes) == 1 and "500,000" in res.notes[0] and "--quota-per-unit" in \
        res.notes[0]
    other = tmp_path / "o.duckdb"
    run_import(other, sample("newapi-log-page.json", tmp_path), quota_per_unit=Decimal(10**6))
    # the calls' quota: 1920 + 10000 + 1463 + 10250 + 40000 + 20 = 63653
    assert rows(other, "SELECT sum(charged) FROM calls") == [(Decimal("0.063653"),)]


def test_cli_import_prints_the_summary_and_the_quota_note(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMETER_")}
    env["PYTHONPATH"] = str(ROOT)
    db = tmp_path / "l.duckdb"
    src = sample("newapi-log-page.json", tmp_path)
    done = subprocess.run([sys.executable, "-m", "callmeter.cli", "import", str(src),
                           "--db", str(db)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ("[newapi]: read 11, imported 8, duplicate 0, skipped 1, rejected 0, "
            "adjustments 2") in done.stdout
    assert "type 1 top-up 1" in done.stdout
    assert "note: charged = quota ÷ 500,000" in done.stdout
    again = subprocess.run([sys.executable, "-m", "callmeter.cli", "import", str(src),
                            "--db", str(tmp_path / "m.duckdb"), "--quota-per-unit", "1000000"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "note:" not in again.stdout
    bad = subprocess.run([sys.executable, "-m", "callmeter.cli", "import", str(src),
                          "--db", str(tmp_path / "n.duckdb"), "--quota-per-unit", "-5"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "positive" in bad.stderr


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_corruption_never_crashes_nor_invents_rows(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("fuzz")
    name = data.draw(st.sampled_from(["newapi-log-page.json", "newapi-log-page-2025.json",
                                      "newapi-usage-log.csv", "oneapi-log-page.json"]))
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
        res = run_import(db, bad, "newapi", quota_per_unit=QPU)
    except (CallmeterError, UnicodeError, OSError) as exc:  # a clean, named refusal is fine
        assert str(exc)
        return
    except Exception as exc:  # DuckDB's own parse errors reach the CLI as "cannot be read"
        import duckdb

        assert isinstance(exc, duckdb.Error), repr(exc)
        return
    assert res.imported + res.adjustments <= res.read
    text = bad.read_bytes().decode("utf-8", errors="replace")
    for model, in rows(db, "SELECT DISTINCT model FROM calls"):
        assert model in text  # every imported model name is literally in the file


@pytest.mark.slow
def test_benchmark_quick_runs():
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_import import one_import

    out = one_import(quick=True)
    assert out["rows"] == 200_000 and "imported" in out["summary"]


def test_rows_an_older_callmeter_imported_are_not_added_again(tmp_path):
    """Ledgers written before na2 ids hold newapi rows under na1 ids: importing or syncing the
    same rows after the upgrade must find them, not add them twice."""
    db = tmp_path / "l.duckdb"
    path = sample("newapi-log-page-2025.json", tmp_path)
    run_import(db, path, quota_per_unit=QPU)
    rows(db, "UPDATE calls SET call_id = 'na1:' || md5(call_id)")       # as the old version
    again = run_import(db, path, quota_per_unit=QPU)
    assert (again.imported, again.duplicates) == (0, 7)
    assert rows(db, "SELECT count(*), count(*) FILTER (WHERE call_id LIKE 'na1:%') "
                    "FROM calls") == [(5, 5)]


def test_older_builds_claude_flag_and_image_count_in_the_content(tmp_path):
    """Builds before 2026-03: Claude semantics said only by `claude: true` (no usage_semantic,
    PostClaudeConsumeQuota), and an image row's prompt_tokens set to n, its count in "张数 n"."""
    def row(i, model, prompt, completion, other, content=""):
        return {"id": i, "created_at": 1740787200 + i, "type": 2, "content": content,
                "username": "alice", "token_name": "lab", "token_id": 3, "model_name": model,
                "quota": 1000, "prompt_tokens": prompt, "completion_tokens": completion,
                "use_time": 1, "is_stream": False, "channel": 1, "group": "default",
                "other": json.dumps(other)}
    items = [
        row(1, "claude-3-7-sonnet", 40, 90, {"claude": True, "cache_tokens": 3000,
                                             "cache_creation_tokens": 500, "model_price": -1}),
        row(2, "dall-e-3", 3, 0, {"model_price": 0.04,
                                  "request_path": "/v1/images/generations"},
            "大小 1792x1024, 品质 hd, 张数 3"),
    ]
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"success": True, "data": {"items": items}}))
    db = tmp_path / "l.duckdb"
    run_import(db, path, quota_per_unit=QPU)
    assert calls(db, "model, input_tokens, cached_tokens, images, image_size, usage_flag") == [
        ("claude-3-7-sonnet", 3540, 3000, 0, None, "anthropic_usage_normalised"),
        ("dall-e-3", 0, 0, 3, "1792x1024", None),
    ]


def test_adjustments_reach_the_ledger_through_the_spool_when_it_is_held(tmp_path):
    from importers_helpers import held_ledger, options

    from ingest.imports import import_paths
    from ingest.loader import load_spool
    from ledger.config import spool_dir
    from ledger.connect import open_ledger

    db = tmp_path / "l.duckdb"
    open_ledger(str(db)).close()
    with held_ledger(db):
        results, locked = import_paths(str(db), [sample("newapi-log-page.json", tmp_path)],
                                       "auto", options(quota_per_unit=QPU))
    assert locked is not None and results[0].queued == 8 + 2
    conn = open_ledger(str(db))
    try:
        loaded = load_spool(conn, spool_dir(str(db)))
        assert (loaded.inserted, loaded.adjustments) == (8, 2)
        assert conn.execute("SELECT kind, amount FROM adjustments ORDER BY kind").fetchall() == [
            ("refund", Decimal("-0.3")), ("settlement", Decimal("0.025"))]
    finally:
        conn.close()
