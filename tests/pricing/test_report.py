"""The finance pack on a constructed ledger: totals equal independent SQL, reconciliation parts."""

from __future__ import annotations

import csv
import io
import itertools
import json
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from ledger.connect import open_ledger
from pricing.report import finance_report, reconciliation, to_json, write_csv, write_xlsx

_ids = itertools.count()

DEFAULTS = dict(source="csv", endpoint="chat", status=200, requests=1, input_tokens=0,
                cached_tokens=0, output_tokens=0, reasoning_tokens=0, images=0, characters=0,
                audio_seconds=0.0, usage_source="reported", stream=False)


def add_call(conn, model: str, started_at: str, **kw) -> None:
    row = {**DEFAULTS, "call_id": f"t{next(_ids)}", "model": model, "started_at": started_at,
           "base_model": model.removesuffix("-c"),
           "billing_mode": "request" if model.endswith("-c") else "token", **kw}
    cols = ", ".join(row)
    conn.execute(f"INSERT INTO calls ({cols}) VALUES ({', '.join('?' * len(row))})",
                 list(row.values()))


def add_price(conn, model: str, effective_from: str = "2020-01-01", **prices) -> None:
    row = {"model": model, "effective_from": effective_from, **prices}
    cols = ", ".join(row)
    conn.execute(f"INSERT INTO prices ({cols}) VALUES ({', '.join('?' * len(row))})",
                 list(row.values()))


@pytest.fixture
def ledger(tmp_path):
    conn = open_ledger(str(tmp_path / "l.duckdb"))
    add_price(conn, "gpt-4o", input=Decimal("2.5"), output=Decimal("10"))
    add_price(conn, "gpt-4o-c", request=Decimal("0.01"))
    # key A, March: 1M in + 100k out on gpt-4o = 2.50 + 1.00 = 3.50, charged 3.50
    add_call(conn, "gpt-4o", "2025-03-03 10:00:00+00", key_id="kA", key_hint="sk-…aaaa",
             input_tokens=1_000_000, output_tokens=100_000, charged=Decimal("3.5"),
             tags={"team": "search"})
    # key A: 100 requests on gpt-4o-c = 1.00, platform charged 1.20 (price mismatch)
    add_call(conn, "gpt-4o-c", "2025-03-04 10:00:00+00", key_id="kA", key_hint="sk-…aaaa",
             requests=100, input_tokens=5000, charged=Decimal("1.2"))
    # key A: gpt-4o with estimated usage, ledger 0.25, platform 0.30 (token mismatch)
    add_call(conn, "gpt-4o", "2025-03-05 10:00:00+00", key_id="kA", key_hint="sk-…aaaa",
             input_tokens=100_000, usage_source="estimated", charged=Decimal("0.3"))
    # key A: failed call, platform charged 0.02 anyway
    add_call(conn, "gpt-4o", "2025-03-05 11:00:00+00", key_id="kA", key_hint="sk-…aaaa",
             status=429, input_tokens=1000, charged=Decimal("0.02"))
    # key A: proxy-recorded call missing from the platform log: 10k in = 0.025
    add_call(conn, "gpt-4o", "2025-03-06 11:00:00+00", key_id="kA", key_hint="sk-…aaaa",
             input_tokens=10_000, source="proxy")
    # key A: rounding, ledger 0.0000025 (1 token), charged 0.000002
    add_call(conn, "gpt-4o", "2025-03-06 12:00:00+00", key_id="kA", key_hint="sk-…aaaa",
             input_tokens=1, charged=Decimal("0.000002"))
    # key B: unpriced model, 3 calls, 3000 in / 300 out
    add_call(conn, "mystery-1", "2025-03-31 23:59:59+00", key_id="kB", key_hint="sk-…bbbb",
             requests=3, input_tokens=3000, output_tokens=300, tags={"team": "ads", "env": "x"})
    # outside March (April 1st UTC, though March 31 in New York)
    add_call(conn, "gpt-4o", "2025-03-31 22:00:00-04", key_id="kB", input_tokens=1_000_000)
    yield conn
    conn.close()


EXPECTED_COST = Decimal("3.5") + Decimal("1") + Decimal("0.25") + Decimal("0.025") \
    + Decimal("0.0000025")


def test_totals_match_independent_sql(ledger):
    rep = finance_report(ledger, "2025-03", "key", all_dimensions=True)
    independent = ledger.execute(
        "SELECT sum(cost) FROM priced_calls "
        "WHERE started_at >= TIMESTAMPTZ '2025-03-01 00:00:00+00' "
        "AND started_at < TIMESTAMPTZ '2025-04-01 00:00:00+00'").fetchone()[0]
    assert rep.totals["cost"] == independent == EXPECTED_COST
    for dim in ("key", "model", "day", "tag:team"):
        table = rep.tables[dim] if dim in rep.tables else finance_report(ledger, "2025-03",
                                                                         dim).main
        assert sum(table["cost"].dropna(), Decimal(0)) == EXPECTED_COST, dim
        assert int(table["calls"].sum()) == 1 + 100 + 1 + 1 + 1 + 1 + 3
    assert rep.totals["unpriced_calls"] == 3
    assert rep.totals["unpriced_input_tokens"] == 3000
    assert rep.totals["paid_per_request"] == rep.totals["cost_per_request_billing"] == 1
    assert rep.totals["paid_per_token"] == rep.totals["cost_per_token_billing"] \
        == EXPECTED_COST - 1
    # key B's only March calls are unpriced: its cost is unknown (NULL), never 0
    by_key = rep.tables["key"].set_index("key_id")
    assert by_key.loc["kB", "cost"] is None and by_key.loc["kB", "unpriced_calls"] == 3
    # what-ifs: every call on one variant; unknown while any call lacks that variant's price
    assert rep.totals["all_as_per_token"] is None
    # key A as per-request: 104 successful calls x 0.01 (the failed call is priced 0)
    assert by_key.loc["kA", "all_as_per_request"] == Decimal("1.04")
    assert by_key.loc["kA", "paid_per_request"] == Decimal("1")


def test_by_tag_counts_each_tag(ledger):
    tags = finance_report(ledger, "2025-03", "tag").main.set_index("tag")
    assert tags.loc["team=search", "cost"] == Decimal("3.5")
    assert tags.loc["team=ads", "calls"] == 3 and tags.loc["env=x", "calls"] == 3
    assert tags.loc["(untagged)", "cost"] == EXPECTED_COST - Decimal("3.5")


def test_reconciliation_parts_add_up(ledger):
    rec = reconciliation(ledger, "2025-03").set_index(["key_id", "model"])
    c = rec.loc[("kA", "gpt-4o-c")]
    assert c["difference"] == Decimal("0.2") == c["price_mismatch"]
    t = rec.loc[("kA", "gpt-4o")]
    assert t["charged"] == Decimal("3.5") + Decimal("0.3") + Decimal("0.02") + Decimal("0.000002")
    assert t["token_mismatch"] == Decimal("0.05")
    assert t["failed_call_policy"] == Decimal("0.02")
    assert t["missing_calls"] == Decimal("-0.025")
    assert t["rounding"] == Decimal("-0.0000005")
    assert t["price_mismatch"] == 0
    parts = sum(t[p] for p in ("missing_calls", "token_mismatch", "price_mismatch",
                               "failed_call_policy", "rounding"))
    assert parts == t["difference"] == t["charged"] - t["ledger_cost"]
    assert "token counts differ" in t["explanation"]
    assert ("kB", "mystery-1") not in rec.index  # no charged there: nothing to reconcile


def test_writers(ledger, tmp_path):
    rep = finance_report(ledger, "2025-03", "model", all_dimensions=True)
    buf = io.StringIO()
    write_csv(rep, buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert rows[-1]["model"] == "TOTAL"
    assert Decimal(rows[-1]["cost"]) == Decimal("4.775003")  # half up
    doc = json.loads(json.dumps(to_json(rep)))
    assert doc["totals"]["cost"] == "4.775003"
    assert {r["model"] for r in doc["unpriced"]} == {"mystery-1"}
    write_xlsx(rep, tmp_path / "r.xlsx")
    wb = load_workbook(tmp_path / "r.xlsx")
    assert wb.sheetnames[:5] == ["Summary", "By model", "By key", "By day", "By tag"]
    assert "Reconciliation" in wb.sheetnames and "Unpriced" in wb.sheetnames
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert round(summary["cost"], 2) == 4.78


def add_adjustment(conn, kind: str, amount: str, occurred_at: str, key_id: str, model: str,
                   task_id: str | None = None) -> None:
    conn.execute("INSERT INTO adjustments (adjustment_id, source, occurred_at, kind, amount, "
                 "key_id, model, task_id) VALUES (?, 'newapi', ?, ?, ?, ?, ?, ?)",
                 [f"a{next(_ids)}", occurred_at, kind, Decimal(amount), key_id, model, task_id])


def test_adjustments_are_their_own_lines_and_reconcile(ledger):
    # a refund on kA gpt-4o; a settlement and a fee on a task model kA has no call of in March;
    # a refund in April is not March's
    add_adjustment(ledger, "refund", "-0.3", "2025-03-10 00:00:00+00", "kA", "gpt-4o", "t1")
    add_adjustment(ledger, "settlement", "0.025", "2025-03-11 00:00:00+00", "kA", "veo-3", "t2")
    add_adjustment(ledger, "fee", "0.01", "2025-03-12 00:00:00+00", "kA", "veo-3", "t2")
    add_adjustment(ledger, "refund", "-9", "2025-04-01 00:00:00+00", "kA", "gpt-4o", "t3")
    rep = finance_report(ledger, "2025-03", "key")
    charged = Decimal("3.5") + Decimal("1.2") + Decimal("0.3") + Decimal("0.02") \
        + Decimal("0.000002")
    assert rep.money["charged_on_calls"] == charged
    assert rep.money["adjustments_refund"] == Decimal("-0.3")
    assert rep.money["adjustments_settlement"] == Decimal("0.025")
    assert rep.money["adjustments_fee"] == Decimal("0.01")
    assert rep.money["net_charged"] == charged - Decimal("0.3") + Decimal("0.035")
    # no adjustment is a call
    assert int(rep.totals["calls"]) == 1 + 100 + 1 + 1 + 1 + 1 + 3
    rec = rep.reconciliation.set_index(["key_id", "model"])
    t = rec.loc[("kA", "gpt-4o")]
    assert t["adjustments"] == Decimal("-0.3")
    assert t["net_charged"] == t["charged"] - Decimal("0.3")
    parts = sum(t[p] for p in ("missing_calls", "token_mismatch", "price_mismatch",
                               "failed_call_policy", "rounding", "adjustments"))
    assert parts == t["difference"] == t["net_charged"] - t["ledger_cost"]
    task = rec.loc[("kA", "veo-3")]
    assert task["adjustments"] == task["difference"] == Decimal("0.035")
    assert task["calls_with_charge"] == 0
    assert "refunds, task settlements and fees" in task["explanation"]
    assert sum(rec["net_charged"], Decimal(0)) == rep.money["net_charged"]

    buf = io.StringIO()
    write_csv(rep, buf)
    lines = {r["key_id"]: r for r in csv.DictReader(io.StringIO(buf.getvalue()))}
    assert lines["REFUNDS"]["charged"] == "-0.300000"
    assert lines["TASK SETTLEMENTS"]["charged"] == "0.025000"
    assert Decimal(lines["NET CHARGED"]["charged"]) == rep.money["net_charged"].quantize(
        Decimal("0.000001"))
    doc = json.loads(json.dumps(to_json(rep)))
    assert doc["money"]["net_charged"] == str(rep.money["net_charged"].quantize(
        Decimal("0.000001")))


def test_xlsx_by_a_tag_sanitises_sheet_titles_and_formats_money(ledger, tmp_path):
    """Issue 17 bug 2: ``--by tag:team --format xlsx`` raised "Invalid character : found in
    sheet title"; every title is now one Excel accepts, money cells carry the currency."""
    from pricing.report import sheet_title

    rep = finance_report(ledger, "2025-03", "tag:team", all_dimensions=True)
    write_xlsx(rep, tmp_path / "t.xlsx")
    wb = load_workbook(tmp_path / "t.xlsx")
    assert "By tag team" in wb.sheetnames
    sheet = wb["By tag team"]
    header = [c.value for c in sheet[1]]
    cost = sheet.cell(2, header.index("cost") + 1)
    assert "USD" in cost.number_format and "#,##0.00" in cost.number_format
    assert sheet.column_dimensions["A"].width >= 10
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert summary["currency"] == "USD"
    taken: set[str] = set()
    assert sheet_title("By tag:a/b*c?[d]", taken) == "By tag a b c d"
    assert sheet_title("By " + "x" * 40, taken) == "By " + "x" * 28
    assert sheet_title("By " + "x" * 40, taken) == "By " + "x" * 24 + " (2)"


def test_report_cli_xlsx_by_tag(ledger, tmp_path):
    from typer.testing import CliRunner

    from callmeter.cli import app

    path = ledger.execute("SELECT path FROM duckdb_databases() WHERE database_name = "
                          "current_database()").fetchone()[0]
    ledger.close()
    out = tmp_path / "r.xlsx"
    result = CliRunner().invoke(app, ["report", "--month", "2025-03", "--by", "tag:team",
                                      "--format", "xlsx", "--out", str(out), "--db", path])
    assert result.exit_code == 0, result.output
    assert "By tag team" in load_workbook(out).sheetnames


def test_csv_leaves_an_all_unpriced_row_empty_not_zero(ledger):
    """Issue 17 bug 8: a row whose calls are all unpriced printed cost 0.000000."""
    rep = finance_report(ledger, "2025-03", "key")
    buf = io.StringIO()
    write_csv(rep, buf)
    rows = {r["key_id"]: r for r in csv.DictReader(io.StringIO(buf.getvalue()))}
    assert rows["kB"]["cost"] == "" and rows["kB"]["unpriced_calls"] == "3"
    assert rows["kA"]["paid_per_token"] and rows["kA"]["all_as_per_request"] == "1.040000"


def test_headline_splits_the_whole_difference(ledger):
    from pricing.report import HEADLINE_PARTS, reconciliation_headline

    add_adjustment(ledger, "refund", "-0.5", "2025-03-10 00:00:00+00", "kA", "gpt-4o")
    rep = finance_report(ledger, "2025-03", "key")
    head = reconciliation_headline(rep)
    assert head is not None
    assert head["ledger_cost"] == EXPECTED_COST
    assert head["difference"] == head["net_charged"] - EXPECTED_COST
    assert sum(head[p] for p in HEADLINE_PARTS) == head["difference"]
    assert head["adjustments"] == Decimal("-0.5")


def test_a_charged_call_without_a_status_is_reconciled_as_a_success(ledger):
    """A generic CSV or a log without a status column leaves status empty; the platform still
    charged the call. Its difference was in no part of the reconciliation (class 'none'), so
    the headline's parts no longer added up to the difference; now it counts as a success, as
    break-even and the pages already count it."""
    from pricing import rollup
    from pricing.report import HEADLINE_PARTS, reconciliation_headline

    # 1M in + 100k out on gpt-4o = 3.50; the platform charged 3.90 (a price mismatch of 0.40)
    add_call(ledger, "gpt-4o", "2025-03-20 10:00:00+00", key_id="kC", key_hint="sk-…cccc",
             input_tokens=1_000_000, output_tokens=100_000, charged=Decimal("3.9"), status=None)
    for rollup_current in (False, True):
        if rollup_current:
            rollup.rebuild(ledger)
        rep = finance_report(ledger, "2025-03", "key")
        head = reconciliation_headline(rep)
        assert head is not None
        assert sum(head[p] for p in HEADLINE_PARTS) == head["difference"]
        rec = rep.reconciliation.set_index("key_id").loc["kC"]
        assert rec["price_mismatch"] == Decimal("0.4") and rec["difference"] == Decimal("0.4")
