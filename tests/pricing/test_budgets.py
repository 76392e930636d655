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
