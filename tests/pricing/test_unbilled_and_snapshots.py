"""Calls without a model are not billed, dated snapshots are priced from their base model, and
no command fails on a ledger holding keyless, model-less calls (issue 18)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from pricing_helpers import CALL_SQL, SHEET, add_call, write

from ledger.connect import open_ledger
from pricing import load_prices
from pricing.memo import refresh_cost_memo
from pricing.queries import UNPRICED_MODELS_SQL, calls_columns_sql, priced_select

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_SHEET = SHEET + "claude-sonnet-4-5,2025-01-01,3,0.3,15,,,,,\n"


def add_modelless(conn, call_id: str, endpoint: str, started_at: str) -> None:
    """A proxied GET /models or /api/status: no model, no key (what the proxy records)."""
    conn.execute(CALL_SQL.replace("?, regexp_replace(?, '-c$', '')", "?, ?"),
                 [call_id, started_at, None, None, None, None, 200, 1, 0, 0, 0, 0, 0, 0, 0.0,
                  0, 0, endpoint])


def build(path: Path, sheet_dir: Path):
    conn = open_ledger(str(path))
    load_prices(conn, write(sheet_dir, SNAPSHOT_SHEET))
    add_modelless(conn, "m1", "models", "2025-02-01 12:00:00+00")
    add_modelless(conn, "s1", "other", "2025-02-01 12:00:01+00")
    add_call(conn, "base", "tok", input=1_000_000, output=1_000_000)
    add_call(conn, "dated", "tok-2025-01-15", input=1_000_000, output=1_000_000)
    add_call(conn, "mmdd", "tok-0613", input=1_000_000, output=1_000_000)
    add_call(conn, "claude", "claude-sonnet-4-5-20250929", input=1_000_000)
    add_call(conn, "latest", "claude-sonnet-4-5-latest", input=1_000_000)
    add_call(conn, "dated-c", "tok-2025-01-15-c", requests=3)
    add_call(conn, "unknown", "nosuch-2025-01-15", input=10)
    return conn


def test_modelless_calls_cost_nothing_and_are_never_unpriced(tmp_path):
    conn = build(tmp_path / "l.duckdb", tmp_path)
    got = dict((r[0], r[1:]) for r in conn.execute(
        "SELECT call_id, cost, priced, price_model FROM priced_calls").fetchall())
    assert got["m1"] == (Decimal(0), True, None) and got["s1"] == (Decimal(0), True, None)
    unpriced = [r[0] for r in conn.execute(UNPRICED_MODELS_SQL).fetchall()]
    assert unpriced == ["nosuch-2025-01-15"]


def test_dated_snapshots_priced_from_the_base_row_and_say_so(tmp_path):
    conn = build(tmp_path / "l.duckdb", tmp_path)
    got = dict((r[0], r[1:]) for r in conn.execute(
        "SELECT call_id, cost, price_model FROM priced_calls").fetchall())
    assert got["base"] == (Decimal(10), "tok")       # 1M in at 2 + 1M out at 8
    assert got["dated"] == (Decimal(10), "tok") and got["mmdd"] == (Decimal(10), "tok")
    assert got["claude"] == (Decimal(3), "claude-sonnet-4-5")
    assert got["latest"] == (Decimal(3), "claude-sonnet-4-5")
    assert got["dated-c"][0] == Decimal("0.03")       # 3 requests at tok-c's 0.01
    assert got["unknown"] == (None, None)


def test_a_snapshot_with_its_own_row_keeps_it(tmp_path):
    conn = open_ledger(str(tmp_path / "l.duckdb"))
    load_prices(conn, write(tmp_path, SHEET + "tok-2025-01-15,2025-01-01,1,,1,,,,,\n"))
    add_call(conn, "dated", "tok-2025-01-15", input=1_000_000, output=1_000_000)
    assert conn.execute("SELECT cost, price_model FROM priced_calls").fetchall() == [
        (Decimal(2), "tok-2025-01-15")]


def test_memo_equals_live_pricing(tmp_path):
    conn = build(tmp_path / "l.duckdb", tmp_path)
    refresh_cost_memo(conn)
    cols = "call_id, cost, cost_as_token, cost_as_request, priced, price_model"
    memo = conn.execute(f"SELECT {cols} FROM priced_calls ORDER BY call_id").fetchall()
    source = f"(SELECT {calls_columns_sql()} FROM calls)"
    live = conn.execute(f"SELECT {cols} FROM ({priced_select(source)}) ORDER BY call_id"
                        ).fetchall()
    assert memo == live
    assert conn.execute("SELECT count(*) FROM calls WHERE memo_prices_version IS NULL"
                        ).fetchone() == (0,)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMETER_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "callmeter.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_no_command_fails_on_modelless_keyless_calls(tmp_path):
    db = tmp_path / "l.duckdb"
    build(db, tmp_path).close()
    month = ["--month", "2025-02"]
    runs = [
        ["report", *month], ["report", *month, "--by", "model"],
        ["report", *month, "--by", "key"], ["report", *month, "--by", "day"],
        ["report", *month, "--format", "json", "--out", str(tmp_path / "r.json")],
        ["report", *month, "--format", "focus", "--out", str(tmp_path / "f.csv")],
        ["recommend", "--since", "2025-01-01", "--until", "2025-03-01"],
        ["recommend", "--since", "2025-01-01", "--until", "2025-03-01", "--alerts"],
        ["budgets", "status"],
        ["prices", "check", str(ROOT / "data" / "prices.csv")],
        ["prices", "load", str(ROOT / "data" / "prices.csv")],
        ["report", *month, "--by", "model"],
    ]
    for args in runs:
        out = cli(*args, "--db", str(db), cwd=tmp_path)
        assert "Traceback" not in out.stderr, (args, out.stderr[-2000:])
        assert out.returncode == 0, (args, out.stderr[-800:])
    out = cli("report", *month, "--by", "key", "--db", str(db), cwd=tmp_path)
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    keyless = next(r for r in table if r["key_id"] == "")
    assert (keyless["calls"], keyless["unpriced_calls"]) == ("2", "0")


def test_prices_check_applies_the_snapshot_rule_and_skips_modelless_calls(tmp_path):
    db = tmp_path / "l.duckdb"
    build(db, tmp_path).close()
    out = cli("prices", "check", str(tmp_path / "prices.csv"), "--db", str(db), cwd=tmp_path)
    listed = [line.split()[0] for line in out.stdout.splitlines() if "calls  needs" in line]
    assert listed == ["nosuch-2025-01-15"], out.stdout
