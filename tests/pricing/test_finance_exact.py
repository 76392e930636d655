"""The finance pack is exact however it is read: every figure of a month's pack (totals, every
dimension's table, tag values, the reconciliation, unpriced models, the money lines) equals the
same pack summed over ``priced_calls`` call by call, on a user-like ledger — the demo plus messy
rows: keyless calls, label-only keys sharing a model, day and tags, unknown and NULL models,
tags, failed calls, estimated and flagged usage, platform charges in every reconciliation class,
refunds, a settlement and a fee, several months. Checked with the rollup current, after calls
were appended to it, and with the rollup stale (the pack then reads the calls); a handful of
figures are also checked against plain SQL written here, independent of the report's own."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from ingest.demo import build_demo
from ledger.connect import open_ledger
from ledger.keys import fingerprinter_for
from pricing import load_prices, rollup
from pricing.report import DIMENSIONS, FinanceReport, finance_report, reconciliation, report_from

ROOT = Path(__file__).resolve().parents[2]
MONTHS = ("2025-02", "2025-03", "2025-04")
# every pack carries every dimension (all_dimensions); ``by`` adds the main table and notes
BYS = ("key", "tag", "tag:team", "tag:app")
_ids = itertools.count()

# One row per call, with the columns the report's month aggregate has, so the report's own
# sections summed over it give the figures call by call (the reconciliation class as the report
# documents it: per call, with the rounding tolerance times the call's requests).
PER_CALL_SQL = """
CREATE OR REPLACE TEMP VIEW {name} AS
SELECT key_id, key_label, key_hint, model, base_model, billing_mode, tags,
  DATE '1970-01-01' + CAST(epoch_us(started_at) // 86400000000 AS INTEGER) AS day,
  status >= 400 AS failed, cost IS NULL AS unpriced,
  CASE
    WHEN charged IS NULL THEN 'uncharged'
    WHEN status >= 400 THEN 'failed_call_policy'
    WHEN status < 400 AND cost IS NOT NULL AND abs(charged - cost) <= {tol} * requests
      THEN 'rounding'
    WHEN status < 400 AND cost IS NOT NULL AND abs(charged - cost) > {tol} * requests
      AND (usage_source IS DISTINCT FROM 'reported' OR usage_flag IS NOT NULL)
      THEN 'token_mismatch'
    WHEN status < 400 AND (cost IS NULL OR (abs(charged - cost) > {tol} * requests
      AND usage_source = 'reported' AND usage_flag IS NULL))
      THEN 'price_mismatch'
    ELSE 'none'
  END AS recon,
  CASE WHEN charged IS NOT NULL THEN 1 ELSE 0 END AS charged_rows,
  requests, input_tokens, cached_tokens, output_tokens, reasoning_tokens, images, characters,
  audio_seconds, cost, charged, charged - coalesce(cost, 0) AS d, cost_as_token,
  cost_as_request,
  CASE WHEN cost_as_token IS NULL THEN requests END AS no_token_price,
  CASE WHEN cost_as_request IS NULL THEN requests END AS no_request_price
FROM priced_calls
WHERE started_at >= TIMESTAMPTZ '{month}-01 00:00:00+00'
  AND started_at < TIMESTAMPTZ '{month}-01 00:00:00+00' + INTERVAL 1 MONTH
"""


def add_call(conn, started_at: str, model: str | None, **kw) -> None:
    row = dict(call_id=f"x{next(_ids)}", source="csv", endpoint="chat", status=200, requests=1,
               input_tokens=1000, cached_tokens=0, output_tokens=100, reasoning_tokens=0,
               images=0, characters=0, audio_seconds=0.0, usage_source="reported",
               stream=False, started_at=started_at, model=model, base_model=model,
               billing_mode="token")
    row.update(kw)
    conn.execute(f"INSERT INTO calls ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                 list(row.values()))


def add_adjustment(conn, kind: str, amount: str, occurred_at: str, key_id: str | None,
                   model: str | None) -> None:
    conn.execute("INSERT INTO adjustments (adjustment_id, source, occurred_at, kind, amount, "
                 "key_id, model) VALUES (?, 'newapi', ?, ?, ?, ?, ?)",
                 [f"a{next(_ids)}", occurred_at, kind, Decimal(amount), key_id, model])


def messy_rows(conn, month: str, demo_key: tuple[str, str]) -> None:
    """Calls a real ledger has besides clean proxy traffic, in ``month`` (YYYY-MM)."""
    d = f"{month}-05"
    key, hint = demo_key
    # label-only keys (new-api token names, no fingerprint) on the same model, day and tags
    for label, charge in (("team-a", "0.000270"), ("ops-bot", "0.000300"), ("team-a", "0.5")):
        add_call(conn, f"{d} 09:00:00+00", "gpt-4o-mini", key_label=label,
                 charged=Decimal(charge), source="newapi")
    add_call(conn, f"{d} 10:00:00+00", "gpt-4o-mini", key_label="team-a",
             tags={"team": "finance"}, requests=40, charged=Decimal("0.02"))
    # keyless calls (no Authorization), one charged, one not
    add_call(conn, f"{d} 11:00:00+00", "gpt-4o-mini")
    add_call(conn, f"{d} 11:30:00+00", "gpt-4o-mini", charged=Decimal("0.00027"))
    # unknown models: unpriced, never 0 (images, characters, audio seconds counted apart)
    add_call(conn, f"{month}-07 12:00:00+00", "mystery-x", key_id=key, key_hint=hint,
             charged=Decimal("0.07"), tags={"team": "search", "app": "bidder"})
    add_call(conn, f"{month}-07 12:00:00+00", "mystery-x", key_id=key, key_hint=hint,
             images=2, audio_seconds=1.5, characters=300)
    add_call(conn, f"{month}-08 12:00:00+00", "acme-llm-9", key_label="team-a", requests=3)
    # a call without a model (not billed: cost 0, priced)
    add_call(conn, f"{month}-08 13:00:00+00", None, key_id=key, key_hint=hint, endpoint="models",
             input_tokens=0, output_tokens=0)
    # platform charges in every class: failed, estimated and flagged usage, price, rounding
    add_call(conn, f"{month}-09 08:00:00+00", "gpt-4o", key_id=key, key_hint=hint, status=500,
             charged=Decimal("0.01"))
    add_call(conn, f"{month}-09 08:00:00+00", "gpt-4o", key_id=key, key_hint=hint, status=429,
             input_tokens=0, output_tokens=0)
    add_call(conn, f"{month}-09 09:00:00+00", "gpt-4o", key_id=key, key_hint=hint,
             usage_source="estimated", charged=Decimal("0.004"), tags={"team": "search"})
    add_call(conn, f"{month}-09 09:00:00+00", "gpt-4o", key_id=key, key_hint=hint,
             usage_flag="output_over_cap", charged=Decimal("0.0041"), tags={"team": "search"})
    add_call(conn, f"{month}-09 10:00:00+00", "gpt-4o", key_id=key, key_hint=hint,
             charged=Decimal("0.0051"), tags={"team": "search"})
    add_call(conn, f"{month}-09 10:00:00+00", "gpt-4o", key_id=key, key_hint=hint,
             charged=Decimal("0.003501"), tags={"team": "search"})
    add_call(conn, f"{month}-09 10:00:00+00", "gpt-4o-c", base_model="gpt-4o",
             billing_mode="request", key_id=key, key_hint=hint, requests=25,
             charged=Decimal("0.2500001"))
    # the month's last microsecond and the next month's first belong to different months
    add_call(conn, f"{month}-01 00:00:00+00", "gpt-4o", key_id=key, key_hint=hint)
    # money that is not a call: a refund, a fee on a label-only key, a task settlement
    add_adjustment(conn, "refund", "-0.004", f"{month}-10 00:00:00+00", key, "gpt-4o")
    add_adjustment(conn, "fee", "0.5", f"{month}-11 00:00:00+00", None, None)
    add_adjustment(conn, "settlement", "0.03", f"{month}-12 00:00:00+00", key, "veo-3")


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    db = tmp_path_factory.mktemp("finance_exact") / "callmeter.duckdb"
    conn = open_ledger(str(db))
    build_demo(conn, calls=20_000, days=80, seed=7, fingerprinter=fingerprinter_for(str(db)),
               end=datetime(2025, 4, 20, tzinfo=UTC))
    load_prices(conn, ROOT / "data" / "prices.csv")
    demo_key = conn.execute("SELECT key_id, any_value(key_hint) FROM calls GROUP BY 1 "
                            "ORDER BY count(*) DESC LIMIT 1").fetchone()
    for month in MONTHS:
        messy_rows(conn, month, demo_key)
    rollup.refresh(conn)
    yield conn
    conn.close()


def call_by_call(conn, month: str, by: str) -> FinanceReport:
    """The pack summed over the month's calls one by one."""
    name = f"_per_call_{month.replace('-', '_')}"
    conn.execute(PER_CALL_SQL.format(name=name, month=month, tol="0.00001"))
    return report_from(conn, name, month, by, all_dimensions=True)


def assert_same_pack(got: FinanceReport, want: FinanceReport) -> None:
    assert got.month == want.month and got.by == want.by and got.currency == want.currency
    assert got.totals == want.totals
    assert got.money == want.money
    assert got.notes == want.notes
    assert list(got.tables) == list(want.tables)
    for name in got.tables:
        pd.testing.assert_frame_equal(got.tables[name], want.tables[name], check_exact=True,
                                      obj=f"table by {name}")
    pd.testing.assert_frame_equal(got.reconciliation, want.reconciliation, check_exact=True,
                                  obj="reconciliation")
    pd.testing.assert_frame_equal(got.unpriced, want.unpriced, check_exact=True,
                                  obj="unpriced")


def assert_every_pack_exact(conn) -> None:
    for month in MONTHS:
        for by in BYS:
            assert_same_pack(finance_report(conn, month, by, all_dimensions=True),
                             call_by_call(conn, month, by))


def test_the_rollup_is_read_and_every_figure_is_exact(ledger):
    assert rollup.is_current(ledger)
    assert_every_pack_exact(ledger)


def test_figures_against_plain_sql(ledger):
    """Figures a finance user checks by hand, from SQL that shares nothing with the report."""
    month = "2025-03"
    rep = finance_report(ledger, month, "key", all_dimensions=True)
    where = ("started_at >= TIMESTAMPTZ '2025-03-01 00:00:00+00' "
             "AND started_at < TIMESTAMPTZ '2025-04-01 00:00:00+00'")
    cost, calls, charged, unpriced = ledger.execute(
        f"SELECT sum(cost), sum(requests), sum(charged), sum(requests) FILTER (WHERE cost IS "
        f"NULL) FROM priced_calls WHERE {where}").fetchone()
    assert (rep.totals["cost"], rep.totals["calls"], rep.totals["charged"]) == \
        (cost, calls, charged)
    assert rep.totals["unpriced_calls"] == unpriced > 0
    # label-only keys are rows of their own, apart from each other and from keyless calls
    labels = dict(ledger.execute(
        f"SELECT key_label, sum(cost) FROM priced_calls WHERE {where} AND key_id IS NULL AND "
        "key_label IS NOT NULL GROUP BY 1").fetchall())
    keys = rep.tables["key"]
    label_rows = keys[keys["key_id"].isna() & keys["key_label"].notna()]
    assert dict(zip(label_rows["key_label"], label_rows["cost"], strict=True)) == labels
    assert len(keys[keys["key_id"].isna() & keys["key_label"].isna()]) == 1
    days = dict(ledger.execute(
        f"SELECT CAST(timezone('UTC', started_at) AS DATE), sum(requests) FROM priced_calls "
        f"WHERE {where} GROUP BY 1").fetchall())
    assert dict(zip(rep.tables["day"]["day"], rep.tables["day"]["calls"], strict=True)) == days
    unpriced_models = dict(ledger.execute(
        f"SELECT model, sum(requests) FROM priced_calls WHERE {where} AND cost IS NULL "
        "GROUP BY 1").fetchall())
    assert dict(zip(rep.unpriced["model"], rep.unpriced["calls"], strict=True)) == \
        unpriced_models
    adjustments = ledger.execute("SELECT sum(amount) FROM adjustments WHERE occurred_at >= "
                                 "'2025-03-01' AND occurred_at < '2025-04-01'").fetchone()[0]
    assert rep.money["net_charged"] == charged + adjustments
    rec = rep.reconciliation
    assert sum(rec["difference"], Decimal(0)) == sum(rec["net_charged"], Decimal(0)) \
        - sum(rec["ledger_cost"], Decimal(0))
    parts = ("missing_calls", "token_mismatch", "price_mismatch", "failed_call_policy",
             "rounding", "adjustments")
    for row in rec.to_dict("records"):
        assert sum((row[p] for p in parts), Decimal(0)) == row["difference"]


def test_calls_appended_to_the_rollup_keep_every_figure_exact(ledger):
    demo_key = ledger.execute("SELECT key_id, any_value(key_hint) FROM calls WHERE key_id IS "
                              "NOT NULL GROUP BY 1 ORDER BY 1 LIMIT 1").fetchone()
    messy_rows(ledger, "2025-03", demo_key)          # the same groups again, and new ones
    assert rollup.append_new_calls(ledger)
    assert rollup.is_current(ledger)
    assert_every_pack_exact(ledger)


def test_a_stale_rollup_is_not_read(ledger):
    demo_key = ledger.execute("SELECT key_id, any_value(key_hint) FROM calls WHERE key_id IS "
                              "NOT NULL GROUP BY 1 ORDER BY 1 DESC LIMIT 1").fetchone()
    messy_rows(ledger, "2025-04", demo_key)          # not appended: the rollup lags the calls
    assert not rollup.is_current(ledger)
    assert_every_pack_exact(ledger)
    rollup.refresh(ledger)


def test_another_rounding_tolerance_reads_the_calls(ledger):
    """The rollup's classes are decided with the report's tolerance; another one re-sums."""
    name = "_per_call_tolerance"
    ledger.execute(PER_CALL_SQL.format(name=name, month="2025-03", tol="0.01"))
    wide = report_from(ledger, name, "2025-03", "key").reconciliation
    got = reconciliation(ledger, "2025-03", Decimal("0.01"))
    pd.testing.assert_frame_equal(got, wide, check_exact=True)
    assert sum(got["rounding"], Decimal(0)) != sum(
        finance_report(ledger, "2025-03").reconciliation["rounding"], Decimal(0))


def test_every_dimension_is_checked(ledger):
    pack = call_by_call(ledger, "2025-03", "key")
    assert set(pack.tables) == set(DIMENSIONS)
    assert all(len(t) for t in pack.tables.values())
