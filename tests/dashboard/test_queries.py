"""The query layer: the hourly, daily and distribution rollups agree exactly with raw SQL, and
stay fresh."""

from __future__ import annotations

from datetime import date

import pytest
from dashboard_ledger import PRICES_SQL, build_ledger

from dashboard import queries
from dashboard.connection import open_dashboard_ledger
from dashboard.filters import Filters
from ledger.config import Settings
from pricing import rollup

NAMES = (*queries.MAIN_MEASURES, "charged", "charged_calls", "cost_where_charged",
         "unpriced_tokens", "streamed", "token_cost", "request_cost", "e401", "e429", "e5xx",
         "no_token_price_calls", "no_request_price_calls", "cost_as_token", "cost_as_request",
         "first_seen", "last_seen", "latency_sum", "latency_n")
FILTERS = [
    Filters(date(2025, 3, 1), date(2025, 3, 31)),
    Filters(date(2025, 2, 3), date(2025, 3, 9), tz="Asia/Tokyo"),
    Filters(date(2025, 3, 1), date(2025, 3, 31), tz="America/New_York", keys=("k1:aaa",)),
    Filters(date(2025, 2, 1), date(2025, 3, 31), tags=("team=ads",), modes=("token",)),
    Filters(date(2025, 2, 1), date(2025, 3, 31), models=("gpt-4o-c", "mystery-model")),
    Filters(date(2025, 2, 1), date(2025, 3, 31), scope_keys=()),
]
GROUPS = (None, "key", "model", "billing_mode", "status", "tag:team")


def _open(path):
    led = open_dashboard_ledger(Settings(db=build_ledger(path)))
    led.refresh(force=True)
    return led


@pytest.fixture
def ledger(tmp_path):
    led = _open(tmp_path / "q.duckdb")
    yield led
    led.conn.close()


@pytest.fixture(scope="module")
def shared_ledger(tmp_path_factory):
    led = _open(tmp_path_factory.mktemp("rollup") / "q.duckdb")
    yield led
    led.conn.close()


def both_ways(led, f: Filters, by: str | None, rollup_src: str = queries.ROLLUP
              ) -> tuple[list, list]:
    out = []
    for src in (rollup_src, queries.RAW):
        p = {"tz": f.tz}
        g = queries.group_expr(by, p) + " AS g, " if by else ""
        sql = (f"SELECT {g}{queries.measures(NAMES, src)}, "
               f"{queries.bucket_expr('day', src)} AS day FROM {src} "
               f"WHERE {queries.where(f, src, p)} GROUP BY ALL ORDER BY ALL")
        out.append(led.cursor().execute(sql, p).fetchall())
    return out[0], out[1]


@pytest.mark.parametrize("f", FILTERS)
@pytest.mark.parametrize("by", GROUPS)
def test_rollup_equals_raw_sql_exactly(shared_ledger, f, by):
    from_rollup, from_raw = both_ways(shared_ledger, f, by)
    assert from_rollup == from_raw
    if f.scope_keys == ():
        assert from_raw == []  # an owner without keys sees nothing
    else:
        assert from_raw  # the cases are not vacuous


@pytest.mark.parametrize("f", [f for f in FILTERS if queries.source_for(f) == queries.DAILY])
@pytest.mark.parametrize("by", GROUPS)
def test_daily_rollup_equals_raw_sql_exactly(shared_ledger, f, by):
    from_daily, from_raw = both_ways(shared_ledger, f, by, queries.DAILY)
    assert from_daily == from_raw


def test_new_calls_are_appended_to_the_rollup(ledger):
    before = ledger.cursor().execute(f"SELECT count(*) FROM {rollup.TABLE}").fetchone()[0]
    ledger.cursor().execute(
        "INSERT INTO calls (call_id, source, started_at, key_id, endpoint, model, base_model, "
        "billing_mode, stream, status, requests, input_tokens, cached_tokens, output_tokens, "
        "reasoning_tokens) VALUES ('new-1', 'csv', TIMESTAMPTZ '2025-03-05 10:15:00+00', "
        "'k1:aaa', 'chat', 'gpt-4o', 'gpt-4o', 'token', false, 200, 1, 1000, 0, 1000, 0)")
    marker = ledger.refresh(force=True)
    after = ledger.cursor().execute(f"SELECT count(*) FROM {rollup.TABLE}").fetchone()[0]
    assert after == before + 1  # appended, not rebuilt
    assert marker.startswith("601:")
    from_rollup, from_raw = both_ways(ledger, FILTERS[0], "key")
    assert from_rollup == from_raw


def test_a_new_price_sheet_rebuilds_the_rollup(ledger):
    f = FILTERS[0]
    old = queries.totals(ledger, ledger.marker, f)["cost"]
    ledger.cursor().execute("DELETE FROM prices")
    ledger.cursor().execute(PRICES_SQL.replace("2.5, 1.25, 10", "5, 2.5, 20"))
    marker = ledger.refresh(force=True)
    new = queries.totals(ledger, marker, f)
    from_rollup, from_raw = both_ways(ledger, f, "model")
    assert from_rollup == from_raw
    assert new["cost"] != old


def test_group_by_outside_the_allowlist_is_refused():
    with pytest.raises(ValueError):
        queries.group_expr("key_id; DROP TABLE calls", {})


def test_filter_values_are_bound_never_formatted(ledger):
    evil = "x' OR '1'='1"
    f = Filters(date(2025, 3, 1), date(2025, 3, 31), keys=(evil,), tags=(f"{evil}={evil}",))
    p: dict = {}
    clause = queries.where(f, queries.RAW, p)
    assert evil not in clause and evil in p.values()
    assert queries.totals(ledger, ledger.marker, f)["calls"] == 0


def test_half_hour_zones_read_raw_calls():
    assert queries.source_for(Filters(date(2025, 3, 1), date(2025, 3, 2))) == queries.DAILY
    assert queries.source_for(Filters(date(2025, 3, 1), date(2025, 3, 2)),
                              hours=True) == queries.ROLLUP
    tokyo = Filters(date(2025, 3, 1), date(2025, 3, 2), tz="Asia/Tokyo")
    assert queries.source_for(tokyo) == queries.ROLLUP
    kolkata = Filters(date(2025, 3, 1), date(2025, 3, 2), tz="Asia/Kolkata")
    assert queries.source_for(kolkata) == queries.RAW


def test_billing_counts_are_zero_not_none_where_a_mode_has_no_calls(shared_ledger):
    f = Filters(date(2025, 3, 1), date(2025, 3, 31), modes=("token",))
    df = queries.billing_comparison.__wrapped__(shared_ledger, shared_ledger.marker, f, ("key",))
    assert list(df["request_calls"]) == [0, 0]
    assert all(n > 0 for n in df["token_calls"])


def test_keys_page_spikes_are_the_alerts_spikes(tmp_path):
    """The Keys page (daily rollup) and `recommend --alerts` (priced calls) flag the same keys
    with the same figures: one statistic, pricing.spikes."""
    from datetime import timedelta

    from ledger.connect import open_ledger
    from pricing.budgets import alerts

    path = str(tmp_path / "s.duckdb")
    conn = open_ledger(path)
    conn.execute("INSERT INTO prices (model, effective_from, request) "
                 "VALUES ('x-c', DATE '2020-01-01', 1)")
    spend = {("kS", date(2025, 3, 10)): 60, ("kQ", date(2025, 3, 10)): 44,
             ("kJ", date(2025, 3, 10)): 16}  # kJ: 12 a day → +4: under the 1.4826 MAD rule
    for i in range(28):
        day = date(2025, 2, 10) + timedelta(days=i)
        spend |= {("kS", day): 8 + i % 5, ("kQ", day): 40, ("kJ", day): 12 + (i % 2)}
    for (key, day), calls in spend.items():
        conn.execute(
            "INSERT INTO calls (call_id, source, started_at, key_id, key_hint, endpoint, model, "
            "base_model, billing_mode, status, requests, input_tokens, cached_tokens, "
            "output_tokens, reasoning_tokens, images, characters, audio_seconds) VALUES (?, "
            "'csv', ?, ?, ?, 'chat', 'x-c', 'x', 'request', 200, ?, 0, 0, 0, 0, 0, 0, 0)",
            [f"{key}/{day}", f"{day} 12:00:00+00", key, f"sk-…{key}", calls])
    cli = {a.subject: a.details for a in alerts(conn, date(2025, 3, 11)) if a.kind == "spike"}
    conn.close()
    led = open_dashboard_ledger(Settings(db=path))
    led.refresh(force=True)
    page = queries.key_spikes.__wrapped__(led, led.marker,
                                          Filters(date(2025, 3, 1), date(2025, 3, 10)))
    led.conn.close()
    assert set(cli) == set(page["key_id"]) == {"kS"}
    row = page.set_index("key_id").loc["kS"]
    assert (row["spend"], row["baseline_median"], row["spread"]) == (
        cli["kS"]["spend"], cli["kS"]["baseline_median"], cli["kS"]["spread"])


def _recent_from_view(led, f: Filters, limit: int) -> list[tuple]:
    p: dict = {"limit": limit}
    return led.cursor().execute(
        "SELECT started_at, key_label, key_hint, model, endpoint, status, billing_mode, cost, "
        "cost_as_token, cost_as_request, input_tokens, output_tokens, latency_ms, stream, "
        f"usage_source FROM priced_calls WHERE {queries.where(f, queries.RAW, p)} "
        "ORDER BY started_at DESC LIMIT $limit", p).fetchall()


def _plain(v: object) -> object:
    """One value as the database cursor gives it (pandas gives Timestamps, numpy ints, NaN)."""
    if v is None or v != v:
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v.item() if hasattr(v, "item") else v


def _rows(rows) -> list[tuple]:
    return sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)


@pytest.mark.parametrize("f", FILTERS)
def test_recent_calls_are_the_views_newest_calls_memo_current_or_not(ledger, f):
    """The Recent calls table reads the cost memo when it is current (a top-N the view's union
    defeats at 100M calls): the same rows and costs as ``priced_calls``, and a call whose memo
    is stale (inserted without one) still comes priced live."""
    for stale in (False, True):
        if stale:
            ledger.cursor().execute(
                "INSERT INTO calls (call_id, source, started_at, key_id, endpoint, model, "
                "base_model, billing_mode, stream, status, requests, input_tokens, "
                "cached_tokens, output_tokens, reasoning_tokens) VALUES ('new-1', 'csv', "
                "TIMESTAMPTZ '2025-03-09 10:15:00+00', 'k1:aaa', 'chat', 'gpt-4o', 'gpt-4o', "
                "'token', false, 200, 1, 1000, 0, 1000, 0)")
        marker = ledger.refresh(force=True) + f":{stale}"
        for limit in (1000, 7):
            got = queries.recent_calls(ledger, marker, f, limit=limit)
            want = _recent_from_view(ledger, f, limit)
            if limit == 1000:  # every call of the period: the same rows, costs included
                assert _rows(got.itertuples(index=False)) == _rows(want)
                assert len(want) > 7 or f.scope_keys == ()  # () is no key in scope: nothing
            else:  # the newest 7: the same start times (ties may pick other rows)
                assert sorted(got["started_at"]) == sorted(r[0] for r in want)
    new = queries.recent_calls(ledger, marker, Filters(date(2025, 3, 9), date(2025, 3, 9)))
    assert new.loc[new["started_at"].dt.hour == 10, "cost_as_billed"].notna().any()


def test_the_dashboard_migrates_its_ledger_under_its_memory_limit(tmp_path, monkeypatch):
    """Opening an older ledger runs the migrations (at 100M calls a rollup rebuild peaked at
    5.7 GB when they ran before the dashboard's 1 GB limit was set): they see the limit."""
    import ledger.connect
    from dashboard.connection import MEMORY_LIMIT

    seen = []
    real = ledger.connect.migrate

    def watching(conn, **kw):
        seen.append(conn.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        return real(conn, **kw)

    monkeypatch.setattr(ledger.connect, "migrate", watching)
    led = open_dashboard_ledger(Settings(db=str(tmp_path / "fresh.duckdb")))
    limit = led.cursor().execute("SELECT current_setting('memory_limit')").fetchone()[0]
    led.conn.close()
    assert MEMORY_LIMIT == "1GB" and limit == "953.6 MiB"  # DuckDB's own spelling of 1 GB
    assert seen == [limit]
