"""The demo history: everything the pages need to show, deterministic, and fast."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ingest.demo import build_demo, made_up_key
from ingest.demo.habits import HABITS
from ledger.connect import open_ledger
from ledger.keys import KeyFingerprinter

ROOT = Path(__file__).resolve().parents[2]
END = datetime(2026, 10, 1, tzinfo=UTC)
FP = KeyFingerprinter(b"demo-test-secret")


def build(db: Path, calls: int = 30_000, seed: int = 1, days: int = 60):
    conn = open_ledger(str(db))
    result = build_demo(conn, calls=calls, days=days, seed=seed, fingerprinter=FP, end=END)
    return conn, result


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    conn, result = build(tmp_path_factory.mktemp("demo") / "l.duckdb")
    yield conn, result
    conn.close()


def one(conn, sql: str):
    return conn.execute(sql).fetchone()[0]


def test_every_endpoint_both_billing_modes_and_every_error_status(demo):
    conn, result = demo
    assert result.calls == 30_000 == one(conn, "SELECT count(*) FROM calls")
    assert one(conn, "SELECT count(DISTINCT call_id) FROM calls") == 30_000
    assert one(conn, "SELECT list(DISTINCT endpoint ORDER BY endpoint) FROM calls") == [
        "chat", "embeddings", "images", "rerank", "speech", "transcriptions"]
    assert one(conn, "SELECT list(DISTINCT billing_mode ORDER BY billing_mode) FROM calls") == [
        "request", "token"]
    assert one(conn, "SELECT list(DISTINCT status ORDER BY status) FROM calls") == [
        200, 401, 403, 429, 500, 503]
    error_share = one(conn, "SELECT avg((status >= 400)::INT) FROM calls")
    assert 0.01 < error_share < 0.07
    assert one(conn, "SELECT list(DISTINCT source) FROM calls") == ["demo"]
    for what in ("stream", "cached_tokens > 0", "reasoning_tokens > 0", "images > 0",
                 "characters > 0", "audio_seconds > 0", "usage_source = 'estimated'"):
        assert one(conn, f"SELECT count(*) FILTER (WHERE {what}) FROM calls") > 10, what


def test_keys_are_fingerprints_with_labels_tags_and_never_the_key(demo):
    conn, _ = demo
    keys = conn.execute("SELECT DISTINCT key_id, key_hint, key_label, tags FROM calls").fetchall()
    assert len(keys) == len(HABITS) == 30
    assert all(k.startswith("k1:") and h.startswith("sk-…") and len(h) == 8
               for k, h, _, _ in keys)
    labels = {label for _, _, label, _ in keys}
    assert {"客服机器人", "Zoë's laptop", "CI test bot", None} <= labels
    assert {"team": "platform", "app": "ci"} in [t for *_, t in keys]
    key = made_up_key(1, 0)
    assert FP.fingerprint(key) in {k for k, *_ in keys}
    texts = conn.execute("SELECT string_agg(DISTINCT concat_ws('|', call_id, key_id, key_hint, "
                         "key_label, usage_flag), '|') FROM calls").fetchone()[0]
    assert "sk-demo" not in texts  # the made-up keys themselves are never stored


def test_usage_follows_the_openai_meaning_and_failed_calls_have_none(demo):
    conn, _ = demo
    assert one(conn, "SELECT count(*) FROM calls WHERE cached_tokens > input_tokens "
                     "OR reasoning_tokens > output_tokens") == 0
    assert one(conn, "SELECT count(*) FROM calls WHERE status >= 400 AND (usage_source <> 'none' "
                     "OR input_tokens + output_tokens + images + characters > 0 "
                     "OR audio_seconds > 0)") == 0
    assert one(conn, "SELECT count(*) FROM calls WHERE ttft_ms IS NOT NULL "
                     "AND (NOT stream OR ttft_ms > latency_ms)") == 0
    assert one(conn, "SELECT count(*) FROM calls WHERE endpoint <> 'chat' AND stream") == 0
    assert one(conn, "SELECT count(*) FROM calls WHERE billing_mode = 'request' "
                     "AND model <> base_model || '-c'") == 0
    assert one(conn, "SELECT min(started_at) >= TIMESTAMPTZ '2026-08-02 00:00:00+00' "
                     "AND max(started_at) < TIMESTAMPTZ '2026-10-01 00:00:00+00' FROM calls")


def test_weekday_rhythm_the_leaked_key_spike_and_its_revocation(demo):
    conn, _ = demo
    weekday, weekend = conn.execute(
        "SELECT count(*) FILTER (WHERE isodow(started_at) <= 5) / 5, "
        "count(*) FILTER (WHERE isodow(started_at) > 5) / 2 "
        "FROM calls WHERE key_label = 'Support chatbot'").fetchone()
    assert weekday > 2.5 * weekend
    early, late = conn.execute(
        "SELECT count(*) FILTER (WHERE started_at < TIMESTAMPTZ '2026-09-28 00:00:00+00') / 57, "
        "count(*) FILTER (WHERE started_at >= TIMESTAMPTZ '2026-09-28 00:00:00+00') / 3 "
        "FROM calls WHERE key_label = 'Partner sandbox (old)'").fetchone()
    assert late > 15 * early
    assert conn.execute(
        "SELECT list(DISTINCT status) FROM calls WHERE key_label = 'Partner sandbox (old)' "
        "AND started_at >= TIMESTAMPTZ '2026-09-30 17:00:00+00'").fetchone()[0] == [401]


def sheet_prices() -> dict[str, dict[str, Decimal]]:
    """Latest list price per model from data/prices.csv (the base tier)."""
    out: dict[str, dict[str, Decimal]] = {}
    with (ROOT / "data" / "prices.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("above_input_tokens"):
                continue
            out[row["model"]] = {k: Decimal(v) for k, v in row.items()
                                 if k in ("input", "cached_input", "output", "request") and v}
    return out


@pytest.mark.skipif(not (ROOT / "data" / "prices.csv").exists(), reason="no price sheet yet")
def test_some_workloads_are_clearly_cheaper_on_the_other_billing_variant(demo):
    conn, _ = demo
    prices = sheet_prices()

    def per_call(label: str, model: str) -> tuple[Decimal, Decimal]:
        inp, cached, out, n = conn.execute(
            "SELECT sum(input_tokens - cached_tokens), sum(cached_tokens), sum(output_tokens), "
            "count(*) FROM calls WHERE key_label = ? AND base_model = ? AND status < 400",
            [label, model]).fetchone()
        p = prices[model]
        token = (inp * p["input"] + cached * p.get("cached_input", p["input"])
                 + out * p["output"]) / Decimal(1_000_000) / n
        return token, prices[model + "-c"]["request"]

    token, request = per_call("Nightly summariser", "gemini-2.5-pro")  # billed per token
    assert token > 3 * request
    token, request = per_call("CI test bot", "gpt-4o-mini")  # billed per request
    assert request > 3 * token
    token, request = per_call("Contract reader", "gpt-4o")  # per request, rightly
    assert token > 3 * request


def test_same_seed_same_history_and_a_rerun_replaces_instead_of_adding(tmp_path):
    summary = ("SELECT count(*), sum(input_tokens), sum(output_tokens), "
               "round(sum(audio_seconds), 1), "
               "md5(string_agg(call_id || started_at::VARCHAR || status, ',' ORDER BY call_id)) "
               "FROM calls")
    a, _ = build(tmp_path / "a.duckdb", calls=5_000, seed=9)
    b, _ = build(tmp_path / "b.duckdb", calls=5_000, seed=9)
    c, _ = build(tmp_path / "c.duckdb", calls=5_000, seed=10)
    first = a.execute(summary).fetchone()
    assert first == b.execute(summary).fetchone()
    assert first != c.execute(summary).fetchone()

    result = build_demo(a, calls=5_000, days=60, seed=9, fingerprinter=FP, end=END)
    assert (result.calls, result.deleted) == (5_000, 5_000)
    assert a.execute(summary).fetchone() == first
    for conn in (a, b, c):
        conn.close()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMETER_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "callmeter.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_demo_command_builds_the_ledger_and_refuses_to_mix_with_real_calls(tmp_path):
    db = tmp_path / "demo" / "l.duckdb"
    done = run_cli("demo", "--no-serve", "--calls", "20000", "--seed", "5",
                   "--end", "2026-10-01", "--db", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "demo: 20,000 calls from 2026-07-03 00:00 to 2026-10-01 00:00 UTC" in done.stdout
    assert " s (" in done.stdout  # the time it took
    conn = duckdb.connect(str(db), read_only=True)
    assert conn.execute("SELECT count(*), count(DISTINCT endpoint), count(DISTINCT status), "
                        "count(DISTINCT billing_mode) FROM calls").fetchone() == (20_000, 6, 6, 2)
    conn.close()

    real = tmp_path / "real.csv"
    real.write_text("started_at,model\n2026-09-01T00:00:00Z,gpt-4o\n")
    assert run_cli("import", str(real), "--db", str(db), cwd=tmp_path).returncode == 0
    done = run_cli("demo", "--no-serve", "--calls", "1000", "--db", str(db), cwd=tmp_path)
    assert done.returncode == 2 and "holds 1 real calls" in done.stderr
    done = run_cli("demo", "--no-serve", "--calls", "1000", "--force", "--db", str(db),
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    conn = duckdb.connect(str(db), read_only=True)
    assert conn.execute("SELECT count(*) FILTER (WHERE source = 'demo'), "
                        "count(*) FILTER (WHERE source = 'csv') FROM calls").fetchone() == (1000, 1)
    conn.close()
