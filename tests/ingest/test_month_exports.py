"""Issue 15's done-criterion for exports: a month of LiteLLM spend logs and of OpenAI's Usage and
Costs API, exported in overlapping pieces, gives each call (or bucket group) exactly once and a
report whose net charge is what the platform charged (tests/export_standins.py builds the rows
from LiteLLM's and openai-python's code)."""

from __future__ import annotations

import csv
import json
import sys
from decimal import Decimal
from pathlib import Path

from importers_helpers import rows, run_import
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from export_standins import litellm_rows, page, spend_of, usage_buckets  # noqa: E402

from callmeter.cli import app  # noqa: E402

MARCH = 1_772_323_200            # 2026-03-01 00:00:00 UTC
APRIL = MARCH + 31 * 86_400


def _report(db: Path) -> dict:
    out = CliRunner().invoke(app, ["report", "--month", "2026-03", "--format", "json",
                                   "--db", str(db)])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_a_month_of_litellm_spend_logs_in_overlapping_exports(tmp_path):
    logs = litellm_rows(MARCH - 86_400, APRIL + 86_400)
    db = tmp_path / "l.duckdb"
    # daily /spend/logs answers (JSON), each overlapping the day before by two hours
    for day in range(-1, 32):
        lo, hi = MARCH + day * 86_400 - 7200, MARCH + (day + 1) * 86_400
        part = [r for r in logs if lo <= _epoch(r["startTime"]) < hi]
        path = tmp_path / f"spend-{day}.json"
        path.write_text(json.dumps(part))
        if part:
            run_import(db, path, "litellm")
    # ...and the month once more as a CSV export of LiteLLM_SpendLogs
    month = [r for r in logs if MARCH <= _epoch(r["startTime"]) < APRIL]
    table = tmp_path / "spend-march.csv"
    with table.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(month[0]))
        writer.writeheader()
        writer.writerows(month)
    again = run_import(db, table, "litellm")
    assert again.imported == 0 and again.duplicates == len(month)

    assert rows(db, "SELECT count(*) FROM calls WHERE started_at >= to_timestamp(?) "
                    "AND started_at < to_timestamp(?)", [MARCH, APRIL]) == [(len(month),)]
    report = _report(db)
    assert Decimal(report["money"]["net_charged"]) == spend_of(month).quantize(
        Decimal("0.000001"))
    assert report["totals"]["calls"] == len(month)
    # a cache hit is a call, but priced at nothing
    hits = [r for r in month if r["cache_hit"] == "True"]
    assert hits and rows(db, "SELECT count(*), sum(input_tokens) FROM calls "
                             "WHERE usage_flag = 'response_cache_hit' AND started_at >= "
                             "to_timestamp(?) AND started_at < to_timestamp(?)",
                         [MARCH, APRIL]) == [(len(hits), 0)]


def test_a_month_of_openai_usage_and_costs_in_overlapping_exports(tmp_path):
    usage, costs = usage_buckets(MARCH, 31)
    db = tmp_path / "l.duckdb"
    # weekly exports that overlap by a day, plus the Costs API's pages for the month
    for week in range(5):
        lo, hi = max(week * 7 - 1, 0), min(week * 7 + 7, 31)
        path = tmp_path / f"usage-{week}.json"
        path.write_text(json.dumps([page(usage[lo:hi])]))
        run_import(db, path, "openai-usage")
        cpath = tmp_path / f"costs-{week}.json"
        cpath.write_text(json.dumps(page(costs[lo:hi])))
        run_import(db, cpath, "openai-usage")

    groups = [r for b in usage for r in b["results"] if r["num_model_requests"]]
    assert rows(db, "SELECT count(*), sum(requests) FROM calls") == [
        (len(groups), sum(r["num_model_requests"] for r in groups))]
    billed = sum((Decimal(str(r["amount"]["value"])) for b in costs for r in b["results"]),
                 Decimal(0))
    report = _report(db)
    assert Decimal(report["money"]["net_charged"]) == billed.quantize(Decimal("0.000001"))
    assert Decimal(report["money"]["adjustments_billed"]) == Decimal(
        report["money"]["net_charged"])
    assert report["totals"]["calls"] == sum(r["num_model_requests"] for r in groups)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
