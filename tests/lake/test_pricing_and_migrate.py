"""Pricing gives the same exact costs on a lake as on a file; `callmeter migrate` moves a file in.

Expectations are worked out by hand from the sheet below (prices per 1M tokens, per request).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from callmeter.cli import app
from ingest.imports import import_paths
from ledger.connect import open_ledger
from pricing import load_prices, switch_savings, unpriced_models

pytestmark = pytest.mark.lake

SHEET = ("model,effective_from,input,cached_input,output,request,image,audio_minute,characters,"
         "above_input_tokens,currency\n") + """\
gpt-4o,2024-01-01,2.5,1.25,10,,,,,,USD
gpt-4o,2025-06-01,2,1,8,,,,,,USD
gpt-4o-c,2024-01-01,,,,0.01,,,,,USD
"""

CALLS = """call_id,started_at,model,input_tokens,cached_tokens,output_tokens,status,charged
t1,2025-03-01T10:00:00Z,gpt-4o,1000,200,100,200,0.003
t2,2025-07-01T10:00:00Z,gpt-4o,1000,0,500,200,
r1,2025-03-02T10:00:00Z,gpt-4o-c,5000,0,1000,200,0.01
f1,2025-03-03T10:00:00Z,gpt-4o,100,0,0,500,
u1,2025-03-01T10:00:00Z,mystery-model,10,0,10,200,
"""

# t1: 800 × 2.5 + 200 × 1.25 + 100 × 10 per 1M = 0.00325; as one request 0.01
# t2 (after the June price change): 1000 × 2 + 500 × 8 per 1M = 0.006; as request 0.01
# r1: one request 0.01; as tokens 5000 × 2.5 + 1000 × 10 per 1M = 0.0225
# f1: failed call costs 0; u1: no price, cost NULL
EXPECTED = {
    "t1": (Decimal("0.00325"), Decimal("0.00325"), Decimal("0.01")),
    "t2": (Decimal("0.006"), Decimal("0.006"), Decimal("0.01")),
    "r1": (Decimal("0.01"), Decimal("0.0225"), Decimal("0.01")),
    "f1": (Decimal("0"), Decimal("0"), Decimal("0")),
    "u1": (None, None, None),
}
COSTS_SQL = ("SELECT call_id, cost, cost_as_token, cost_as_request FROM priced_calls "
             "ORDER BY call_id")


def _fill(conn_db: str, tmp_path: Path, data_path: str | None = None) -> None:
    (tmp_path / "calls.csv").write_text(CALLS)
    (tmp_path / "prices.csv").write_text(SHEET)
    results, locked = import_paths(conn_db, [tmp_path / "calls.csv"], "csv",
                                   data_path=data_path)
    assert locked is None and results[0].imported == 5
    conn = open_ledger(conn_db, data_path=data_path)
    load_prices(conn, tmp_path / "prices.csv")
    conn.close()


def _costs(conn) -> dict:
    return {cid: tuple(rest) for cid, *rest in conn.execute(COSTS_SQL).fetchall()}


def test_priced_calls_on_a_lake_equal_the_hand_figures_and_the_file(lake, tmp_path):
    file_db = str(tmp_path / "ledger.duckdb")
    _fill(file_db, tmp_path)
    _fill(lake.db, tmp_path, lake.data_path)
    on_file, on_lake = open_ledger(file_db), open_ledger(lake.db)
    assert _costs(on_file) == EXPECTED  # Decimal equality ignores trailing zeros
    assert _costs(on_lake) == EXPECTED
    total = "SELECT sum(cost), count(*) - count(cost) FROM priced_calls"
    assert on_lake.execute(total).fetchone() == on_file.execute(total).fetchone() == (
        Decimal("0.01925"), 1)
    assert list(unpriced_models(on_lake)["model"]) == list(unpriced_models(on_file)["model"]) \
        == ["mystery-model"]
    savings_lake, savings_file = switch_savings(on_lake), switch_savings(on_file)
    assert savings_lake.equals(savings_file)
    on_file.close()
    on_lake.close()


def test_migrate_moves_a_file_into_a_lake_and_verifies_totals(lake, tmp_path):
    file_db = tmp_path / "ledger.duckdb"
    _fill(str(file_db), tmp_path)
    runner = CliRunner()
    args = ["migrate", "--from", str(file_db), "--to", lake.db, "--data-path", lake.data_path]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "calls in" in first.output and "copied 5, already in the lake 0" in first.output
    assert "verified" in first.output

    on_lake = open_ledger(lake.db)
    with duckdb.connect(str(file_db), read_only=True) as on_file:
        totals = "SELECT count(*), sum(requests), sum(charged), sum(cost) FROM priced_calls"
        assert on_lake.execute(totals).fetchone() == on_file.execute(totals).fetchone() == (
            5, 5, Decimal("0.013"), Decimal("0.01925"))
        sheets = "SELECT sha256, rows FROM price_sheets"
        assert on_lake.execute(sheets).fetchall() == on_file.execute(sheets).fetchall()
        assert on_lake.execute("SELECT count(*) FROM imports").fetchone() == (1,)
    on_lake.close()

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "copied 0, already in the lake 5" in again.output
    on_lake = open_ledger(lake.db)
    assert on_lake.execute("SELECT count(*), count(DISTINCT call_id) FROM calls").fetchone() \
        == (5, 5)
    assert on_lake.execute("SELECT count(*) FROM imports").fetchone() == (1,)
    on_lake.close()


def test_migrate_rolls_back_when_a_call_differs_in_the_lake(lake, tmp_path):
    file_db = tmp_path / "ledger.duckdb"
    _fill(str(file_db), tmp_path)
    conn = open_ledger(lake.db, data_path=lake.data_path)
    conn.execute("INSERT INTO calls (call_id, started_at, model, base_model, billing_mode, "
                 "requests, input_tokens, cached_tokens, output_tokens, status) VALUES "
                 "('t1', TIMESTAMPTZ '2025-03-01 10:00:00+00', 'gpt-4o', 'gpt-4o', 'token', "
                 "1, 999999, 0, 0, 200)")
    conn.close()
    out = CliRunner().invoke(app, ["migrate", "--from", str(file_db), "--to", lake.db])
    assert out.exit_code != 0
    assert "rolled back" in str(out.exception) or "rolled back" in out.output
    conn = open_ledger(lake.db)
    assert conn.execute("SELECT count(*) FROM calls").fetchone() == (1,)
    conn.close()
