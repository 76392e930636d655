"""Break-even (the Billing page) and the month-end forecast (Key detail, Finance) are exact
however they are read: from the daily or hourly rollup when it is current, they equal the same
figures summed over ``priced_calls`` call by call, on a user-like ledger — the demo plus
keyless calls, label-only keys, tags, unknown and unpriced models, failed calls, ``-c``
per-request calls, a row without ``requests``, cache writes, calls that one variant has no
price for in the same rollup row as calls priced both ways, a price that changes mid-month and
a per-request price that starts mid-month, over several months. Checked with the rollup
current, after calls were appended to it, with it stale, and with an older rollup that lacks
break-even's columns (the calls are read then)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from dashboard import queries
from ingest.demo import build_demo
from ledger.connect import open_ledger
from ledger.keys import fingerprinter_for
from pricing import break_even_tokens, load_prices, rollup
from pricing.forecast import daily_spend, month_forecast
from pricing.periods import AsOf, utc_bound

ROOT = Path(__file__).resolve().parents[2]
MONTHS = ("2025-02", "2025-03", "2025-04")
# gpt-4o-mini's prices change on the 16th of March; acme-chat is priced per token all along
# and per request only from the 12th of March (before that it is not priced both ways)
EXTRA_PRICES = """gpt-4o-mini,2025-03-16,0.2,0.1,0.8,,,,,,USD,,
gpt-4o-mini-c,2025-03-16,,,,0.0007,,,,,USD,,
acme-chat,2025-01-01,0.5,,1.5,,,,,,USD,,
acme-chat-c,2025-03-12,,,,0.002,,,,,USD,,
"""
BASE_MODELS = (None, "gpt-4o", "gpt-4o-mini", "acme-chat", "claude-3-7-sonnet", "mystery-x")
_ids = itertools.count()


def add_call(conn, started_at: str, model: str | None, **kw) -> None:
    row = dict(call_id=f"p{next(_ids)}", source="csv", endpoint="chat", status=200, requests=1,
               input_tokens=1000, cached_tokens=0, output_tokens=100, reasoning_tokens=0,
               images=0, characters=0, audio_seconds=0.0, usage_source="reported",
               stream=False, started_at=started_at, model=model,
               base_model=model[:-2] if model and model.endswith("-c") else model,
               billing_mode="request" if model and model.endswith("-c") else "token")
    row.update(kw)
    conn.execute(f"INSERT INTO calls ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                 list(row.values()))


def messy_rows(conn, month: str, key: tuple[str, str]) -> None:
    """Calls a real ledger has besides clean proxy traffic, in ``month`` (YYYY-MM)."""
    key_id, hint = key
    for day in ("05", "14", "20"):
        d = f"{month}-{day}"
        # label-only keys (new-api token names, no fingerprint) and keyless calls
        for label in ("team-a", "ops-bot", "team-a"):
            add_call(conn, f"{d} 09:00:00+00", "gpt-4o-mini", key_label=label, source="newapi")
        add_call(conn, f"{d} 09:10:00+00", "gpt-4o-mini-c", key_label="team-a", requests=40,
                 tags={"team": "finance"})
        add_call(conn, f"{d} 09:20:00+00", "gpt-4o-mini", key_label="team-a", requests=None)
        add_call(conn, f"{d} 11:00:00+00", "gpt-4o-mini")
        add_call(conn, f"{d} 11:30:00+00", "gpt-4o-mini-c")
        # priced per token all along, per request only from mid-March
        add_call(conn, f"{d} 12:00:00+00", "acme-chat", key_id=key_id, key_hint=hint,
                 input_tokens=4000, output_tokens=800, tags={"team": "search"})
        # one rollup row (hour, key, model, status, tags...) holding calls priced both ways
        # and one with an image, which gpt-4o has no per-token price for (per request it is
        # priced, so its cost is known and it is not apart as unpriced; per token it is)
        for model, images in itertools.product(("gpt-4o-c", "gpt-4o"), (0, 1, 0)):
            add_call(conn, f"{d} 13:15:00+00", model, key_id=key_id, key_hint=hint,
                     images=images, tags={"team": "search"})
        add_call(conn, f"{d} 13:45:00+00", "gpt-4o-c", key_id=key_id, key_hint=hint,
                 requests=25, input_tokens=30_000, output_tokens=600)
        # failed calls, an unknown model, a call without a model, cache writes
        add_call(conn, f"{d} 14:00:00+00", "gpt-4o", key_id=key_id, key_hint=hint, status=500)
        add_call(conn, f"{d} 14:00:00+00", "gpt-4o-c", key_label="ops-bot", status=429,
                 input_tokens=0, output_tokens=0)
        add_call(conn, f"{d} 15:00:00+00", "mystery-x", key_id=key_id, key_hint=hint,
                 tags={"team": "search", "app": "bidder"})
        add_call(conn, f"{d} 15:30:00+00", None, key_id=key_id, key_hint=hint,
                 endpoint="models", input_tokens=0, output_tokens=0)
        add_call(conn, f"{d} 16:00:00+00", "claude-3-7-sonnet", key_label="ops-bot",
                 input_tokens=9000, cached_tokens=3000, cache_write_tokens=2000,
                 output_tokens=700)
    # the month's first microsecond, and a half-hour-offset boundary's neighbour
    add_call(conn, f"{month}-01 00:00:00+00", "gpt-4o", key_id=key_id, key_hint=hint)
    add_call(conn, f"{month}-09 18:29:59+00", "gpt-4o", key_id=key_id, key_hint=hint)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pages_exact")
    db = tmp / "callmeter.duckdb"
    conn = open_ledger(str(db))
    build_demo(conn, calls=20_000, days=80, seed=11, fingerprinter=fingerprinter_for(str(db)),
               end=datetime(2025, 4, 20, tzinfo=UTC))
    sheet = tmp / "prices.csv"
    sheet.write_text((ROOT / "data" / "prices.csv").read_text() + EXTRA_PRICES)
    load_prices(conn, sheet)
    for month in MONTHS:
        messy_rows(conn, month, demo_key(conn))
    rollup.refresh(conn)
    yield conn
    conn.close()


def demo_key(conn, rank: int = 0) -> tuple[str, str]:
    row = conn.execute("SELECT key_id, any_value(key_hint) FROM calls WHERE key_id IS NOT NULL "
                       "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1 OFFSET ?", [rank]).fetchone()
    return row[0], row[1]


@contextmanager
def calls_only() -> Iterator[None]:
    """The raw path: every reader sees the rollup as stale and sums ``priced_calls``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rollup, "is_current", lambda conn: False)
        yield


def at(day: str, tz: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), ZoneInfo(tz))


# [since, until) as a page or the CLI passes them, with the source each is read from
PERIODS = (
    ((None, None), rollup.DAILY),
    (("2025-03-01", "2025-04-01"), rollup.DAILY),
    ((date(2025, 2, 10), date(2025, 4, 21)), rollup.DAILY),
    ((at("2025-03-01", "Europe/Berlin"), at("2025-04-01", "Europe/Berlin")), rollup.TABLE),
    ((at("2025-02-03", "America/New_York"), at("2025-03-10", "America/New_York")),
     rollup.TABLE),
    ((at("2025-03-01", "Asia/Kolkata"), at("2025-04-01", "Asia/Kolkata")), None),
    ((datetime(2025, 3, 9, 18, tzinfo=UTC), None), rollup.TABLE),
    ((datetime(2025, 3, 9, 18, 30, tzinfo=UTC), None), None),
)


def break_even_cases(conn) -> Iterator[dict]:
    """Every base model's row, overall and per key, for every period and key filter (a base
    model only narrows the same groups: a few of them are asked for too)."""
    key_id, _ = demo_key(conn)
    for (since, until), _src in PERIODS:
        period = dict(since=since, until=until)
        key_filters = (None, (key_id,), ("label:team-a",), ("team-a",), ())
        for by_key, keys in itertools.product((False, True), key_filters):
            yield dict(base_model=None, by_key=by_key, key_ids=keys, **period)
        for base_model in BASE_MODELS[1:]:
            yield dict(base_model=base_model, by_key=True, key_ids=None, **period)


def assert_break_even_exact(conn) -> None:
    assert rollup.is_current(conn)
    for (since, until), src in PERIODS:
        picked = rollup.period_source(conn, utc_bound(since), utc_bound(until))
        assert (picked and picked[0]) == src, (since, until)
    compared = 0
    for case in break_even_cases(conn):
        got = break_even_tokens(conn, **case)
        with calls_only():
            want = break_even_tokens(conn, **case)
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=str(case))
        compared += len(got)
    assert compared > 400  # most cases have rows to compare


def forecast_cases(conn) -> Iterator[dict]:
    key_id, hint = demo_key(conn)
    scopes = [dict(key=k) for k in (None, key_id, hint, "team-a", "ops-bot", "nobody")]
    scopes += [dict(tag="team=search"), dict(tag="team=finance"),
               dict(key=key_id, tag="team=search")]
    for month in MONTHS:
        first = date.fromisoformat(f"{month}-01")
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        # mid-month in every month; March also as of its last day, of the day before it
        # begins and of the default (yesterday, long after it: its last day)
        days = [first + timedelta(days=13)]
        if month == "2025-03":
            days += [last, first - timedelta(days=1), None]
        for as_of, scope in itertools.product(days, scopes):
            yield dict(month=month, as_of=as_of, **scope)


def assert_same_forecast(got, want, case: object) -> None:
    for name in ("month", "as_of", "spent", "expected_rest", "total", "low", "high", "level",
                 "method"):
        assert getattr(got, name) == getattr(want, name), (name, case)
    pd.testing.assert_frame_equal(got.daily, want.daily, check_exact=True, obj=str(case))


class _Ledger:
    """What the dashboard's query layer needs of its ledger: a cursor."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def cursor(self):
        return self.conn.cursor()


def assert_forecast_exact(conn) -> None:
    assert rollup.is_current(conn)
    spent = Decimal(0)
    for case in forecast_cases(conn):
        got = month_forecast(conn, **case)
        with calls_only():
            want = month_forecast(conn, **case)
        assert_same_forecast(got, want, case)
        spent += got.spent
    assert spent > 0
    key_id, hint = demo_key(conn)
    for key, tag in ((None, None), (key_id, None), (hint, None), ("team-a", None),
                     (None, "team=search")):
        got_days = daily_spend(conn, date(2025, 1, 20), date(2025, 4, 22), key=key, tag=tag)
        with calls_only():
            want_days = daily_spend(conn, date(2025, 1, 20), date(2025, 4, 22), key=key,
                                    tag=tag)
        pd.testing.assert_frame_equal(got_days, want_days, check_exact=True)
    # the Key detail page names a label-only key ``label:NAME``
    page = queries.month_forecast.__wrapped__(_Ledger(conn), "marker",
                                              AsOf(date(2025, 3, 1), date(2025, 3, 14)),
                                              "label:team-a")
    with calls_only():
        want = month_forecast(conn, "2025-03", as_of=date(2025, 3, 14), key="team-a")
    assert (page["spent"], page["total"], page["low"], page["high"]) == \
        (want.spent, want.total, want.low, want.high) and want.spent > 0
    pd.testing.assert_frame_equal(page["daily"], want.daily, check_exact=True)


def test_break_even_from_the_rollup_is_exact(ledger):
    # a rollup row mixes calls priced both ways with calls one variant has no price for
    mixed = ledger.execute(
        f"SELECT count(*) FROM {rollup.DAILY} WHERE coalesce(status, 200) < 400 "
        "AND both_priced_rows > 0 AND both_priced_rows < call_rows").fetchone()[0]
    assert mixed > 0
    assert_break_even_exact(ledger)


def test_forecast_from_the_rollup_is_exact(ledger):
    assert_forecast_exact(ledger)


def test_figures_against_plain_sql(ledger):
    """Figures a user checks by hand, from SQL that shares nothing with the engines."""
    march = "started_at >= '2025-03-01 00:00:00+00' AND started_at < '2025-04-01 00:00:00+00'"
    calls, token_cost, request_cost = ledger.execute(
        f"SELECT sum(coalesce(requests, 1)), sum(cost_as_token), sum(cost_as_request) "
        f"FROM priced_calls WHERE {march} AND base_model = 'gpt-4o' AND coalesce(status, 200) "
        "< 400 AND cost_as_token IS NOT NULL AND cost_as_request IS NOT NULL").fetchone()
    row = break_even_tokens(ledger, "gpt-4o", since="2025-03-01", until="2025-04-01")
    assert (row["calls"].item(), row["token_cost"].item(), row["request_cost"].item()) == \
        (calls, token_cost, request_cost)
    # acme-chat has a per-request price only from the 12th of March: the 14th and the 20th
    acme = break_even_tokens(ledger, "acme-chat", since="2025-03-01", until="2025-04-01")
    assert acme["calls"].tolist() == [2]
    assert break_even_tokens(ledger, "acme-chat", since="2025-02-01", until="2025-03-01").empty
    # the spend of a label-only key on a day, as the forecast counts it
    day = ledger.execute(
        "SELECT sum(cost) FROM priced_calls WHERE key_label = 'team-a' AND started_at >= "
        "'2025-03-14 00:00:00+00' AND started_at < '2025-03-15 00:00:00+00'").fetchone()[0]
    spend = daily_spend(ledger, date(2025, 3, 14), date(2025, 3, 15), key="team-a")
    assert spend["spend"].tolist() == [day] and day > 0


def test_break_even_of_a_label_only_key_as_the_sidebar_names_it(ledger):
    """The Billing page passes ``label:NAME`` for a label-only key: its break-even is its own
    calls', and per key each label-only key is a row of its own (not one None key with the
    other label-only keys and the keyless calls)."""
    march = "started_at >= '2025-03-01 00:00:00+00' AND started_at < '2025-04-01 00:00:00+00'"
    both = ("coalesce(status, 200) < 400 AND cost_as_token IS NOT NULL "
            "AND cost_as_request IS NOT NULL AND base_model = 'gpt-4o-mini'")
    want = {label: ledger.execute(
        f"SELECT sum(coalesce(requests, 1)), sum(cost_as_token), sum(cost_as_request) "
        f"FROM priced_calls WHERE {march} AND {both} AND key_id IS NULL AND "
        f"key_label IS NOT DISTINCT FROM ?", [label]).fetchone() for label in ("team-a", None)}
    assert want["team-a"][0] > 0 and want[None][0] > 0
    for read in (contextmanager(lambda: iter([None])), calls_only):
        with read():
            row = break_even_tokens(ledger, "gpt-4o-mini", since="2025-03-01",
                                    until="2025-04-01", key_ids=["label:team-a"])
            per_key = break_even_tokens(ledger, "gpt-4o-mini", since="2025-03-01",
                                        until="2025-04-01", by_key=True)
        assert (row["calls"].item(), row["token_cost"].item(), row["request_cost"].item()) \
            == want["team-a"]
        by_ref = {None if pd.isna(k) else k: (r.calls, r.token_cost, r.request_cost)
                  for k, r in zip(per_key["key_id"], per_key.itertuples(), strict=True)}
        assert by_ref["label:team-a"] == want["team-a"]
        assert by_ref[None] == want[None]               # the keyless calls only
        assert "label:ops-bot" not in by_ref or by_ref["label:ops-bot"] != want["team-a"]


def test_calls_appended_to_the_rollup_keep_both_exact(ledger):
    messy_rows(ledger, "2025-03", demo_key(ledger, 1))   # the same groups again, and new ones
    assert rollup.append_new_calls(ledger)
    assert_break_even_exact(ledger)
    assert_forecast_exact(ledger)


def test_a_stale_rollup_is_not_read(ledger):
    before = month_forecast(ledger, "2025-04", as_of=date(2025, 4, 20)).spent
    messy_rows(ledger, "2025-04", demo_key(ledger, 2))   # not appended: the rollup lags
    assert not rollup.is_current(ledger)
    assert rollup.period_source(ledger, None, None) is None
    assert month_forecast(ledger, "2025-04", as_of=date(2025, 4, 20)).spent > before
    stale = [break_even_tokens(ledger, **case) for case in break_even_cases(ledger)]
    forecasts = [month_forecast(ledger, **case) for case in forecast_cases(ledger)]
    rollup.refresh(ledger)                               # the same figures from the rollup
    for case, want in zip(break_even_cases(ledger), stale, strict=True):
        pd.testing.assert_frame_equal(break_even_tokens(ledger, **case), want,
                                      check_exact=True, obj=str(case))
    for case, want_fc in zip(forecast_cases(ledger), forecasts, strict=True):
        assert_same_forecast(month_forecast(ledger, **case), want_fc, case)


def test_an_older_rollup_without_break_even_sums_is_rebuilt(ledger):
    from pricing.schema import m014_rollup_break_even

    ledger.execute(f"ALTER TABLE {rollup.DAILY} DROP COLUMN both_priced_token_cost")
    assert not rollup.is_current(ledger)            # read from the calls until rebuilt
    got = break_even_tokens(ledger, "gpt-4o", by_key=True)
    m014_rollup_break_even(ledger)
    assert rollup.is_current(ledger)
    pd.testing.assert_frame_equal(break_even_tokens(ledger, "gpt-4o", by_key=True), got,
                                  check_exact=True)
