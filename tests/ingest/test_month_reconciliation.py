"""The done-criterion of issue 15: a month of hourly syncs plus an admin export of the same month
gives each call exactly once, and `callmeter report` shows the platform's net charge to the
micro-unit, refunds and settlements on their own lines.

The platform is the stand-in console (tests/platform_standin.py), one build per run: current
new-api (row ids are page positions that shift as calls arrive; every row has a request id),
new-api of 2025 (``id % 1024``, no request id, so two equal calls in one second look alike),
and one-api (pages from 0, ten rows each, type 5 a channel test).
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from importers_helpers import run_import  # noqa: E402
from platform_logs import Ratios, text_other, text_quota  # noqa: E402
from platform_standin import ADMIN_TOKEN, TOKEN, USER_ID, StandIn, serve  # noqa: E402

from callmeter.cli import app  # noqa: E402
from ingest.platform import PlatformClient  # noqa: E402
from ingest.sync import sync_now  # noqa: E402
from ledger.config import Settings  # noqa: E402
from ledger.connect import open_ledger  # noqa: E402

MARCH = 1_772_323_200            # 2026-03-01 00:00:00 UTC
APRIL = MARCH + 31 * 86_400
HOUR = 3600


def _plan(build: str, seed: int = 15) -> list[tuple[int, int, dict]]:
    """(inserted at, created_at, row spec) for the month and the hours around it."""
    rng = random.Random(seed)
    plan = []
    r = Ratios(model_ratio=1.25, completion_ratio=4, cache_ratio=0.5)
    for start in range(MARCH - 2 * HOUR, APRIL + 2 * HOUR, HOUR):
        for _ in range(rng.randint(0, 4)):
            at = start + rng.randrange(HOUR)
            prompt, completion = rng.randint(10, 4000), rng.randint(0, 900)
            spec = {"prompt": prompt, "completion": completion, "model": "gpt-4o",
                    "quota": text_quota(prompt, completion, r), "other": text_other(r)}
            late = rng.random() < 0.05              # another node's clock: written minutes late
            plan.append((at + (rng.randint(60, 400) if late else 0), at, spec))
        if rng.random() < 0.2:                      # two equal calls in the same second
            at = start + rng.randrange(HOUR)
            spec = {"prompt": 7, "completion": 1, "model": "gpt-4o-mini", "quota": 11}
            plan += [(at, at, spec), (at, at, dict(spec))]
        if rng.random() < 0.1:
            at = start + rng.randrange(HOUR)
            plan.append((at, at, {"log_type": 5, "other": {"status_code": 429}}))
        if build != "oneapi" and rng.random() < 0.05:    # an async task, settled later
            at = start + rng.randrange(HOUR)
            task = f"task-{at}"
            plan.append((at, at, {"model": "sora-2", "prompt": 0, "completion": 0,
                                  "quota": 150_000, "other": {"is_task": True,
                                                              "model_price": 0.3}}))
            done = at + rng.randint(60, 5 * HOUR)
            if rng.random() < 0.5:
                plan.append((done, done, {"refund": (task, 150_000)}))
            else:
                plan.append((done, done, {"settle": (task, 150_000, 187_500)}))
    return sorted(plan, key=lambda p: (p[0], p[1]))


def _insert(standin: StandIn, created_at: int, spec: dict) -> None:
    spec = dict(spec)
    if "refund" in spec:
        task, quota = spec["refund"]
        standin.refund(created_at, task, quota)
    elif "settle" in spec:
        task, pre, actual = spec["settle"]
        standin.settlement(created_at, task, pre, actual)
    else:   # a request id as the build writes one: new-api 2025 has none, one-api always
        standin.add(created_at, **spec)


def _platform_net(standin: StandIn, qpu: Decimal) -> tuple[Decimal, Counter]:
    """What the platform charged in March: consumed − refunded quota, and its calls."""
    quota, calls = 0, Counter()
    for r in standin.rows:
        if not MARCH <= r["created_at"] < APRIL:
            continue
        if r["type"] == 6:
            quota -= r["quota"]
        elif r["type"] == 2:
            quota += r["quota"]
            if "task_id" not in r.get("other", ""):
                calls[(r["created_at"], r["model_name"], r["prompt_tokens"], 200)] += 1
        elif r["type"] == 5 and standin.build != "oneapi":
            calls[(r["created_at"], r["model_name"], 0, 429)] += 1
    return Decimal(quota) / qpu, calls


def _admin_export(standin: StandIn, path: Path) -> None:
    """The admin console's log for March, every page, saved as one JSON document."""
    items, p = [], (0 if standin.build == "oneapi" else 1)
    with httpx.Client(base_url=standin.url, headers={"Authorization": ADMIN_TOKEN,
                                                     "New-Api-User": USER_ID}) as http:
        while True:
            body = http.get("/api/log/", params={"p": p, "page_size": 100,
                                                 "start_timestamp": MARCH,
                                                 "end_timestamp": APRIL - 1}).json()
            page = body["data"] if isinstance(body["data"], list) else body["data"]["items"]
            if not page:
                break
            items += page
            p += 1
    path.write_text(json.dumps({"success": True, "data": {"items": items}},
                               ensure_ascii=False), encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("build, qpu", [("newapi", Decimal(1_000_000)),
                                        ("newapi-2025", Decimal(500_000)),
                                        ("oneapi", Decimal(500_000))])
def test_a_month_of_hourly_syncs_and_the_admin_export_equal_the_platform_bill(
        tmp_path, build, qpu):
    standin = StandIn(build=build, quota_per_unit=qpu)
    server, _ = serve(standin)
    plan = _plan(build)
    db = tmp_path / "ledger.duckdb"
    settings = Settings(db=str(db), platform_url=standin.url, platform_token=TOKEN,
                        platform_user_id=USER_ID)
    now = [0]
    # a call finishes while some syncs are reading: new rows shift the pages under the reader
    standin.after_log_page = lambda n: n % 5 == 0 and standin.add(now[0], prompt=1, completion=1)
    try:
        conn = open_ledger(str(db))          # as the dashboard does: one owner, hourly syncs
        client = PlatformClient(standin.url, TOKEN, USER_ID)
        i = 0
        for hour in range(MARCH - HOUR, APRIL + 3 * HOUR, HOUR):
            while i < len(plan) and plan[i][0] < hour:
                _insert(standin, plan[i][1], plan[i][2])
                i += 1
            now[0] = hour
            result = sync_now(conn, settings, now=hour, client=client)
            assert result.status == "ok", (hour, result.message)
        conn.close()
        client.close()
        _admin_export(standin, tmp_path / "admin-export.json")
    finally:
        server.shutdown()
        server.server_close()

    export = run_import(db, tmp_path / "admin-export.json", "newapi", quota_per_unit=qpu)
    assert export.imported == 0 and export.adjustments == 0      # every row already synced
    assert export.duplicates == export.read - export.skipped

    net, platform_calls = _platform_net(standin, qpu)
    with duckdb.connect(str(db), read_only=True) as conn:
        ledger = Counter(conn.execute(
            "SELECT epoch(started_at)::BIGINT, model, input_tokens, status FROM calls "
            "WHERE started_at >= to_timestamp(?) AND started_at < to_timestamp(?)",
            [MARCH, APRIL]).fetchall())
    assert ledger == platform_calls                             # each call exactly once

    out = CliRunner().invoke(app, ["report", "--month", "2026-03", "--format", "json",
                                   "--db", str(db)])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    money = report["money"]
    assert Decimal(money["net_charged"]) == net.quantize(Decimal("0.000001"))
    adjusted = Decimal(money["charged_on_calls"]) + sum(
        Decimal(money[k] or 0) for k in ("adjustments_refund", "adjustments_settlement"))
    assert adjusted == Decimal(money["net_charged"])
    assert report["totals"]["calls"] == sum(platform_calls.values())
    if build != "oneapi":
        assert money["adjustments_refund"] is not None and Decimal(
            money["adjustments_refund"]) < 0
