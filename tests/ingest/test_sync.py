"""``callmeter sync`` against local stand-ins of new-api and one-api consoles, each build as its
code answers (tests/platform_standin.py names the repositories, files and dates read)."""

from __future__ import annotations

import json
import stat
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from platform_standin import BASE_TS, BUILDS, TOKEN, USER_ID, Fault, StandIn, serve  # noqa: E402

from callmeter.cli import app  # noqa: E402
from ingest.platform import (  # noqa: E402
    PlatformClient,
    RetryPolicy,
    load_token,
    save_token,
    token_file,
)
from ingest.sync import fetch_window, last_sync, state_file, sync_now  # noqa: E402
from ledger.config import Settings  # noqa: E402

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05)


@pytest.fixture
def standin(request):
    s = StandIn(build=getattr(request, "param", "newapi"))
    server, _ = serve(s)
    yield s
    server.shutdown()
    server.server_close()


def _settings(db: Path, standin: StandIn, **kw) -> Settings:
    base = dict(db=str(db), platform_url=standin.url, platform_token=TOKEN,
                platform_user_id=USER_ID, sync_overlap_seconds=600)
    base.update(kw)
    return Settings(**base)


def _client(standin: StandIn, token: str | None = TOKEN, user: str | None = USER_ID):
    return PlatformClient(standin.url, token, user, retry=FAST)


def _ledger_calls(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(
            "SELECT epoch(started_at)::BIGINT, model, input_tokens, output_tokens, status, "
            "charged FROM calls WHERE source = 'newapi' ORDER BY 1, 3").fetchall()


def _expected(rows: list[dict], qpu: Decimal = Decimal(500_000)) -> list[tuple]:
    out = []
    for r in rows:
        if r["type"] not in (2, 5) or (r["type"] == 5 and "other" not in r):
            continue                               # one-api's type 5: a channel test
        charged = Decimal(r["quota"]) / qpu
        status = 200 if r["type"] == 2 else json.loads(r["other"]).get("status_code", 500)
        out.append((r["created_at"], r["model_name"], r["prompt_tokens"],
                    r["completion_tokens"], status, charged))
    return sorted(out, key=lambda t: (t[0], t[2]))


def _history(standin: StandIn, n: int, start: int = BASE_TS) -> None:
    """``n`` calls one minute apart with distinct token counts, plus a top-up and an error."""
    for i in range(n):
        standin.add(start + 60 * i, prompt=1000 + i, completion=10 + i % 7)
    standin.add(start + 30, log_type=1, prompt=0, completion=0, model_name="")
    standin.add(start + 90, log_type=5, prompt=1, completion=0,
                other={"status_code": 429})


@pytest.mark.parametrize("standin", BUILDS, indirect=True)
def test_first_sync_brings_every_call_once_and_skips_non_calls(tmp_path, standin):
    _history(standin, 250)
    db = tmp_path / "ledger.duckdb"
    result = sync_now(str(db), _settings(db, standin), now=BASE_TS + 86400)
    assert result.status == "ok", result.message
    calls = 251 if standin.build != "oneapi" else 250       # one-api's type 5 is a test
    assert result.imported == calls and result.duplicates == 0
    assert _ledger_calls(db) == _expected(standin.rows)
    asked = [s.params for s in standin.seen if s.path == "/api/log/self"]
    assert {a["type"] for a in asked} == {"2", "5", "6"}             # refunds too
    end = BASE_TS + 86399                     # frozen a second before the run
    assert all(1 <= int(a["start_timestamp"]) <= int(a["end_timestamp"]) <= end
               for a in asked)
    firsts = [a for a in asked if a["p"] == "0"]   # page 1 on new-api, page 0 on one-api
    assert [(a["type"], a["start_timestamp"], a["end_timestamp"]) for a in firsts] == [
        ("2", "1", str(end)), ("5", "1", str(end)), ("6", "1", str(end))]
    assert {a["page_size"] for a in asked} == {"100"}


def test_one_api_is_paged_from_0_until_an_empty_page(tmp_path):
    """one-api's GetUserLogs: p*ItemsPerPage, 10 rows whatever page_size says, no total."""
    s = StandIn(build="oneapi")
    server, _ = serve(s)
    try:
        _history(s, 25)
        db = tmp_path / "ledger.duckdb"
        result = sync_now(str(db), _settings(db, s), now=BASE_TS + 86400)
    finally:
        server.shutdown()
        server.server_close()
    assert result.status == "ok", result.message
    consume = [x.params["p"] for x in s.seen
               if x.path == "/api/log/self" and x.params["type"] == "2"]
    assert consume == ["0", "1", "2", "3"]          # 10 + 10 + 5, then an empty page
    assert _ledger_calls(db) == _expected(s.rows)


@pytest.mark.parametrize("standin", ["newapi", "newapi-2025"], indirect=True)
def test_rows_arriving_while_paging_are_neither_missed_nor_doubled(tmp_path, standin):
    """New rows land at the top while we read: a naive pager sees rows twice (and on current
    builds their ids, page positions, shift too), and misses a row written late with an
    older created_at (another node's clock)."""
    _history(standin, 230)
    now = BASE_TS + 230 * 60
    end = now - 1
    arrived: list[dict] = []

    def live(pages_served: int) -> None:
        # every answer served, three new calls arrive "now" (after the run's frozen end)
        for k in range(3):
            arrived.append(standin.add(now + 5 + pages_served * 3 + k, prompt=5000 + len(arrived)))
        if pages_served == 1:
            # a log written late: created inside the window, stored with the newest id
            arrived.append(standin.add(end - 45, prompt=7777))

    standin.after_log_page = live
    db = tmp_path / "ledger.duckdb"
    first = sync_now(str(db), _settings(db, standin), now=now)
    assert first.status == "ok", first.message
    in_window = [r for r in standin.rows if r["created_at"] <= end]
    assert _ledger_calls(db) == _expected(in_window)   # the late row included, nothing twice
    assert 7777 in [c[2] for c in _ledger_calls(db)]

    standin.after_log_page = None
    second = sync_now(str(db), _settings(db, standin), now=now + 3600)
    assert second.status == "ok", second.message
    assert second.window_start == end - 600          # overlap: starts 10 minutes back
    assert second.duplicates > 0                     # the overlap came back, dropped by call_id
    assert _ledger_calls(db) == _expected(standin.rows)   # every row, exactly once


@pytest.mark.parametrize("standin", ["newapi", "newapi-2025"], indirect=True)
def test_a_second_with_more_rows_than_a_page_and_identical_rows(tmp_path, standin):
    """250 identical calls in one second (no request id on the 2025 build): paged, read twice
    to be sure, and every one of them is a call."""
    for _ in range(250):
        standin.add(BASE_TS + 10, prompt=12, completion=3, req_id=None)
    _history(standin, 30, start=BASE_TS + 100)
    db = tmp_path / "ledger.duckdb"
    result = sync_now(str(db), _settings(db, standin), now=BASE_TS + 86400)
    assert result.status == "ok", result.message
    assert result.passes >= 2
    assert _ledger_calls(db) == _expected(standin.rows)
    assert len(_ledger_calls(db)) == 250 + 31
    again = sync_now(str(db), _settings(db, standin), since="1", now=BASE_TS + 86400)
    assert again.imported == 0 and again.duplicates == 281


def test_pager_alone_yields_each_row_of_the_window_once(standin):
    _history(standin, 120)
    standin.after_log_page = lambda n: standin.add(BASE_TS + 20_000 + n, prompt=9000 + n)
    with _client(standin) as client:
        items = list(fetch_window(client, 1, BASE_TS + 200 * 60, types=(2,), page_size=25))
    assert len(items) == 120
    assert sorted(i["prompt_tokens"] for i in items) == list(range(1000, 1120))


def test_429_with_retry_after_is_honoured(tmp_path, standin):
    _history(standin, 30)
    standin.fail("/api/log/self", Fault(429, retry_after="1"))
    db = tmp_path / "ledger.duckdb"
    with _client(standin) as client:
        result = sync_now(str(db), _settings(db, standin), client=client, now=BASE_TS + 86400)
    assert result.status == "ok", result.message
    assert result.retries == 1 and result.imported == 31
    seen = [s for s in standin.seen if s.path == "/api/log/self"]
    assert seen[0].status == 429 and seen[1].status == 200
    assert seen[1].at - seen[0].at >= 1.0            # waited as the platform asked


def test_500_mid_paging_then_success_loses_nothing(tmp_path, standin):
    _history(standin, 150)
    db = tmp_path / "ledger.duckdb"

    def break_next_page(pages_served: int) -> None:
        if pages_served == 1:
            standin.fail("/api/log/self", Fault(500), Fault(502))

    standin.after_log_page = break_next_page
    with _client(standin) as client:
        result = sync_now(str(db), _settings(db, standin), client=client, now=BASE_TS + 86400)
    assert result.status == "ok", result.message
    assert result.retries == 2
    assert _ledger_calls(db) == _expected(standin.rows)


def test_platform_down_keeps_rows_already_read_and_retries_the_window_next_time(
        tmp_path, standin):
    _history(standin, 150)
    db = tmp_path / "ledger.duckdb"
    standin.after_log_page = lambda n: n == 2 and standin.fail(
        "/api/log/self", *[Fault(503)] * 4)
    with _client(standin) as client:
        broken = sync_now(str(db), _settings(db, standin), client=client, now=BASE_TS + 86400)
    assert broken.status == "error" and broken.error == "PlatformUnavailable"
    assert "503" in broken.message
    kept = len(_ledger_calls(db))
    assert 0 < kept < 151                            # the slice read before: kept
    standin.after_log_page = None
    again = sync_now(str(db), _settings(db, standin), now=BASE_TS + 86400)
    assert again.window_start == 1                   # the failed window is asked for again
    assert _ledger_calls(db) == _expected(standin.rows)


@pytest.mark.parametrize("token, user, kind, words", [
    (None, USER_ID, "PlatformAuthError", "access token"),          # 401, no token
    ("wrong-token", USER_ID, "PlatformAuthError", "access token"),  # 200 success:false
    (TOKEN, "7", "PlatformAuthError", "user id"),                   # 401, New-Api-User mismatch
])
def test_bad_credentials_say_so_and_change_nothing(tmp_path, standin, token, user, kind, words):
    _history(standin, 5)
    db = tmp_path / "ledger.duckdb"
    result = sync_now(str(db), _settings(db, standin, platform_token=token,
                                         platform_user_id=user), now=BASE_TS + 86400)
    assert result.status == "error" and result.error == kind
    assert words in result.message
    assert not db.exists() or _ledger_calls(db) == []
    state = json.loads(state_file(str(db)).read_text())
    assert "next_start" not in next(iter(state["accounts"].values()))
    assert TOKEN not in state_file(str(db)).read_text()


def test_401_and_403_from_the_platform(tmp_path, standin):
    db = tmp_path / "ledger.duckdb"
    standin.fail("/api/log/self", Fault(401), Fault(403, body={"success": False,
                                                               "message": "用户已被封禁"}))
    first = sync_now(str(db), _settings(db, standin), now=BASE_TS)
    second = sync_now(str(db), _settings(db, standin), now=BASE_TS)
    assert first.error == "PlatformAuthError" and "401" in first.message
    assert second.error == "PlatformForbidden" and "does not allow" in second.message


def test_last_sync_reports_the_latest_run_for_the_dashboard(tmp_path, standin):
    _history(standin, 12)
    db = tmp_path / "ledger.duckdb"
    assert last_sync(str(db)) is None
    sync_now(str(db), _settings(db, standin), now=BASE_TS + 86400)
    with duckdb.connect(str(db)) as conn:      # the dashboard passes its own connection
        run = last_sync(conn)
    assert run is not None and run.status == "ok" and run.rows_added == 13
    assert run.platform == standin.url and run.finished_at


def test_token_is_kept_in_a_0600_file_beside_the_ledger_never_in_it(tmp_path, standin):
    db = tmp_path / "ledger.duckdb"
    where = save_token(str(db), standin.url + "/v1/", TOKEN)
    assert where == str(token_file(str(db)))
    assert stat.S_IMODE(token_file(str(db)).stat().st_mode) == 0o600
    assert load_token(str(db), standin.url) == TOKEN
    _history(standin, 3)
    result = sync_now(str(db), _settings(db, standin, platform_token=None), now=BASE_TS + 86400)
    assert result.status == "ok" and result.imported == 4
    assert TOKEN.encode() not in db.read_bytes()


def test_cli_sync_incremental_and_bad_token(tmp_path, standin):
    _history(standin, 40)
    db = tmp_path / "ledger.duckdb"
    runner = CliRunner()
    args = ["sync", "--platform", standin.url, "--user-id", USER_ID, "--db", str(db)]
    ok = runner.invoke(app, args, env={"CALLMETER_PLATFORM_TOKEN": TOKEN})
    assert ok.exit_code == 0, ok.output
    assert "imported 41" in ok.output and TOKEN not in ok.output
    again = runner.invoke(app, args, env={"CALLMETER_PLATFORM_TOKEN": TOKEN})
    assert again.exit_code == 0 and "imported 0" in again.output
    bad = runner.invoke(app, args + ["--token", "nope"], env={"CALLMETER_PLATFORM_TOKEN": ""})
    assert bad.exit_code == 2
    assert "access token" in bad.output and "nope" not in bad.output


def test_settings_defaults_are_safe():
    s = replace(Settings(), platform_url=None)
    with pytest.raises(Exception, match="platform URL"):
        sync_now("unused.duckdb", s)


def test_ledger_held_by_another_process_rows_go_to_the_spool(tmp_path, standin):
    from importers_helpers import held_ledger

    from ingest.loader import load_spool
    from ledger.config import spool_dir
    from ledger.connect import open_ledger

    _history(standin, 20)
    db = tmp_path / "ledger.duckdb"
    open_ledger(str(db)).close()
    with held_ledger(db):
        result = sync_now(str(db), _settings(db, standin), now=BASE_TS + 86400)
    assert result.status == "ok", result.message
    assert result.queued == 21 and result.imported == 0
    conn = open_ledger(str(db))
    try:
        assert load_spool(conn, spool_dir(str(db))).inserted == 21
    finally:
        conn.close()
    assert _ledger_calls(db) == _expected(standin.rows)
    again = sync_now(str(db), _settings(db, standin), now=BASE_TS + 86400 + 60)
    assert again.window_start == BASE_TS + 86399 - 600 and again.imported == 0


def test_a_fork_that_ignores_p_is_read_anyway_or_refused_not_looped(tmp_path):
    """Current new-api is read in slices that each fit one answer, so `p` is never needed;
    a bare-list build that ignores `p` would repeat its first page forever: refused."""
    for build, ok in (("newapi", True), ("oneapi", False)):
        s = StandIn(build=build, ignore_paging=True)
        server, _ = serve(s)
        try:
            _history(s, 230)
            db = tmp_path / f"{build}.duckdb"
            result = sync_now(str(db), _settings(db, s), now=BASE_TS + 86400)
        finally:
            server.shutdown()
            server.server_close()
        if ok:
            assert result.status == "ok" and _ledger_calls(db) == _expected(s.rows)
        else:
            assert result.status == "error" and "ignores `p`" in result.message
            assert len(_ledger_calls(db)) == 10      # the one page it serves, kept
            again = sync_now(str(db), _settings(db, s), now=BASE_TS + 86400)
            assert again.window_start == 1           # not advanced past rows never read


def test_refunds_are_fetched_and_kept_as_adjustments(tmp_path, standin):
    _history(standin, 10)
    standin.add(BASE_TS + 200, model="sora-2", prompt=0, completion=0, quota=150_000,
                other={"is_task": True, "model_price": 0.3})
    standin.refund(BASE_TS + 900, "task-1", 150_000)
    standin.settlement(BASE_TS + 950, "task-2", 50_000, 62_500, model="veo-3")
    db = tmp_path / "ledger.duckdb"
    result = sync_now(str(db), _settings(db, standin), now=BASE_TS + 86400)
    assert result.status == "ok" and result.adjustments == 2
    with duckdb.connect(str(db), read_only=True) as conn:
        adj = conn.execute("SELECT kind, amount, task_id FROM adjustments ORDER BY 1").fetchall()
        net = conn.execute("SELECT (SELECT sum(charged) FROM calls) + "
                           "(SELECT sum(amount) FROM adjustments)").fetchone()[0]
    assert adj == [("refund", Decimal("-0.3"), "task-1"),
                   ("settlement", Decimal("0.025"), "task-2")]
    quota = sum(r["quota"] * {2: 1, 6: -1}.get(r["type"], 0) for r in standin.rows)
    assert net == Decimal(quota) / 500_000


def test_quota_per_unit_comes_from_the_platform(tmp_path):
    s = StandIn(quota_per_unit=Decimal(1_000_000))
    server, _ = serve(s)
    try:
        _history(s, 5)
        db = tmp_path / "ledger.duckdb"
        result = sync_now(str(db), _settings(db, s), now=BASE_TS + 86400)
        assert result.status == "ok" and result.quota_per_unit == "1000000"
        assert _ledger_calls(db) == _expected(s.rows, Decimal(1_000_000))
        other = tmp_path / "other.duckdb"
        told = sync_now(str(other), _settings(other, s, quota_per_unit=Decimal(500_000)),
                        now=BASE_TS + 86400)
        assert any("publishes quota_per_unit 1,000,000" in n for n in told.notes)
        s.fail("/api/status", *[Fault(404)] * 1)
        third = tmp_path / "third.duckdb"
        unknown = sync_now(str(third), _settings(third, s), now=BASE_TS + 86400)
        assert unknown.status == "ok" and unknown.quota_per_unit == "500000"
        assert any("did not say its quota_per_unit" in n for n in unknown.notes)
    finally:
        server.shutdown()
        server.server_close()
