"""The Recommendations engine gives exactly the figures of its previous, query-per-workload
implementation (kept frozen in ``recommend_reference.py``) on a user-like ledger: the demo's
history plus the rows real ledgers carry — keyless calls, label-only keys, a key seen under two
labels, unknown and NULL models, tags, aggregated rows, cache reads and writes, reasoning,
estimated usage, 429 storms, refunds (negative ``charged``) — with the cost memo current and,
after a price changes mid-period, stale (``priced_calls`` priced live); and with the rollups
current, where the engine reads its sums from them (``rollup read``: whole UTC days from
``rollup_daily``, whole hours from ``rollup_hourly``; with per-call rows only, the quantiles
skip the divisions), or must not (a call the rollup cannot stand for: 1-hour cache writes; a
rollup behind the calls), and so sums the calls."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import recommend_reference as ref

from ingest.demo import build_demo
from ledger.connect import open_ledger
from ledger.keys import fingerprinter_for
from pricing import load_prices, rollup
from pricing import recommend as rec
from pricing.recommend_scan import period_scan

ROOT = Path(__file__).resolve().parents[2]
END = datetime(2025, 4, 15, tzinfo=UTC)
PERIODS = [("2025-03-16", "2025-04-15"), ("2025-01-30", "2025-04-15"),
           (datetime(2025, 3, 3, 7, 30, tzinfo=UTC), datetime(2025, 4, 2, 13, 0, tzinfo=UTC)),
           (datetime(2025, 3, 3, 7, 0, tzinfo=UTC), datetime(2025, 4, 2, 13, 0, tzinfo=UTC))]

# Messy rows: one INSERT per kind, i over range(n); h a pseudo-random 0..9999 per row.
MESSY_SQL = """
INSERT INTO calls BY NAME
SELECT 'messy-{kind}-' || i AS call_id, 'csv' AS source,
  TIMESTAMPTZ '2025-02-01 00:00:00+00' + to_minutes(CAST((i * 7919) % (73 * 1440) AS INTEGER))
    AS started_at,
  {key_id} AS key_id, {key_hint} AS key_hint, {key_label} AS key_label, '{endpoint}' AS endpoint,
  {model} AS model, regexp_replace({model}, '-c$', '') AS base_model,
  CASE WHEN {model} LIKE '%-c' THEN 'request' ELSE 'token' END AS billing_mode,
  false AS stream, {status} AS status, {requests} AS requests,
  {inp} AS input_tokens, {cached} AS cached_tokens, {out} AS output_tokens,
  {reasoning} AS reasoning_tokens, 0 AS images, 0 AS characters, 0 AS audio_seconds,
  {usage} AS usage_source, 200 + h AS latency_ms, {tags} AS tags, {writes} AS cache_write_tokens,
  {writes_long} AS cache_write_long_tokens, {charged} AS charged
FROM (SELECT i, CAST(hash(i, '{kind}') % 10000 AS BIGINT) AS h FROM range({n}) t(i))
"""
BASE = {"key_id": "NULL", "key_hint": "NULL", "key_label": "NULL", "endpoint": "chat",
        "status": "200", "requests": "1", "cached": "0", "reasoning": "0",
        "usage": "'reported'", "tags": "NULL", "writes": "0", "writes_long": "0",
        "charged": "NULL"}
TAGS = ("CASE h % 3 WHEN 0 THEN MAP {'team': 'search'} WHEN 1 THEN MAP {'team': 'ads', "
        "'app': 'bidder'} ELSE NULL END")
MESSY = [
    # keyless long calls on gpt-4o: the per-request variant is cheaper
    dict(kind="keyless", n=900, model="'gpt-4o'", inp="8000 + h", out="300", tags=TAGS),
    # label-only keys with prompt caching (reads, 5-minute and 1-hour writes), some estimated
    dict(kind="label-a", n=1500, key_label="'team-a'", model="'claude-3-5-sonnet'",
         inp="20000 + h * 10", cached="CASE WHEN h % 4 = 0 THEN 15000 ELSE 0 END",
         writes="CASE WHEN h % 7 = 0 THEN 2000 ELSE 0 END",
         writes_long="CASE WHEN h % 14 = 0 THEN 500 ELSE 0 END", out="400",
         usage="CASE h % 5 WHEN 0 THEN 'estimated' WHEN 1 THEN NULL ELSE 'reported' END",
         tags=TAGS),
    dict(kind="label-b", n=700, key_label="'ops-bot'", model="'claude-3-5-sonnet-c'",
         inp="100 + h % 300", out="50", usage="'estimated'"),
    # one key seen under two labels, short per-request calls (per token is cheaper)
    dict(kind="two-labels", n=1200, key_id="'k-multi'", key_hint="'sk-…mult'",
         key_label="CASE WHEN h % 2 = 0 THEN 'alice' ELSE 'bob' END", model="'gpt-4o-c'",
         inp="200 + h % 100", out="40", tags=TAGS),
    # unknown models and calls without a model
    dict(kind="unknown", n=400, key_id="'k-odd'", key_hint="'sk-…oddk'", model="'acme-llm-9'",
         inp="500", out="100"),
    dict(kind="no-model", n=300, key_id="'k-odd'", key_hint="'sk-…oddk'", model="NULL",
         inp="500", out="100", endpoint="other"),
    # aggregated rows (requests > 1) of short calls on a per-request variant
    dict(kind="buckets", n=120, key_label="'finance-batch'", model="'gpt-4o-mini-c'",
         requests="50", inp="50 * (100 + h % 50)", out="50 * 20",
         tags="MAP {'team': 'finance'}"),
    # simple calls on expensive models: cheaper-model candidates (chat and embeddings)
    dict(kind="simple-41", n=900, key_id="'k-simple'", key_hint="'sk-…simp'",
         model="'gpt-4.1'", inp="300 + h % 900", out="20 + h % 200"),
    dict(kind="simple-emb", n=900, key_id="'k-simple'", key_hint="'sk-…simp'",
         model="'text-embedding-3-large'", inp="200000 + h", out="0", endpoint="embeddings"),
    dict(kind="reasoning", n=300, key_id="'k-simple'", key_hint="'sk-…simp'", model="'o3'",
         inp="300", out="200", reasoning="150"),
    # workloads on two endpoints (their median over both is neither endpoint's), one keyless
    dict(kind="simple-41-responses", n=400, key_id="'k-simple'", key_hint="'sk-…simp'",
         model="'gpt-4.1'", inp="5000 + h", out="300 + h % 50", endpoint="responses"),
    dict(kind="keyless-messages", n=250, model="'gpt-4o'", inp="100 + h % 500", out="60",
         endpoint="messages"),
    # a 429 storm (one minute) and server errors
    dict(kind="storm", n=40, key_id="'k-storm'", key_hint="'sk-…strm'", model="'gpt-4o'",
         status="429", inp="0", out="0", usage="'none'"),
    dict(kind="errors", n=60, key_label="'team-a'", model="'gpt-4o'", status="500",
         inp="1000", out="0"),
    # refunds and charges the platform reported
    dict(kind="refunds", n=100, key_id="'k-multi'", key_hint="'sk-…mult'", model="'gpt-4o'",
         inp="5000", out="100", charged="CAST(-0.01 AS DECIMAL(38,12))"),
]
STORM_SQL = ("UPDATE calls SET started_at = TIMESTAMPTZ '2025-03-20 10:15:00+00' + "
             "to_seconds(CAST(regexp_extract(call_id, '[0-9]+$') AS INTEGER)) "
             "WHERE call_id LIKE 'messy-storm-%'")


def _add_messy(conn: Any, long_writes: bool = True) -> None:
    for spec in MESSY:
        if not long_writes:
            spec = {**spec, "writes_long": "0"}
        conn.execute(MESSY_SQL.format(**{**BASE, **spec}))
    conn.execute(STORM_SQL)


def _build(path: str, long_writes: bool) -> str:
    conn = open_ledger(path)
    try:
        build_demo(conn, calls=30_000, days=75, seed=23, fingerprinter=fingerprinter_for(path),
                   end=END)
        _add_messy(conn, long_writes)
        load_prices(conn, ROOT / "data" / "prices.csv")  # prices every row: the memo is current
    finally:
        conn.close()
    return path


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _build(str(tmp_path_factory.mktemp("exact") / "messy.duckdb"), long_writes=True)


@pytest.fixture(scope="module")
def rollup_ledger_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same ledger without 1-hour cache writes (which a rollup row cannot carry)."""
    return _build(str(tmp_path_factory.mktemp("exact") / "rollable.duckdb"), long_writes=False)


# param -> whether the engine reads its sums from a rollup on whole UTC hours
ROLLUP_READ = {"memo current": False, "memo stale": False, "rollup current, 1-hour writes": False,
               "rollup read": True, "rollup read, per-call rows": True, "rollup stale": False}


@pytest.fixture
def kind(request: pytest.FixtureRequest) -> str:
    """The ``conn`` fixture's param: which ledger and state the test runs on."""
    return str(request.node.callspec.params["conn"])


@pytest.fixture(params=list(ROLLUP_READ))
def conn(request: pytest.FixtureRequest, ledger_path: str, rollup_ledger_path: str,
         tmp_path: Path) -> Any:
    path = tmp_path / "copy.duckdb"
    source = rollup_ledger_path if request.param.startswith("rollup read") or \
        request.param == "rollup stale" else ledger_path
    path.write_bytes(Path(source).read_bytes())
    c = open_ledger(str(path))
    if request.param == "rollup read, per-call rows":
        c.execute("DELETE FROM calls WHERE requests > 1")
    if request.param.startswith("rollup"):
        rollup.refresh(c)
        assert rollup.is_current(c)
    if request.param == "rollup stale":  # one call the rollup has not summed yet
        c.execute("INSERT INTO calls BY NAME SELECT * REPLACE (call_id || '-late' AS call_id) "
                  "FROM calls WHERE call_id = 'messy-keyless-7'")
        assert not rollup.is_current(c)
    if request.param == "memo stale":
        # a price change mid-period, written past `prices load`: every memo is stale
        c.execute("INSERT INTO prices (model, effective_from, input, cached_input, output) "
                  "VALUES ('gpt-4o', DATE '2025-03-25', 2, 1, 8), "
                  "('gpt-4o-mini', DATE '2025-03-10', 0.1, 0.05, 0.5)")
        c.execute("INSERT INTO prices (model, effective_from, request) "
                  "VALUES ('gpt-4o-c', DATE '2025-03-25', 0.008)")
    yield c
    c.close()


def _canon(value: Any) -> Any:
    """A value as compared: floats NaN-safe, everything else by its exact text."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, Decimal):
        return f"Decimal({value})"   # the scale counts: the CLI prints str(saving)
    return value


def _rows(items: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps({k: _canon(v) for k, v in d.items()}, sort_keys=True, default=repr)
                  for d in items)


def _frame_rows(df: pd.DataFrame) -> list[str]:
    return _rows([{k: _canon(v) for k, v in r.items()} for r in df.to_dict("records")])


@pytest.mark.parametrize("since, until", PERIODS)
@pytest.mark.parametrize("by_tag", [False, True])
def test_recommend_same_as_reference(conn: Any, since: Any, until: Any, by_tag: bool) -> None:
    new = [r.to_dict() for r in rec.recommend(conn, since, until, by_tag=by_tag)]
    old = [r.to_dict() for r in ref.recommend(conn, since, until, by_tag=by_tag)]
    assert _rows(new) == _rows(old)
    # the order is by saving (ties in any order)
    assert [d["saving"] for d in new] == [d["saving"] for d in old]
    kinds = {d["kind"] for d in new}
    if by_tag is False and since == "2025-01-30":
        assert {"switch_variant", "cheaper_model", "prompt_cache", "rate_limits",
                "estimated_usage"} <= kinds


@pytest.mark.parametrize("since, until", PERIODS[:2])
def test_engine_tables_same_as_reference(conn: Any, since: Any, until: Any) -> None:
    for by_tag in (False, True):
        assert _frame_rows(rec.variant_workloads(conn, since, until, by_tag=by_tag)) == \
            _frame_rows(ref.variant_workloads(conn, since, until, by_tag=by_tag))
    for name in ("cache_economics", "failed_call_waste", "estimated_usage_share"):
        assert _frame_rows(getattr(rec, name)(conn, since, until)) == \
            _frame_rows(getattr(ref, name)(conn, since, until)), name
    assert _rows([r.to_dict() for r in rec.cheaper_models(conn, since, until)]) == \
        _rows([r.to_dict() for r in ref.cheaper_models(conn, since, until)])


def test_workload_cost_at_same_as_reference(conn: Any) -> None:
    since, until = PERIODS[1]
    for key, model, endpoint, target, mode in [
            (None, "gpt-4o", "chat", "gpt-4o-mini", "token"),
            ("k-simple", "gpt-4.1", "chat", "gpt-4o-mini", "token"),
            ("k-multi", "gpt-4o", "chat", "gpt-4o-mini", "request"),
            ("k-simple", "text-embedding-3-large", "embeddings", "text-embedding-3-small",
             "token")]:
        assert rec.workload_cost_at(conn, key, model, endpoint, since, until, target, mode) == \
            ref.workload_cost_at(conn, key, model, endpoint, since, until, target, mode)


def _whole_hours(bound: Any) -> bool:
    return not isinstance(bound, datetime) or not (bound.minute or bound.second)


@pytest.mark.parametrize("since, until", PERIODS)
def test_rollup_read_exactly_when_it_can_be(conn: Any, kind: str, since: Any,
                                            until: Any) -> None:
    """The rollup path is the one taken where it can be (so the comparisons above cover it),
    and its fine table is the calls' one: same columns, same types, same sums."""
    expected = ROLLUP_READ[kind] and _whole_hours(since) and _whole_hours(until)
    with period_scan(conn, since, until, tags=True) as scan:
        read = scan.rollup
        fine = conn.execute(f"SELECT * FROM {scan.fine}").df()
        types = conn.execute(f"DESCRIBE {scan.fine}").fetchall()
    hourly = isinstance(since, datetime) and since.hour
    assert read == (None if not expected else "rollup_hourly" if hourly else "rollup_daily")
    with period_scan(conn, since, until) as untagged:
        assert untagged.rollup == read
    with period_scan(conn, since, until, tags=True, use_rollup=False) as calls_scan:
        assert calls_scan.rollup is None
        assert conn.execute(f"DESCRIBE {calls_scan.fine}").fetchall() == types
        from_calls = conn.execute(f"SELECT * FROM {calls_scan.fine}").df()
    # the grain differs (a rollup row's has_input), the sums per workload x day do not
    fine["tags"] = fine["tags"].map(repr)
    from_calls["tags"] = from_calls["tags"].map(repr)
    keys = ["key_id", "base_model", "endpoint", "billing_mode", "tags", "day", "ok",
            "estimated"]
    sums = [c for c in fine.columns if c not in (*keys, "key_hint", "key_label", "has_input",
                                                 "rate_limited")]

    def per_day(df: Any) -> list[str]:
        g = df.astype(object).where(df.notna(), None).groupby(keys, dropna=False)[sums]
        return _frame_rows(g.agg(lambda v: sum(x for x in v if x is not None)).reset_index())

    assert per_day(fine) == per_day(from_calls)


def test_rollup_money_is_what_is_read(conn: Any, kind: str) -> None:
    """The comparisons fail if the rollup's money differs: add 1 to one of its costs (a
    workload with a switch saving) and the engine's figures move with it."""
    if kind != "rollup read":
        pytest.skip("one ledger is enough")
    since, until = PERIODS[1]
    before = [r.to_dict() for r in rec.recommend(conn, since, until)]
    assert _rows(before) == _rows([r.to_dict() for r in ref.recommend(conn, since, until)])
    conn.execute(f"UPDATE {rollup.DAILY} SET cost = cost + 1 WHERE rowid = (SELECT min(rowid) "
                 f"FROM {rollup.DAILY} WHERE key_label = 'team-a' AND model = "
                 "'claude-3-5-sonnet' AND day >= TIMESTAMPTZ '2025-03-01 00:00:00+00' "
                 "AND cost > 0)")
    after = [r.to_dict() for r in rec.recommend(conn, since, until)]
    assert _rows(after) != _rows(before)


def _quantile_tables(conn: Any, since: Any, until: Any) -> list[tuple[Any, ...]]:
    with period_scan(conn, since, until) as scan:
        return conn.execute(f"SELECT * FROM {scan.quantiles} ORDER BY ALL").fetchall()


@pytest.mark.parametrize("since, until", PERIODS)
def test_quantiles_from_value_counts_are_quantile_disc(conn: Any, since: Any, until: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Above QUANTILES_BY_COUNTS_ABOVE calls the quantiles come from value counts (spillable)
    instead of quantile_disc (every value in memory): the same table, and the same actions."""
    import pricing.recommend_scan as scan_module

    held = _quantile_tables(conn, since, until)
    monkeypatch.setattr(scan_module, "QUANTILES_BY_COUNTS_ABOVE", -1)
    counted = _quantile_tables(conn, since, until)
    assert counted == held and len(held) > 3
    assert any(row[3] is not None and row[4] is not None for row in counted)
    new = [r.to_dict() for r in rec.recommend(conn, since, until)]
    assert _rows(new) == _rows([r.to_dict() for r in ref.recommend(conn, since, until)])


@pytest.mark.parametrize("inputs, outputs", [
    ("(i * 7919) % 97", "(i * 31) % 5"),                      # one bucket each
    ("(i * 7919) % 100003 - 300", "(i * 31) % 5000"),         # many buckets, some negative
    ("CASE WHEN i % 3 = 0 THEN 255 ELSE 256 END", "i % 2"),   # a bucket edge
])
def test_quantile_disc_is_the_value_at_ceil_q_n(tmp_path: Path, inputs: str,
                                                outputs: str) -> None:
    """The rule the value-count quantiles rest on, held against DuckDB on awkward counts:
    repeated values, NULLs, one value, sizes where q * n is whole and where it is not, values
    inside one bucket and across many (negative ones too), values either side of a bucket's
    edge."""
    import duckdb

    import pricing.recommend_scan as scan_module

    db = duckdb.connect()
    db.execute("CREATE TABLE calls AS SELECT 'k' || (i % 7) AS key_id, NULL AS key_label, "
               "'m' || (i % 3) AS base_model, 'chat' AS endpoint, "
               "TIMESTAMPTZ '2025-01-01 00:00:00+00' AS started_at, 1 AS requests, "
               f"CASE WHEN i % 11 = 0 THEN NULL ELSE {inputs} END AS input_tokens, "
               f"{outputs} AS output_tokens FROM range(1, 2000) t(i) "
               "UNION ALL SELECT 'solo', NULL, 'm', 'chat', TIMESTAMPTZ '2025-01-01 00:00:00+00', "
               "1, 42, 0 UNION ALL SELECT 'none', NULL, 'm', 'chat', "
               "TIMESTAMPTZ '2025-01-01 00:00:00+00', 1, NULL, NULL")
    period = [datetime(2024, 12, 31, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)]
    tables = []
    for sql in (scan_module.QUANTILES_SQL, scan_module.QUANTILES_BY_COUNTS_SQL):
        name = f"q{len(tables)}"
        db.execute(sql.format(name=name, per=""), period)
        tables.append(db.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall())
    assert tables[0] == tables[1] and len(tables[0]) == 23
