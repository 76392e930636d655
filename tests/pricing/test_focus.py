"""Issue 19, point 4: `callmeter report --format focus` gives FOCUS 1.2 rows that the FinOps
Foundation's validator accepts, whose ListCost adds up to `callmeter report` and whose
BilledCost is the platform's charge where a log carried one, with the month's refunds, task
settlements, fees and billed lines as Adjustment rows, so BilledCost adds up to the platform's
net charge.

The ledger looks like a user's: three months of the demo's synthetic traffic, every sample log
(platform exports with `charged`, refunds, keyless calls, label-only keys, non-ASCII labels,
aggregated buckets, OpenTelemetry spans), and hand-written rows for audio, images, speech, an
unpriced model and failed calls that were charged anyway.
"""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from focus_validator import validate

from ingest.demo import build_demo
from ledger.connect import open_ledger
from ledger.keys import fingerprinter_for
from pricing import load_prices

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from platform_logs import Ratios, text_other, text_quota  # noqa: E402
from platform_standin import TOKEN, USER_ID, StandIn, serve  # noqa: E402

MONTH = "2025-03"
MICRO = Decimal("0.000001")
EXTRA = ("started_at,model,key_label,endpoint,status,input_tokens,output_tokens,images,"
         "characters,audio_seconds,charged,tags\n") + """\
2025-03-04T10:00:00Z,whisper-1,市场部 – 机器人,transcriptions,200,0,0,0,0,93.5,,team=市场
2025-03-04T11:00:00Z,dall-e-3,design-bot,images,200,0,0,3,0,0,,team=design
2025-03-05T12:00:00Z,tts-1,,speech,200,0,0,0,1234,0,,
2025-03-06T08:00:00Z,mystery-model,研发-张三,chat,200,900,100,0,0,0,0.004,team=search
2025-03-06T09:00:00Z,mystery-model,研发-张三,chat,200,100,10,0,0,0,,team=search
2025-03-07T09:00:00Z,gpt-4o,研发-张三,chat,500,800,0,0,0,0,0.002,team=search
2025-03-31T23:59:59Z,gpt-4o-c,,chat,200,10,10,0,0,0,,
2025-04-01T00:00:00Z,gpt-4o-c,,chat,200,10,10,0,0,0,,
2025-02-28T23:59:59Z,gpt-4o,,chat,200,10,10,0,0,0,,
"""
CRITERIA = ("USAGE_MEASUREMENT_SUPPORTED", "TAGGING_SUPPORTED")


def cli(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "callmeter.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("focus")
    db = folder / "callmeter.duckdb"
    conn = open_ledger(str(db))
    try:
        build_demo(conn, calls=6000, days=75, seed=19, fingerprinter=fingerprinter_for(str(db)),
                   end=datetime(2025, 4, 15, tzinfo=UTC))
    finally:
        conn.close()
    extra = folder / "extra.csv"
    extra.write_text(EXTRA, encoding="utf-8")
    samples = sorted(str(p) for p in (ROOT / "data" / "samples").iterdir())
    cli("import", *samples, str(extra), "--db", str(db))
    conn = open_ledger(str(db))
    try:
        load_prices(conn, ROOT / "data" / "prices.csv")
    finally:
        conn.close()
    return db


def _month_figures(db: Path) -> dict:
    """Independent sums over priced_calls and adjustments for the month (UTC). The OpenAI
    usage sample's bill is its Costs API lines (adjustments): its calls bill nothing more."""
    conn = open_ledger(str(db), read_only=True)
    month = ("{col} >= TIMESTAMPTZ '2025-03-01 00:00:00+00' "
             "AND {col} < TIMESTAMPTZ '2025-04-01 00:00:00+00'")
    try:
        list_cost, billed, calls, unpriced = conn.execute(
            "SELECT sum(cost), sum(coalesce(charged, CASE WHEN source = 'openai-usage' THEN 0 "
            "ELSE cost END)), sum(requests), sum(requests) FILTER (WHERE cost IS NULL) "
            "FROM priced_calls WHERE " + month.format(col="started_at")).fetchone()
        adjusted = conn.execute(
            "SELECT sum(amount) FROM adjustments WHERE " + month.format(col="occurred_at")
        ).fetchone()[0]
    finally:
        conn.close()
    return {"list": list_cost, "billed": billed, "calls": calls, "unpriced": unpriced,
            "adjustments": adjusted}


def _csv_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_focus_csv_adds_up_to_the_report(ledger, tmp_path):
    out = tmp_path / "focus.csv"
    done = cli("report", "--month", MONTH, "--format", "focus", "--out", str(out),
               "--db", str(ledger))
    rows = _csv_rows(out)
    report = json.loads(cli("report", "--month", MONTH, "--format", "json",
                            "--db", str(ledger)).stdout)["totals"]
    figures = _month_figures(ledger)
    calls = [r for r in rows if r["ChargeCategory"] == "Usage"]
    list_total = sum(Decimal(r["ListCost"]) for r in calls)
    assert list_total == figures["list"]                       # exact
    assert list_total.quantize(MICRO) == Decimal(report["cost"])
    # the sample's refund and OpenAI Costs lines are in it, and bill as themselves
    assert {r["x_AdjustmentKind"] for r in rows if r not in calls} == {"refund", "billed"}
    assert sum(Decimal(r["BilledCost"]) for r in rows) == figures["billed"] + \
        figures["adjustments"]
    assert sum(int(r["x_Calls"]) for r in rows) == figures["calls"] == report["calls"]
    for r in rows:
        assert r["ChargePeriodStart"].startswith("2025-03-") and r["ChargePeriodStart"] < \
            r["ChargePeriodEnd"]
        assert r["BillingPeriodStart"] == "2025-03-01T00:00:00Z"
        assert r["BillingPeriodEnd"] == "2025-04-01T00:00:00Z"
        expected_unit = "Requests" if r["x_BillingMode"] == "request" else r["ConsumedUnit"]
        assert r["PricingUnit"] == expected_unit
    # unpriced calls: present, marked, never folded in silently
    unpriced = [r for r in rows if r["x_Unpriced"] == "true"]
    assert sum(int(r["x_Calls"]) for r in unpriced) == figures["unpriced"] \
        == report["unpriced_calls"] > 0
    assert all(r["ChargeDescription"].startswith("UNPRICED") and r["ListCost"] == "0.0"
               for r in unpriced)
    mystery = [r for r in unpriced if r["x_Model"] == "mystery-model"]
    assert sum(Decimal(r["BilledCost"]) for r in mystery) == Decimal("0.004")  # the charge
    assert "have no price" in done.stderr
    # one row per key x model x day x tags x priced/unpriced
    keys = [(r["SubAccountId"], r["x_Model"], r["ChargePeriodStart"], r["Tags"],
             r["x_Unpriced"], r["x_AdjustmentKind"]) for r in rows]
    assert len(keys) == len(set(keys))
    whisper = next(r for r in rows if r["x_Model"] == "whisper-1"
                   and r["SubAccountName"] == "市场部 – 机器人")
    assert (whisper["ConsumedQuantity"], whisper["ConsumedUnit"]) == ("93.5", "Seconds")
    assert whisper["SubAccountId"] == "市场部 – 机器人"  # a label-only key
    assert json.loads(whisper["Tags"]) == {"team": "市场"}


def test_focus_parquet_matches_the_csv_and_hours_add_up_to_days(ledger, tmp_path):
    import pyarrow.parquet as pq

    day_csv, parquet, hour_csv = (tmp_path / "d.csv", tmp_path / "d.parquet",
                                  tmp_path / "h.csv")
    cli("report", "--month", MONTH, "--format", "focus", "--out", str(day_csv),
        "--db", str(ledger))
    cli("report", "--month", MONTH, "--format", "focus", "--out", str(parquet),
        "--db", str(ledger))
    cli("report", "--month", MONTH, "--format", "focus", "--grain", "hour", "--out",
        str(hour_csv), "--db", str(ledger))
    table = pq.read_table(parquet)
    assert str(table.schema.field("ListCost").type) == "decimal128(38, 15)"
    assert str(table.schema.field("ChargePeriodStart").type) == "timestamp[us, tz=UTC]"
    days, hours = _csv_rows(day_csv), _csv_rows(hour_csv)
    assert table.num_rows == len(days) < len(hours)
    for column in ("ListCost", "BilledCost"):
        from_csv = sum(Decimal(r[column]) for r in days)
        assert sum(table.column(column).to_pylist()) == from_csv
        assert sum(Decimal(r[column]) for r in hours) == from_csv


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_focus_validator_finds_no_violation(ledger, tmp_path, suffix):
    out = tmp_path / f"focus.{suffix}"
    cli("report", "--month", MONTH, "--format", "focus", "--out", str(out), "--db",
        str(ledger))
    for criteria in ((), CRITERIA):
        violations, report = validate(out, criteria)
        assert violations == {}, f"{criteria}: {violations}\n{report[-4000:]}"
        assert "Pass:" in report


def test_sub_accounts_keep_their_unicode_names(ledger, tmp_path):
    """FOCUS StringHandling asks for valid Unicode kept as written; focus-validator 2.2.1 checks
    SubAccountId and SubAccountName for ASCII only. Its one complaint, when sub-accounts are
    claimed, is about exactly the rows whose key label (or label-only key) is not ASCII."""
    out = tmp_path / "focus.csv"
    cli("report", "--month", MONTH, "--format", "focus", "--out", str(out), "--db",
        str(ledger))
    rows = _csv_rows(out)
    names = sum(1 for r in rows if not r["SubAccountName"].isascii())
    ids = sum(1 for r in rows if not r["SubAccountId"].isascii())
    violations, _ = validate(out, (*CRITERIA, "SUB_ACCOUNT_SUPPORTED"))
    assert names > ids > 0
    assert violations == {"SubAccountName-C-002-M": names, "SubAccountName-C-000-C": 1,
                          "SubAccountId-C-002-M": ids, "SubAccountId-C-000-C": 1}


def test_focus_to_stdout_is_csv(ledger):
    done = cli("report", "--month", MONTH, "--format", "focus", "--db", str(ledger))
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert rows and rows[0]["ChargeCategory"] == "Usage"


# ---- a platform account's month: calls, refunds, task settlements and a fee ----

MARCH_2026 = 1_772_323_200          # 2026-03-01 00:00:00 UTC
APRIL_2026 = MARCH_2026 + 31 * 86_400
QPU = Decimal(500_000)              # the stand-in's quota per US$


def _task(standin: StandIn, at: int, token: tuple[str, int]) -> str:
    """An async video task submitted at ``at`` and charged up front (US$0.30)."""
    standin.add(at, model="sora-2", prompt=0, completion=0, quota=150_000, token_name=token[0],
                token_id=token[1], other={"is_task": True, "model_price": 0.3})
    return f"task-{at}"


def _platform_month(standin: StandIn) -> None:
    rng, r = random.Random(20), Ratios(model_ratio=1.25, completion_ratio=4)
    keys = (("team-a", 7), ("research", 9))
    for day in range(-1, 32):                                     # Feb 28 .. Apr 1
        for _ in range(rng.randint(1, 5)):
            at, (name, tid) = MARCH_2026 + day * 86_400 + rng.randrange(86_400), rng.choice(keys)
            prompt, completion = rng.randint(10, 4000), rng.randint(0, 900)
            standin.add(at, model="gpt-4o", prompt=prompt, completion=completion,
                        quota=text_quota(prompt, completion, r), other=text_other(r),
                        token_name=name, token_id=tid)
        if day % 9 == 0:
            standin.add(MARCH_2026 + day * 86_400 + 600, log_type=5, model="gpt-4o",
                        other={"status_code": 429})
    day = 86_400
    for hours in (1, 3):                        # two failed tasks refunded the same day
        task = _task(standin, MARCH_2026 + 2 * day + hours * 3600, keys[0])
        standin.refund(MARCH_2026 + 2 * day + (hours + 1) * 3600, task, 150_000)
    task = _task(standin, MARCH_2026 + 9 * day, keys[1])             # settled higher
    standin.settlement(MARCH_2026 + 9 * day + 7200, task, 150_000, 187_500)
    task = _task(standin, MARCH_2026 + 12 * day, keys[1])            # settled lower: type 6
    standin.settlement(MARCH_2026 + 12 * day + 7200, task, 150_000, 100_000)
    standin.fee(MARCH_2026 + 20 * day + 300, 25_000, token_name="research", token_id=9)
    task = _task(standin, APRIL_2026 - 1800, keys[0])                # refunded in April
    standin.refund(APRIL_2026 + 1800, task, 150_000)


@pytest.fixture(scope="module")
def platform_ledger(tmp_path_factory) -> tuple[Path, Decimal]:
    """The ledger `callmeter sync` builds from a new-api console (the stand-in), and what the
    platform charged in March by its own rows: consumed quota − refunded quota."""
    standin = StandIn(build="newapi", quota_per_unit=QPU)
    _platform_month(standin)
    db = tmp_path_factory.mktemp("focus-platform") / "callmeter.duckdb"
    server, _ = serve(standin)
    try:
        cli("sync", "--platform", standin.url, "--token", TOKEN, "--user-id", USER_ID,
            "--since", "2026-02-20", "--db", str(db))
    finally:
        server.shutdown()
        server.server_close()
    conn = open_ledger(str(db))
    try:
        load_prices(conn, ROOT / "data" / "prices.csv")
    finally:
        conn.close()
    quota = sum(-row["quota"] if row["type"] == 6 else row["quota"] for row in standin.rows
                if MARCH_2026 <= row["created_at"] < APRIL_2026 and row["type"] in (2, 6))
    return db, Decimal(quota) / QPU


def test_focus_billed_cost_is_the_platform_net_charge(platform_ledger, tmp_path):
    db, platform_net = platform_ledger
    out = tmp_path / "focus.csv"
    cli("report", "--month", "2026-03", "--format", "focus", "--out", str(out), "--db", str(db))
    rows = _csv_rows(out)
    report = json.loads(cli("report", "--month", "2026-03", "--format", "json", "--db",
                            str(db)).stdout)
    money = report["money"]
    billed = sum(Decimal(r["BilledCost"]) for r in rows)
    assert billed == platform_net                                  # exact
    assert billed.quantize(MICRO) == Decimal(money["net_charged"])
    calls = [r for r in rows if r["ChargeCategory"] == "Usage"]
    assert sum(Decimal(r["ListCost"]) for r in calls).quantize(MICRO) == \
        Decimal(money["ledger_cost"]) == Decimal(report["totals"]["cost"]) > 0
    adjustments = [r for r in rows if r["ChargeCategory"] != "Usage"]
    by_kind: dict[str, Decimal] = {}
    for r in adjustments:
        by_kind[r["x_AdjustmentKind"]] = by_kind.get(r["x_AdjustmentKind"], 0) + \
            Decimal(r["BilledCost"])
        assert r["ChargeCategory"] == "Adjustment" and r["ChargeClass"] == ""
        assert r["ListCost"] == r["ContractedCost"] == r["EffectiveCost"] == r["BilledCost"]
        assert r["ConsumedQuantity"] == r["PricingQuantity"] == r["PricingUnit"] == ""
        assert r["x_Calls"] == "0" and r["ChargePeriodStart"].startswith("2026-03-")
    assert by_kind == {k: Decimal(money[f"adjustments_{k}"]) for k in ("refund", "settlement",
                                                                       "fee")}
    assert (by_kind["refund"], by_kind["settlement"], by_kind["fee"]) == (
        Decimal("-0.7"), Decimal("0.075"), Decimal("0.05"))    # 2 refunds, 1 settled lower
    both = [r for r in adjustments if r["ChargePeriodStart"] == "2026-03-03T00:00:00Z"]
    assert [(r["SkuId"], r["x_Adjustments"], r["BilledCost"]) for r in both] == \
        [("sora-2", "2", "-0.6")]                                   # summed per key x day
    fee = next(r for r in adjustments if r["x_AdjustmentKind"] == "fee")
    assert (fee["SubAccountName"], fee["SkuId"]) == ("research", "grok-imagine-image")
    for criteria in ((), CRITERIA):
        violations, report_text = validate(out, criteria)
        assert violations == {}, f"{criteria}: {violations}\n{report_text[-4000:]}"
