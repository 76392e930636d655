"""Budgets, run-out dates, robust spikes, new and failing keys, and the webhook (sent once)."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ledger.connect import open_ledger
from pricing.budgets import (
    Budget,
    alerts,
    budget_status,
    delete_budget,
    list_budgets,
    load_budgets_file,
    send_alerts,
    set_budget,
    spikes,
)

TODAY = date(2025, 3, 11)


def add(conn, key, day: date, spend: int, *, status=200, hour=12, tags=None, n=1):
    """``n`` rows of ``spend`` calls on x-c (1.00 per call): ``spend`` money per row."""
    for i in range(n):
        conn.execute(
            "INSERT INTO calls (call_id, source, started_at, key_id, key_hint, endpoint, model, "
            "base_model, billing_mode, status, requests, input_tokens, cached_tokens, "
            "output_tokens, reasoning_tokens, images, characters, audio_seconds, tags) "
            "VALUES (?, 'csv', ?, ?, ?, 'chat', 'x-c', 'x', 'request', ?, ?, 0, 0, 0, 0, 0, 0, "
            "0, ?)",
            [f"{key}/{day}/{hour}/{status}/{i}", f"{day} {hour:02d}:00:00+00", key,
             f"sk-…{key[-4:]}", status, spend, tags or {}])


@pytest.fixture
def conn(tmp_path):
    c = open_ledger(str(tmp_path / "b.duckdb"))
    c.execute("INSERT INTO prices (model, effective_from, request) "
              "VALUES ('x-c', DATE '2020-01-01', 1)")
    # key kA: 5.00 a day from 1 to 10 March, 3.00 so far today
    for d in range(1, 11):
        add(c, "kA", date(2025, 3, d), 5, tags={"team": "search"})
    add(c, "kA", TODAY, 3, tags={"team": "search"})
    yield c
    c.close()


def test_budget_status_and_run_out(conn):
    set_budget(conn, Budget("key", "kA", Decimal(100)))
    set_budget(conn, Budget("tag", "team=search", Decimal(1000)))
    set_budget(conn, Budget("total", "all", Decimal(40)))
    st = budget_status(conn, TODAY).set_index(["scope", "target"])
    a = st.loc[("key", "kA")]
    # as of the last complete day (the 10th): today's 3.00 is not complete
    assert a["spent"] == 50 and a["spent_incl_today"] == 53 and a["burn_per_day"] == 5
    assert a["projected"] == Decimal("155.00")  # 50 + 5 × 21 days (11th to 31st)
    assert a["runs_out_on"] == date(2025, 3, 20)  # 50 left at 5/day: 10 more days
    assert st.loc[("tag", "team=search"), "runs_out_on"] is None
    # already over as of the last complete day
    assert st.loc[("total", "all"), "runs_out_on"] == TODAY - timedelta(days=1)
    kinds = {(x.kind, x.subject) for x in alerts(conn, TODAY)}
    assert ("budget_runs_out", "key:kA") in kinds
    assert ("budget_exceeded", "total:all") in kinds
    assert not any(s == "tag:team=search" for _, s in kinds)


def test_burn_on_the_first_of_the_month_is_last_weeks(tmp_path):
    """Issue 17 bug 5: on day 1 the burn rate is the last 7 complete days (February's), so a
    key spending 12 a day projects a month of 12s and its run-out alert fires."""
    from pricing.forecast import month_forecast
    from pricing.periods import as_of

    c = open_ledger(str(tmp_path / "d1.duckdb"))
    c.execute("INSERT INTO prices (model, effective_from, request) "
              "VALUES ('x-c', DATE '2020-01-01', 1)")
    for d in range(1, 29):
        add(c, "kD", date(2025, 2, d), 12)
    set_budget(c, Budget("key", "kD", Decimal(300)))
    today = date(2025, 3, 1)
    row = budget_status(c, today).iloc[0]
    assert row["spent"] == 0 and row["burn_per_day"] == 12
    assert row["runs_out_on"] == date(2025, 3, 25)  # 300 / 12 = 25 days from the 1st
    # the projection is the key's month-end forecast as of the same day: one figure
    fc = month_forecast(c, as_of(today=today).month, as_of(today=today).day, key="kD")
    assert row["projected"] == fc.total == Decimal("372.00")  # 31 days × 12
    assert ("budget_runs_out", "key:kD") in {(x.kind, x.subject) for x in alerts(c, today)}
    c.close()


def test_budgets_file_replaces_table(conn, tmp_path):
    set_budget(conn, Budget("key", "old", Decimal(1)))
    f = tmp_path / "budgets.csv"
    f.write_text("scope,target,monthly,note\nkey,kA,250.50,search bot\ntag,team=ads,80,\n")
    assert load_budgets_file(conn, str(f)) == 2
    assert list_budgets(conn) == [Budget("key", "kA", Decimal("250.5"), "search bot"),
                                  Budget("tag", "team=ads", Decimal(80))]
    f.write_text("scope,target,monthly\nteam,x,1\n")
    with pytest.raises(ValueError, match="budgets.csv:2"):
        load_budgets_file(conn, str(f))


def test_spike_against_own_baseline(conn):
    # kS: 28 days of 8–12 a day, then 60 on the 10th; kQ: steady 40, then 44 (no spike)
    start = date(2025, 2, 10)
    for i in range(28):
        add(conn, "kS", start + timedelta(days=i), 8 + (i % 5))
        add(conn, "kQ", start + timedelta(days=i), 40)
    add(conn, "kS", date(2025, 3, 10), 60)
    add(conn, "kQ", date(2025, 3, 10), 44)
    found = spikes(conn, date(2025, 3, 10)).set_index("key_id")
    assert list(found.index) == ["kS"]
    assert found.loc["kS", "baseline_median"] == 10 and found.loc["kS", "spend"] == 60
    # a fixed threshold of 50/day would have flagged kQ on any day; the baseline does not


def test_new_and_failing_keys(conn):
    add(conn, "kNew", TODAY, 1, hour=8)
    add(conn, "kBad", TODAY - timedelta(days=3), 1)  # known key, now refused
    add(conn, "kBad", TODAY, 1, status=401, n=6)
    add(conn, "kBad", TODAY, 1)
    got = {(a.kind, a.subject) for a in alerts(conn, TODAY)}
    assert ("new_key", "kNew") in got
    assert ("auth_failing", "kBad") in got
    assert ("new_key", "kA") not in got


class Receiver(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers["Content-Length"])
        Receiver.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook?token=abc", Receiver.bodies
    server.shutdown()
    server.server_close()


def test_webhook_receives_each_alert_once(conn, receiver):
    url, bodies = receiver
    set_budget(conn, Budget("key", "kA", Decimal(50)))
    found = alerts(conn, TODAY)
    assert [a.kind for a in found] == ["budget_exceeded"]
    assert len(send_alerts(conn, found, url)) == 1
    assert send_alerts(conn, alerts(conn, TODAY), url) == []  # same finding: not again
    assert len(bodies) == 1
    [alert] = bodies[0]["alerts"]
    assert alert["kind"] == "budget_exceeded" and alert["subject"] == "key:kA"
    assert alert["details"]["spent"] == "53.000000" and alert["alert_id"].startswith("a1:")
    stored = conn.execute("SELECT * FROM alerts_sent").fetchall()
    assert "token=abc" not in repr(stored)  # only a hash of the URL is kept


def test_label_only_keys_spike_on_their_own(conn):
    """new-api logs name a key by its token name only (no fingerprint). Two such keys were one
    NULL "key" to the spike rule: a steady heavy key hid a light one's spike, and a spike was
    shown under no name. Each is now its own key, ``label:NAME``, from the calls and from the
    daily rollup alike; keyless calls stay apart from both."""
    from pricing import rollup

    start = date(2025, 2, 10)
    for i in range(28):
        add(conn, "kL", start + timedelta(days=i), 8 + (i % 5))
        add(conn, "kH", start + timedelta(days=i), 400)
    add(conn, "kL", date(2025, 3, 10), 60)
    add(conn, "kH", date(2025, 3, 10), 400)
    conn.execute("UPDATE calls SET key_label = CASE key_id WHEN 'kL' THEN 'light-bot' "
                 "ELSE 'heavy-bot' END, key_id = NULL, key_hint = NULL "
                 "WHERE key_id IN ('kL', 'kH')")
    rollup.rebuild(conn)
    for table in (None, rollup.DAILY):
        found = spikes(conn, date(2025, 3, 10), rollup_table=table)
        assert list(found["key_id"]) == ["label:light-bot"], table
        assert found["spend"].iloc[0] == 60 and found["baseline_median"].iloc[0] == 10
        only = spikes(conn, date(2025, 3, 10), rollup_table=table,
                      key_ids=["label:light-bot"])
        assert list(only["key_id"]) == ["label:light-bot"]


def test_alerts_name_label_only_keys_and_keep_keyless_calls_apart(conn):
    """A new new-api token (a label, no fingerprint) is a new key; 401s of calls that sent no
    key are "(no key)", not merged with the label-only keys' calls (whose successes hid them)."""
    add(conn, "kTok", TODAY, 1, hour=9, n=3)
    add(conn, "kAnon", TODAY, 1, status=401, n=6)
    add(conn, "kOld", TODAY - timedelta(days=3), 1, n=20)
    conn.execute("UPDATE calls SET key_label = 'new-token', key_id = NULL, key_hint = NULL "
                 "WHERE key_id = 'kTok'")
    conn.execute("UPDATE calls SET key_label = 'old-token', key_id = NULL, key_hint = NULL "
                 "WHERE key_id = 'kOld'")
    conn.execute("UPDATE calls SET key_id = NULL, key_hint = NULL WHERE key_id = 'kAnon'")
    got = {(a.kind, a.subject): a.message for a in alerts(conn, TODAY)}
    assert ("new_key", "label:new-token") in got
    assert ("new_key", "label:old-token") not in got
    failing = [m for (kind, subject), m in got.items() if kind == "auth_failing"]
    assert failing == ["key (no key): 6 of 6 calls refused (401/403) since yesterday; revoked "
                       "or mistyped key?"]


def test_a_key_budget_named_as_pages_name_a_label_only_key_counts_its_spend(conn, tmp_path):
    """Alerts and pages name a new-api token with no fingerprint ``label:NAME``; a budget set
    (CLI, budgets file) or deleted under that name is the label's, not a key nobody has."""
    add(conn, "kTok", date(2025, 3, 4), 7)
    add(conn, "kTok", date(2025, 3, 5), 2)
    conn.execute("UPDATE calls SET key_label = 'bot-7', key_id = NULL, key_hint = NULL "
                 "WHERE key_id = 'kTok'")
    set_budget(conn, Budget("key", "label:bot-7", Decimal(20)))
    path = tmp_path / "budgets.csv"
    path.write_text("scope,target,monthly\nkey,label:bot-7,20\nkey,kA,100\n")
    for load in (lambda: None, lambda: load_budgets_file(conn, str(path))):
        load()
        assert [(b.scope, b.target) for b in list_budgets(conn) if b.target != "kA"] == [
            ("key", "bot-7")]
        row = budget_status(conn, TODAY).set_index(["scope", "target"]).loc[("key", "bot-7")]
        assert row["spent"] == 9 and row["share_used"] == Decimal(9) / 20
    delete_budget(conn, "key", "label:bot-7")
    assert [b.target for b in list_budgets(conn)] == ["kA"]


# ---- budget status from the daily rollup (issue 20) ------------------------------------------

_ROLLUP_MONTHS = ("2025-02", "2025-03", "2025-04")


def _rollup_call(conn, n: int, started_at: str, model: str | None, **kw) -> None:
    row = dict(call_id=f"budget-rollup-{n}", source="csv", endpoint="chat", status=200,
               requests=1, input_tokens=1000, cached_tokens=0, output_tokens=100,
               reasoning_tokens=0, images=0, characters=0, audio_seconds=0.0,
               usage_source="reported", stream=False, started_at=started_at, model=model,
               base_model=model, billing_mode="token")
    row.update(kw)
    conn.execute(f"INSERT INTO calls ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                 list(row.values()))


def _messy_month(conn, month: str, key: tuple[str, str, str], n0: int) -> int:
    """Calls a real ledger has besides the demo's, in ``month``; returns the next call number."""
    key_id, hint, label = key
    rows: list[tuple[str, str | None, dict]] = [
        # label-only keys (new-api token names), one sharing the demo key's label
        (f"{month}-05 09:00:00+00", "gpt-4o-mini", {"key_label": "team-a", "source": "newapi"}),
        (f"{month}-05 10:00:00+00", "gpt-4o-mini",
         {"key_label": "team-a", "tags": {"team": "finance"}, "requests": 40}),
        (f"{month}-06 10:00:00+00", "gpt-4o", {"key_label": label, "tags": {"team": "search"}}),
        # keyless calls (no Authorization)
        (f"{month}-05 11:00:00+00", "gpt-4o-mini", {}),
        (f"{month}-05 11:30:00+00", "gpt-4o-mini", {"tags": {"team": "search"}}),
        # unknown models: unpriced (cost NULL, never 0), and a call without a model
        (f"{month}-07 12:00:00+00", "mystery-x",
         {"key_id": key_id, "key_hint": hint, "tags": {"team": "search", "app": "bidder"}}),
        (f"{month}-08 12:00:00+00", "acme-llm-9", {"key_label": "team-a", "requests": 3}),
        (f"{month}-08 13:00:00+00", None, {"key_id": key_id, "key_hint": hint,
                                           "endpoint": "models", "input_tokens": 0,
                                           "output_tokens": 0}),
        # failed calls cost 0; a charged one; estimated usage; a per-request bucket
        (f"{month}-09 08:00:00+00", "gpt-4o", {"key_id": key_id, "key_hint": hint,
                                               "status": 500, "charged": Decimal("0.01")}),
        (f"{month}-09 08:00:00+00", "gpt-4o", {"key_id": key_id, "key_hint": hint,
                                               "status": 429, "input_tokens": 0,
                                               "output_tokens": 0}),
        (f"{month}-09 09:00:00+00", "gpt-4o", {"key_id": key_id, "key_hint": hint,
                                               "usage_source": "estimated",
                                               "tags": {"team": "search", "app": "bidder"}}),
        (f"{month}-09 10:00:00+00", "gpt-4o-c", {"key_id": key_id, "key_hint": hint,
                                                 "base_model": "gpt-4o",
                                                 "billing_mode": "request", "requests": 25}),
        # a month's first microsecond and the previous month's last belong to different months
        (f"{month}-01 00:00:00+00", "gpt-4o", {"key_id": key_id, "key_hint": hint}),
        (f"{month}-01 00:00:00+00", "gpt-4o",
         {"key_id": key_id, "key_hint": hint, "started_at_minus_1us": True}),
    ]
    for i, (at, model, kw) in enumerate(rows):
        if kw.pop("started_at_minus_1us", False):
            at = str(conn.execute("SELECT CAST(? AS TIMESTAMPTZ) - INTERVAL 1 MICROSECOND",
                                  [at]).fetchone()[0])
        _rollup_call(conn, n0 + i, at, model, **kw)
    # money that is not a call (budgets count calls' cost only, either way)
    conn.execute("INSERT INTO adjustments (adjustment_id, source, occurred_at, kind, amount, "
                 "key_id, model) VALUES (?, 'newapi', ?, 'refund', -0.004, ?, 'gpt-4o')",
                 [f"budget-rollup-adj-{month}", f"{month}-10 00:00:00+00", key_id])
    return n0 + len(rows)


@pytest.fixture(scope="module")
def rollup_ledger_file(tmp_path_factory):
    """A user-like ledger (the demo plus messy rows over three months, prices loaded, budgets
    of every scope and kind of key reference), with its rollups current; closed."""
    from datetime import UTC, datetime
    from pathlib import Path

    from ingest.demo import build_demo
    from ledger.keys import fingerprinter_for
    from pricing import load_prices, rollup

    db = tmp_path_factory.mktemp("budget_rollup") / "callmeter.duckdb"
    c = open_ledger(str(db))
    build_demo(c, calls=6_000, days=80, seed=11, fingerprinter=fingerprinter_for(str(db)),
               end=datetime(2025, 4, 20, tzinfo=UTC))
    load_prices(c, Path(__file__).resolve().parents[2] / "data" / "prices.csv")
    key = c.execute("SELECT key_id, any_value(key_hint), any_value(key_label) FROM calls "
                    "WHERE key_id IS NOT NULL AND key_label IS NOT NULL GROUP BY 1 "
                    "ORDER BY count(*) DESC LIMIT 1").fetchone()
    other = c.execute("SELECT key_id, any_value(key_hint) FROM calls WHERE key_id <> ? "
                      "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1", [key[0]]).fetchone()
    n = 0
    for month in _ROLLUP_MONTHS:
        n = _messy_month(c, month, key, n)
    tag = c.execute("SELECT e.key || '=' || e.value FROM (SELECT unnest(map_entries(tags)) AS e "
                    "FROM calls WHERE source = 'demo') GROUP BY 1 ORDER BY count(*) DESC "
                    "LIMIT 1").fetchone()[0]
    for b in (Budget("key", key[0], Decimal(50)),            # fingerprint
              Budget("key", other[1], Decimal(20)),          # hint
              Budget("key", key[2], Decimal(30)),            # label of a key and a label-only
              Budget("key", "team-a", Decimal("0.05")),      # label-only key
              Budget("key", "nobody", Decimal(1)),           # no calls at all
              Budget("tag", "team=search", Decimal(5)),
              Budget("tag", "app=bidder", Decimal(5)),
              Budget("tag", tag, Decimal(10)),
              Budget("tag", "team=nowhere", Decimal(1)),
              Budget("total", "all", Decimal(100))):
        set_budget(c, b)
    rollup.refresh(c)
    assert rollup.is_current(c)
    c.close()
    return db


@pytest.fixture
def rollup_ledger(rollup_ledger_file, tmp_path):
    import shutil

    db = tmp_path / "copy.duckdb"
    shutil.copy(rollup_ledger_file, db)
    c = open_ledger(str(db))
    yield c
    c.close()


def _whens():
    from pricing.periods import AsOf

    days = (date(2025, 2, 10), date(2025, 3, 1), date(2025, 3, 5), date(2025, 3, 31),
            date(2025, 4, 9), date(2025, 4, 30), date(2025, 1, 20), date(2025, 2, 28))
    return [AsOf(month=d.replace(day=1), day=d) for d in days]


def _exact(frame):
    """Every value with its exact spelling: a Decimal's scale counts, not only its value."""
    return [{k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


def _through_calls(conn, whens):
    """budget_status with the rollups stale (the state row gone: every reader, the forecast
    too, reads the calls), then the rollups rebuilt."""
    from pricing import budgets, rollup

    conn.execute(f"DELETE FROM {rollup.STATE}")
    assert not rollup.is_current(conn)
    lo, hi = budgets.utc_start(date(2025, 3, 1)), budgets.utc_start(date(2025, 4, 1))
    assert rollup.summed_source(conn, lo, hi)[1] == "started_at"
    out = [_exact(budget_status(conn, when=w)) for w in whens]
    rollup.refresh(conn)
    assert rollup.is_current(conn)
    return out


def test_budget_status_from_the_rollup_is_the_calls_own(rollup_ledger):
    """Every budget (key by fingerprint, hint, label and label-only; tags; total; none with
    calls) as of several days (mid-month, the 1st with a burn window in the month before, month
    ends, a month without calls) gives the same money, to the last digit, from the daily
    rollup as from the calls; and the rollup is the source while it is current."""
    from pricing import budgets, rollup

    conn = rollup_ledger
    whens = _whens()
    lo, hi = budgets.utc_start(date(2025, 3, 1)), budgets.utc_start(date(2025, 4, 1))
    assert rollup.summed_source(conn, lo, hi) == (rollup.DAILY, "day")
    from_rollup = [_exact(budget_status(conn, when=w)) for w in whens]
    from_calls = _through_calls(conn, whens)
    assert from_rollup == from_calls
    # not vacuous: money in every scope with calls; the total and the label-only key are plain
    # sums of priced_calls' cost (unpriced calls and the refund, an adjustment, not in them)
    march = from_calls[3]
    assert all(len(rows) == 10 for rows in from_calls)
    spent = {(r["scope"], r["target"]): Decimal(r["spent"]) for r in march}
    assert all(v > 0 for k, v in spent.items() if k[1] not in ("nobody", "team=nowhere"))
    assert spent[("key", "nobody")] == 0 and spent[("tag", "team=nowhere")] == 0
    total = conn.execute("SELECT sum(cost) FROM priced_calls WHERE started_at >= ? "
                         "AND started_at < ?", [lo, hi]).fetchone()[0]
    assert spent[("total", "all")] == total
    team_a = conn.execute("SELECT sum(cost) FROM priced_calls WHERE started_at >= ? "
                          "AND started_at < ? AND key_label = 'team-a'", [lo, hi]).fetchone()[0]
    assert spent[("key", "team-a")] == team_a


def test_budget_status_reads_the_rollup_and_falls_back_when_stale(rollup_ledger):
    """The rollup path is really taken (a changed rollup row changes the status, so a rollup
    summing other money than the calls would fail the test above); calls appended after it was
    brought up to date make it stale, and the status then reads the calls (it counts them)."""
    from pricing import rollup

    conn = rollup_ledger
    when = _whens()[3]  # as of 31 March
    before = _exact(budget_status(conn, when=when))
    # one rollup row of the month, one microdollar more: read while the rollup is current
    conn.execute(f"UPDATE {rollup.DAILY} SET cost = cost + 0.000001 WHERE rowid = (SELECT "
                 f"min(rowid) FROM {rollup.DAILY} WHERE cost > 0 AND day >= TIMESTAMPTZ "
                 "'2025-03-02 00:00:00+00' AND day < TIMESTAMPTZ '2025-03-31 00:00:00+00')")
    assert rollup.is_current(conn)
    tampered = budget_status(conn, when=when).set_index(["scope", "target"])
    assert tampered.loc[("total", "all"), "spent"] == Decimal(
        next(r["spent"] for r in before if r["target"] == "all")) + Decimal("0.000001")
    rollup.rebuild(conn)
    assert _exact(budget_status(conn, when=when)) == before
    # stale: a call appended without the rollup's append step
    _rollup_call(conn, 10_000, "2025-03-20 12:00:00+00", "gpt-4o-c", base_model="gpt-4o",
                 billing_mode="request", key_label="team-a", requests=1000)
    assert not rollup.is_current(conn)
    stale = budget_status(conn, when=when).set_index(["scope", "target"])
    was = {(r["scope"], r["target"]): Decimal(r["spent"]) for r in before}
    added = stale.loc[("key", "team-a"), "spent"] - was[("key", "team-a")]
    assert added > 0
    assert stale.loc[("total", "all"), "spent"] - was[("total", "all")] == added
    rollup.refresh(conn)  # appends the call: current again, and the same money
    assert rollup.is_current(conn)
    assert _exact(budget_status(conn, when=when)) == _exact(stale.reset_index())
