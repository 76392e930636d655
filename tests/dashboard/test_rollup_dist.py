"""The distribution rollup: tokens-per-call and break-even bins equal SQL on single calls
exactly; percentiles read from bins are within a bin of the exact ones; appends stay exact."""

from __future__ import annotations

import math
from datetime import date

import pytest
from dashboard_ledger import build_ledger, build_messy_ledger

from dashboard import queries
from dashboard.connection import open_dashboard_ledger
from dashboard.filters import Filters
from ledger.config import Settings
from pricing import rollup
from pricing.periods import utc_day_start_sql

UTC_MARCH = Filters(date(2025, 3, 1), date(2025, 3, 31))
CASES = [
    UTC_MARCH,
    Filters(date(2025, 2, 1), date(2025, 3, 31), keys=("k1:aaa",)),
    Filters(date(2025, 2, 1), date(2025, 3, 31), tags=("team=ads",), modes=("token",)),
    KOLKATA := Filters(date(2025, 3, 1), date(2025, 3, 31), tz="Asia/Kolkata"),  # raw
    # a label-only key (new-api's token_name): the rollup once kept only fingerprints, so a
    # page filtered on it showed nothing from the rollup and its calls from the raw fallback
    Filters(date(2025, 3, 1), date(2025, 3, 31), keys=("label:ops-token",)),
]


@pytest.fixture(scope="module")
def led(tmp_path_factory):
    ledger = open_dashboard_ledger(Settings(db=build_messy_ledger(
        tmp_path_factory.mktemp("dist") / "d.duckdb")))
    ledger.refresh(force=True)
    yield ledger
    ledger.conn.close()


def raw(led, f: Filters, select: str, extra: str = "", tail: str = "") -> list:
    """SQL on priced_calls for ``f`` written without the rollup's helpers."""
    p: dict = {}
    sql = (f"SELECT {select} FROM priced_calls WHERE {queries.where(f, queries.RAW, p)} "
           f"{extra} {tail}")
    return led.cursor().execute(sql, p).fetchall()


@pytest.mark.parametrize("f", CASES)
def test_tokens_per_call_histogram_equals_single_calls(led, f):
    got = queries.tokens_per_call.__wrapped__(led, led.marker, f)
    want = raw(led, f, "model, CAST(pow(2, floor(log2(1 + (input_tokens + output_tokens) / "
               "greatest(requests, 1)))) AS BIGINT) AS b, sum(requests)",
               "AND endpoint IN ('chat', 'embeddings')", "GROUP BY ALL ORDER BY 1, 2")
    assert [tuple(r) for r in got.itertuples(index=False)] == want
    assert want


@pytest.mark.parametrize("f", CASES)
def test_break_even_bins_equal_single_calls(led, f):
    got = queries.break_even_points.__wrapped__(led, led.marker, f, "gpt-4o")
    want = raw(led, f, """CAST(round(pow(2, (floor(log2(1 + (input_tokens + output_tokens)
        / greatest(requests, 1)) * 4) + 0.5) / 4) - 1) AS BIGINT) AS tokens, sum(requests),
        sum(cost_as_token) / sum(requests) FILTER (WHERE cost_as_token IS NOT NULL),
        sum(cost_as_request) / sum(requests) FILTER (WHERE cost_as_request IS NOT NULL),
        sum(input_tokens) / nullif(sum(input_tokens + output_tokens), 0),
        sum(input_tokens), sum(input_tokens + output_tokens)""",
               "AND base_model = 'gpt-4o' AND status < 400", "GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in got.itertuples(index=False)] == want
    assert want and all(r[2] is not None and r[3] is not None for r in want)


@pytest.mark.parametrize("f", CASES)
def test_percentiles_are_within_a_bin_of_the_exact_ones(led, f):
    got = queries.latency_percentiles.__wrapped__(led, led.marker, f).set_index("model")
    exact = raw(led, f, "model, sum(requests), quantile_disc(latency_ms, [0.5, 0.9, 0.99]), "
                "quantile_disc(ttft_ms, [0.5, 0.9, 0.99]) FILTER (WHERE stream)",
                "AND status < 400", "GROUP BY model")
    assert exact
    width = 2 ** (1 / rollup.TIME_BINS_PER_OCTAVE)  # one eighth octave of (1 + ms)
    for model, calls, lat, ttft in exact:
        assert got.loc[model, "calls"] == calls
        for kind, values in (("latency", lat), ("ttft", ttft)):
            if values is None:   # no streamed call of the model: no time to first token
                assert got.loc[model, [f"{kind}_p{q}" for q in (50, 90, 99)]].isna().all()
                continue
            for q, value in zip((50, 90, 99), values, strict=True):
                approx = got.loc[model, f"{kind}_p{q}"]
                assert 1 / width <= (1 + approx) / (1 + value) <= width, (model, kind, q)


def test_a_page_in_utc_reads_the_daily_rollups():
    assert queries.source_for(UTC_MARCH) == queries.DAILY
    p: dict = {}
    assert rollup.DIST in queries.dist_source(UTC_MARCH, p)
    assert "priced_calls" in queries.dist_source(KOLKATA, {})


def test_appended_calls_keep_every_rollup_exact(tmp_path):
    led = open_dashboard_ledger(Settings(db=build_ledger(tmp_path / "a.duckdb")))
    led.refresh(force=True)
    led.cursor().execute(
        "INSERT INTO calls (call_id, source, started_at, latency_ms, ttft_ms, key_id, endpoint, "
        "model, base_model, billing_mode, stream, status, requests, input_tokens, "
        "cached_tokens, output_tokens, reasoning_tokens, tags) VALUES ('new-1', 'csv', "
        "TIMESTAMPTZ '2025-03-05 10:15:00+00', 4000, 900, 'k1:aaa', 'chat', 'gpt-4o', 'gpt-4o', "
        "'token', true, 200, 1, 70000, 0, 3000, 0, MAP {'team': 'search'})")
    before = led.cursor().execute(f"SELECT count(*) FROM {rollup.DIST}").fetchone()[0]
    led.refresh(force=True)
    cur = led.cursor()
    assert cur.execute(f"SELECT count(*) FROM {rollup.DIST}").fetchone()[0] == before + 3
    summed = ("SELECT day, key_id, model, endpoint, billing_mode, tags, ok, kind, bin, "
              "sum(calls), sum(call_rows), sum(cost_as_token), sum(cost_as_request), "
              "sum(input_tokens), sum(tokens) FROM {} GROUP BY ALL ORDER BY ALL")
    assert (cur.execute(summed.format(rollup.DIST)).fetchall()
            == cur.execute(summed.format("(" + rollup.dist_select("") + ")")).fetchall())
    daily = ("SELECT day, key_id, model, status, tags, sum(calls), sum(cost), "
             "sum(cost_as_request), min(first_seen), max(last_seen) FROM {} "
             "GROUP BY ALL ORDER BY ALL")
    day_of = utc_day_start_sql("started_at")
    fresh = (f"(SELECT {day_of} AS day, key_id, model, status, tags, requests AS calls, cost, "
             "cost_as_request, started_at AS first_seen, started_at AS last_seen "
             "FROM priced_calls)")
    assert (cur.execute(daily.format(rollup.DAILY)).fetchall()
            == cur.execute(daily.format(fresh)).fetchall())
    hist = queries.tokens_per_call.__wrapped__(led, led.marker, UTC_MARCH)
    top = hist[hist["tokens_from"] == 2 ** math.floor(math.log2(1 + 73000))]
    assert list(top["calls"]) == [1]
    led.conn.close()


def test_callmeter_load_appends_to_existing_rollups(tmp_path):
    """`load` (ingest.loader.load_spool) keeps rollups current through the hook pricing
    registers; every ledger has them (migration m009_rollups), so a ledger the dashboard never
    opened is summed too once its rollups are current."""
    from ingest.loader import load_spool
    from ledger.connect import open_ledger
    from ledger.spool import SpoolWriter

    db = build_ledger(tmp_path / "l.duckdb")
    spool = tmp_path / "spool"
    record = {"call_id": "spooled-1", "source": "proxy", "started_at": "2025-03-05T10:15:00+00:00",
              "model": "gpt-4o", "endpoint": "chat", "status": 200, "requests": 1,
              "input_tokens": 500, "output_tokens": 100, "latency_ms": 800, "key_id": "k1:aaa"}
    bare = open_ledger(db)
    writer = SpoolWriter(spool)
    writer.append({**record, "call_id": "spooled-0"})
    writer.close()
    assert bare.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'rollup_%'"
                        ).fetchone()[0] == len(rollup.TABLES) + 1  # + rollup_state
    rollup.rebuild(bare)  # the 600 hand-inserted calls went in behind the hooks' back
    assert load_spool(bare, spool).inserted == 1
    calls, rowid = bare.execute(rollup.CALLS_MARKER_SQL).fetchone()
    assert rollup._state(bare)[:2] == (calls, rowid) == (601, 600)  # appended by the hook
    assert bare.execute(f"SELECT sum(calls) FROM {rollup.DAILY}").fetchone()[0] == 601
    bare.close()

    led = open_dashboard_ledger(Settings(db=db))
    led.refresh(force=True)
    writer = SpoolWriter(spool)
    writer.append(record)
    writer.close()
    assert load_spool(led.conn, spool).inserted == 1
    calls, rowid = led.conn.execute(rollup.CALLS_MARKER_SQL).fetchone()
    assert rollup._state(led.conn)[:2] == (calls, rowid) == (602, 601)
    f = Filters(date(2025, 3, 5), date(2025, 3, 5), keys=("k1:aaa",))
    total = queries.totals.__wrapped__(led, led.marker, f)
    want = led.conn.execute(
        "SELECT sum(requests), sum(cost) FROM priced_calls WHERE key_id = 'k1:aaa' AND "
        "started_at >= '2025-03-05 00:00:00+00' AND started_at < '2025-03-06 00:00:00+00'"
    ).fetchone()
    assert (total["calls"], total["cost"]) == want
    led.conn.close()
