"""``callmeter prices pull``: the platform's pricing page as sheet rows, priced to the cent, at a
group ratio and quota unit it derived — never a price it could not derive (tests/platform_standin.py
answers /api/pricing as new-api's GetPricing does for an access token: as an anonymous visitor)."""

from __future__ import annotations

import csv
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from platform_logs import Ratios, text_other, text_quota  # noqa: E402
from platform_standin import TOKEN, USER_ID, Fault, StandIn, serve  # noqa: E402

from callmeter.cli import app  # noqa: E402
from ingest.platform import PlatformClient  # noqa: E402
from ingest.sync import sync_now  # noqa: E402
from ledger.config import Settings  # noqa: E402
from ledger.connect import open_ledger  # noqa: E402
from pricing.loader import load_prices  # noqa: E402
from pricing.platform_sheet import platform_prices, pull_prices  # noqa: E402

# The model entries of a new-api /api/pricing answer (model/pricing.go Pricing; floats as the
# platform writes them).
PRICING = {
    "success": True,
    "data": [
        {"model_name": "gpt-4o", "quota_type": 0, "model_ratio": 1.25, "completion_ratio": 4,
         "cache_ratio": 0.5, "model_price": 0, "owner_by": "openai",
         "enable_groups": ["default", "vip"], "supported_endpoint_types": ["openai"]},
        {"model_name": "gpt-4o-c", "quota_type": 1, "model_ratio": 0, "completion_ratio": 0,
         "model_price": 0.02, "enable_groups": ["default", "vip"]},
        {"model_name": "dall-e-3", "quota_type": 1, "model_ratio": 0, "completion_ratio": 0,
         "model_price": 0.04, "enable_groups": ["vip"]},
        {"model_name": "deepseek-chat", "quota_type": 0, "model_ratio": 0.135,
         "completion_ratio": 4, "model_price": 0, "enable_groups": ["all"]},
        {"model_name": "claude-opus-4", "quota_type": 0, "model_ratio": 7.5,
         "completion_ratio": 5, "model_price": 0, "enable_groups": ["svip"]},
    ],
    "group_ratio": {"default": 1, "vip": 0.8},
    "usable_group": {"default": "默认分组", "vip": "VIP"},
}
QPU = Decimal(500_000)

SHEET = ("model,effective_from,input,cached_input,output,request,image,audio_minute,characters,"
         "above_input_tokens,currency\n") + """gpt-4o,2024-10-02,2.5,1.25,10,,,,,,USD
gpt-4o-c,2024-05-13,,,,0.016,,,,,USD
gpt-4o-mini,2024-07-18,0.15,0.075,0.6,,,,,,USD
"""
SOURCES = """model,effective_from,above_input_tokens,source,url,checked_on,note
gpt-4o,2024-10-02,,OpenAI pricing page,https://openai.com,2025-01-01,
"""


def _standin(**kw) -> tuple[StandIn, object]:
    base = dict(pricing=PRICING, group="vip", group_ratios={"default": 1, "vip": 0.8},
                public_groups=("default", "vip"))
    s = StandIn(**(base | kw))
    server, _ = serve(s)
    return s, server


@pytest.fixture
def standin():
    s, server = _standin()
    yield s
    server.shutdown()
    server.server_close()


@pytest.fixture
def ledger(tmp_path):
    db = tmp_path / "ledger.duckdb"
    sheet = tmp_path / "prices.csv"
    sheet.write_text(SHEET)
    (tmp_path / "prices.sources.csv").write_text(SOURCES)
    conn = open_ledger(str(db))
    load_prices(conn, sheet)
    conn.close()
    return db, sheet


def test_ratios_become_dollars_for_the_accounts_group():
    rows, warnings = platform_prices(PRICING, "vip", Decimal("0.8"), QPU)
    got = {r.model: r.prices() for r in rows}
    # ratio 1.25 = $2.50 per 1M input; × group 0.8 = $2.00; output × 4; cache × 0.5
    # cache writes: create_cache_ratio 1.25 when the page has none (GetCreateCacheRatio's
    # default), the 1-hour write 6/3.75 of it (relay/helper/price.go)
    assert got["gpt-4o"] == {"input": Decimal("2.000"), "cached_input": Decimal("1.0000"),
                             "output": Decimal("8.000"), "request": None,
                             "cache_write": Decimal("2.5"), "cache_write_long": Decimal("4")}
    assert got["gpt-4o-c"]["request"] == Decimal("0.016")
    assert got["dall-e-3-c"]["request"] == Decimal("0.032")   # per call: on the -c row
    assert got["deepseek-chat"]["input"] == Decimal("0.216")
    assert got["deepseek-chat"]["output"] == Decimal("0.864")
    assert "claude-opus-4" not in got                          # svip only
    assert warnings == []
    # a site with 1,000,000 quota per US$1: ratio 1 is $1 per 1M tokens, a per-call price stays
    rows, _ = platform_prices(PRICING, "vip", Decimal("0.8"), Decimal(1_000_000))
    got = {r.model: r.prices() for r in rows}
    assert got["gpt-4o"]["input"] == Decimal("1.000") and got["gpt-4o-c"]["request"] == \
        Decimal("0.016")


def test_pull_shows_the_difference_with_the_loaded_prices(standin, ledger):
    db, _ = ledger
    conn = open_ledger(str(db))
    from pricing.platform_sheet import current_prices

    current = current_prices(conn, date(2025, 6, 1))
    conn.close()
    with PlatformClient(standin.url, TOKEN, USER_ID) as client:
        result = pull_prices(client, current=current, today=date(2025, 6, 1))
    assert result.group == "vip" and result.group_ratio == Decimal("0.8")
    assert result.refusal is None and "pricing page" in result.ratio_basis
    assert any("no call of yours in group 'vip' confirms" in w for w in result.warnings)
    kinds = {c.model: c.kind for c in result.changes}
    assert kinds == {"gpt-4o": "changed", "gpt-4o-c": "same", "dall-e-3-c": "new",
                     "deepseek-chat": "new", "gpt-4o-mini": "not-on-platform"}


def _known_calls(standin: StandIn, when: int, group_ratio: float = 0.8,
                 qpu: Decimal = QPU) -> None:
    """Calls charged as new-api's calculateTextQuotaSummary charges them."""
    # (prompt - cache + cache × cache_ratio + completion × completion_ratio) × model_ratio ×
    # group_ratio = (8000 + 2000 + 12000) × 1.25 × 0.8 = 22000 quota = $0.044 at 500,000
    r = Ratios(model_ratio=1.25, completion_ratio=4, cache_ratio=0.5, group_ratio=group_ratio)
    standin.add(when, model="gpt-4o", prompt=12000, completion=3000,
                quota=text_quota(12000, 3000, r, cache=4000, quota_per_unit=qpu),
                other=text_other(r, cache=4000))
    # per call: model_price 0.02 × group 0.8 = $0.016 = 8000 quota
    rc = Ratios(model_price=0.02, model_ratio=0, completion_ratio=0, group_ratio=group_ratio)
    standin.add(when + 1, model="gpt-4o-c", prompt=900, completion=400,
                quota=text_quota(900, 400, rc, quota_per_unit=qpu), other=text_other(rc))
    # an old call, before today: priced by the row then in force
    standin.add(1_735_689_600, model="gpt-4o", prompt=1_000_000, completion=0,
                quota=text_quota(1_000_000, 0, r, quota_per_unit=qpu), other=text_other(r))


def test_applied_sheet_prices_a_known_call_to_the_cent_and_keeps_history(
        tmp_path, standin, ledger):
    db, sheet = ledger
    today = datetime.now(UTC).date()
    midnight = int(datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp())
    _known_calls(standin, max(midnight, int(time.time()) - 120))
    runner = CliRunner()
    args = ["prices", "pull", "--platform", standin.url, "--token", TOKEN, "--user-id", USER_ID,
            "--sheet", str(sheet), "--db", str(db)]
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    assert "changed         gpt-4o: input 2.5 → 2, cached_input 1.25 → 1, output 10 → 8" \
        in shown.output
    assert "new 2, changed 1, same 1, not-on-platform 1" in shown.output
    assert sheet.read_text() == SHEET                      # nothing written without --apply

    applied = runner.invoke(app, args + ["--apply"])
    assert applied.exit_code == 0, applied.output
    assert f"3 row(s) added with effective_from {today}" in applied.output
    rows = list(csv.DictReader(sheet.open()))
    old = list(csv.DictReader(SHEET.splitlines()))
    assert [{k: r[k] for k in old[0]} for r in rows[:3]] == old       # history untouched
    assert {r["cache_write"] for r in rows[:3]} == {""}                # (new columns blank)
    added = {r["model"]: r for r in rows[3:]}
    assert added["gpt-4o"]["input"] == "2" and added["gpt-4o"]["output"] == "8"
    assert added["gpt-4o"]["cached_input"] == "1"
    assert added["dall-e-3-c"]["request"] == "0.032"
    assert {r["effective_from"] for r in rows[3:]} == {today.isoformat()}
    sources = list(csv.DictReader((tmp_path / "prices.sources.csv").open()))
    assert {s["model"] for s in sources[1:]} == {"gpt-4o", "dall-e-3-c", "deepseek-chat"}

    again = runner.invoke(app, args + ["--apply"])           # same day, same prices
    assert "0 row(s) added" in again.output
    assert len(list(csv.DictReader(sheet.open()))) == 6

    settings = Settings(db=str(db), platform_url=standin.url, platform_token=TOKEN,
                        platform_user_id=USER_ID)
    assert sync_now(str(db), settings).status == "ok"
    with duckdb.connect(str(db), read_only=True) as conn:
        got = conn.execute("SELECT model, cost, charged FROM priced_calls "
                           "ORDER BY started_at").fetchall()
    old, token_call, request_call = got
    # 1M input tokens on 2025-01-01 at the row in force then ($2.50), not today's $2.00
    assert old[0] == "gpt-4o" and old[1] == Decimal("2.5")
    assert token_call[0] == "gpt-4o"
    assert round(token_call[1], 2) == round(token_call[2], 2) == Decimal("0.04")
    assert token_call[1] == token_call[2] == Decimal("0.044")
    assert request_call[1] == request_call[2] == Decimal("0.016")


def _pull(standin: StandIn, sheet: Path, db: Path, *extra: str):
    return CliRunner().invoke(app, ["prices", "pull", "--platform", standin.url, "--token",
                                    TOKEN, "--user-id", USER_ID, "--sheet", str(sheet), "--db",
                                    str(db), *extra])


def test_a_special_ratio_the_page_hides_is_taken_from_the_accounts_calls(tmp_path, ledger):
    """The page says vip 0.8 (an access token is an anonymous visitor), but this account is
    charged a special 0.6 (user_group_ratio): its own calls say so, and the sheet follows."""
    db, sheet = ledger
    standin, server = _standin()
    try:
        now = int(time.time()) - 60
        _known_calls(standin, now, group_ratio=0.6)
        shown = _pull(standin, sheet, db)
        assert shown.exit_code == 0, shown.output
        assert "ratio 0.6 from your newest call in group vip" in shown.output
        assert "the pricing page says group 'vip' has ratio 0.8" in shown.output
        applied = _pull(standin, sheet, db, "--apply")
        assert applied.exit_code == 0, applied.output
        settings = Settings(db=str(db), platform_url=standin.url, platform_token=TOKEN,
                            platform_user_id=USER_ID)
        assert sync_now(str(db), settings).status == "ok"
    finally:
        server.shutdown()
        server.server_close()
    with duckdb.connect(str(db), read_only=True) as conn:
        got = conn.execute("SELECT model, cost, charged FROM priced_calls WHERE started_at > "
                           "to_timestamp(?) ORDER BY started_at", [now - 1]).fetchall()
    assert [(m, cost == charged) for m, cost, charged in got] == [("gpt-4o", True),
                                                                   ("gpt-4o-c", True)]


def test_a_private_group_is_never_priced_at_ratio_1(tmp_path, ledger):
    """new-api 2025 lists only public groups to an anonymous visitor: the account's private
    group has no ratio there. Without a call to learn it from, --apply refuses."""
    db, sheet = ledger
    pricing = {"data": [dict(e, enable_groups=[*e["enable_groups"], "enterprise"])
                        for e in PRICING["data"]]}
    standin, server = _standin(build="newapi-2025", group="enterprise", public_groups=(
        "default",), group_ratios={"default": 1, "vip": 0.8, "enterprise": 0.7},
        pricing=pricing)
    try:
        shown = _pull(standin, sheet, db)
        assert shown.exit_code == 0, shown.output
        assert "group enterprise (ratio —" in shown.output
        assert "These prices are not derived" in shown.output
        refused = _pull(standin, sheet, db, "--apply")
        assert refused.exit_code == 2 and "nothing written" in refused.output
        assert "--group-ratio" in refused.output
        assert sheet.read_text() == SHEET
        # one call later, the account's own log says the ratio
        _known_calls(standin, int(time.time()) - 60, group_ratio=0.7)
        applied = _pull(standin, sheet, db, "--apply")
        assert applied.exit_code == 0, applied.output
        added = {r["model"]: r for r in list(csv.DictReader(sheet.open()))[3:]}
        assert added["gpt-4o"]["input"] == "1.75"            # 2 × 1.25 × 0.7
        given = _pull(standin, sheet, db, "--group-ratio", "0.5")
        assert "ratio 0.5 from given with --group-ratio" in given.output
    finally:
        server.shutdown()
        server.server_close()


def test_pull_with_a_bad_token_does_not_guess_the_group(standin, ledger):
    db, sheet = ledger
    with PlatformClient(standin.url, "wrong", USER_ID) as client:
        result = pull_prices(client, today=date(2025, 6, 1))
    assert result.refusal and "account's group is unknown" in result.refusal
    assert {c.model for c in result.changes} >= {"gpt-4o", "deepseek-chat"}
    refused = CliRunner().invoke(app, ["prices", "pull", "--platform", standin.url, "--token",
                                       "wrong", "--user-id", USER_ID, "--sheet", str(sheet),
                                       "--db", str(db), "--apply"])
    assert refused.exit_code == 2 and sheet.read_text() == SHEET


def test_the_quota_unit_is_read_from_the_platform_or_the_pull_refuses(tmp_path, ledger):
    db, sheet = ledger
    standin, server = _standin(quota_per_unit=Decimal(1_000_000))
    try:
        now = int(time.time()) - 60
        _known_calls(standin, now, qpu=Decimal(1_000_000))
        applied = _pull(standin, sheet, db, "--apply")
        assert applied.exit_code == 0, applied.output
        assert "1000000 quota per US$1" in applied.output
        added = {r["model"]: r for r in list(csv.DictReader(sheet.open()))[3:]}
        assert added["gpt-4o"]["input"] == "1"               # 1 × 1.25 × 0.8
        assert "gpt-4o-c" not in added        # a per-call price is US$ already: still 0.016
        settings = Settings(db=str(db), platform_url=standin.url, platform_token=TOKEN,
                            platform_user_id=USER_ID)
        assert sync_now(str(db), settings).status == "ok"
        with duckdb.connect(str(db), read_only=True) as conn:
            got = conn.execute("SELECT cost, charged FROM priced_calls WHERE started_at > "
                               "to_timestamp(?)", [now - 1]).fetchall()
        assert got and all(cost == charged for cost, charged in got)
        standin.fail("/api/status", Fault(404), Fault(404))
        unknown = _pull(standin, sheet, db, "--apply")
        assert unknown.exit_code == 2 and "did not say its quota_per_unit" in unknown.output
    finally:
        server.shutdown()
        server.server_close()


def test_a_claude_call_with_cache_writes_is_priced_as_the_platform_charged_it(tmp_path, ledger):
    """Claude semantics (service/text_quota.go): prompt excludes cache reads and writes; writes
    are charged at create_cache_ratio. After pull --apply and sync, the ledger's cost of such a
    call equals the platform's charge to the quota unit."""
    db, sheet = ledger
    claude = {"model_name": "claude-sonnet-4-5", "quota_type": 0, "model_ratio": 1.5,
              "completion_ratio": 5, "cache_ratio": 0.1, "create_cache_ratio": 1.25,
              "model_price": 0, "enable_groups": ["default", "vip"]}
    pricing = dict(PRICING, data=[*PRICING["data"], claude])
    standin, server = _standin(pricing=pricing)
    try:
        now = int(time.time()) - 60
        _known_calls(standin, now)
        r = Ratios(model_ratio=1.5, completion_ratio=5, cache_ratio=0.1,
                   cache_creation_ratio=1.25, group_ratio=0.8)
        standin.add(now + 2, model="claude-sonnet-4-5", prompt=1200, completion=640,
                    quota=text_quota(1200, 640, r, cache=30_000, cache_write=8_000, claude=True),
                    other=text_other(r, cache=30_000, cache_write=8_000, claude=True,
                                     request_path="/v1/messages"))
        shown = _pull(standin, sheet, db)
        assert "cache_write — → 3, cache_write_long — → 4.8" in shown.output, shown.output
        applied = _pull(standin, sheet, db, "--apply")
        assert applied.exit_code == 0, applied.output
        settings = Settings(db=str(db), platform_url=standin.url, platform_token=TOKEN,
                            platform_user_id=USER_ID)
        assert sync_now(str(db), settings).status == "ok"
    finally:
        server.shutdown()
        server.server_close()
    header = next(csv.reader(sheet.open()))
    assert "cache_write" in header and "cache_write_long" in header   # added to an old sheet
    with duckdb.connect(str(db), read_only=True) as conn:
        got = conn.execute("SELECT cache_write_tokens, cost, charged FROM priced_calls "
                           "WHERE model = 'claude-sonnet-4-5'").fetchall()
    assert len(got) == 1
    writes, cost, charged = got[0]
    assert writes == 8_000
    assert cost == charged
