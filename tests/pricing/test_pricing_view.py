# ruff: noqa: F811  (the ledger fixture is imported from pricing_helpers)
"""Each pricing rule of priced_calls against figures computed by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from pricing_helpers import add_call, costs, ledger  # noqa: F401  (fixture)


def test_cost_is_exact_decimal_with_no_float_on_the_way(ledger):
    add_call(ledger, "a", "tok", input=1_000, output=100)
    types = ledger.execute(
        "SELECT typeof(cost), typeof(cost_as_token), typeof(cost_as_request) "
        "FROM priced_calls").fetchone()
    assert types == ("DECIMAL(38,15)",) * 3


def test_two_price_periods_by_utc_day(ledger):
    # 1000 in × 2/1M + 100 out × 8/1M = 0.002 + 0.0008; then 1000 × 1/1M + 100 × 4/1M
    add_call(ledger, "old", "tok", "2025-02-28 23:59:59+00", input=1_000, output=100)
    # 00:30 on 1 March in Berlin is still 28 February in UTC: the old price
    add_call(ledger, "berlin", "tok", "2025-03-01 00:30:00+01", input=1_000, output=100)
    add_call(ledger, "new", "tok", "2025-03-01 00:00:00+00", input=1_000, output=100)
    assert costs(ledger, "old")["cost"] == D("0.0028")
    assert costs(ledger, "old")["price_effective_from"] == date(2025, 1, 1)
    assert costs(ledger, "berlin")["cost"] == D("0.0028")
    assert costs(ledger, "new")["cost"] == D("0.0014")
    assert costs(ledger, "new")["price_effective_from"] == date(2025, 3, 1)


def test_cached_input_is_cheaper_and_blank_cached_means_input_price(ledger):
    # period 1: 600 uncached × 2 + 400 cached × 1 = 1200 + 400 per 1M → 0.0016
    add_call(ledger, "p1", "tok", input=1_000, cached=400)
    # period 2 has cached_input blank: all 1000 at 1/1M → 0.001
    add_call(ledger, "p2", "tok", "2025-04-01 00:00:00+00", input=1_000, cached=400)
    assert costs(ledger, "p1")["cost"] == D("0.0016")
    assert costs(ledger, "p2")["cost"] == D("0.001")


def test_reasoning_is_inside_output_not_added(ledger):
    add_call(ledger, "r", "tok", output=1_000, reasoning=800)
    assert costs(ledger, "r")["cost"] == D("0.008")  # 1000 × 8/1M, reasoning not counted twice


def test_both_variants_for_every_call(ledger):
    add_call(ledger, "t", "tok", input=1_000, output=100)
    add_call(ledger, "c", "tok-c", input=1_000, output=100)
    t, c = costs(ledger, "t"), costs(ledger, "c")
    assert (t["cost"], t["cost_as_token"], t["cost_as_request"]) == (
        D("0.0028"), D("0.0028"), D("0.01"))
    assert (c["cost"], c["cost_as_token"], c["cost_as_request"]) == (
        D("0.01"), D("0.0028"), D("0.01"))


def test_aggregated_rows_with_requests(ledger):
    # 25 calls in one row: 25 × 0.01 per request; tokens are totals already
    add_call(ledger, "agg", "tok-c", requests=25, input=50_000, output=5_000)
    got = costs(ledger, "agg")
    assert got["cost"] == D("0.25")
    assert got["cost_as_token"] == D("0.14")  # 50000 × 2/1M + 5000 × 8/1M


def test_media_units(ledger):
    add_call(ledger, "img", "img", images=3)
    add_call(ledger, "tts", "tts", characters=2_000)
    add_call(ledger, "asr", "asr", audio_seconds=90.5)
    assert costs(ledger, "img")["cost"] == D("0.12")        # 3 × 0.04
    assert costs(ledger, "tts")["cost"] == D("0.03")        # 2000 × 15/1M
    assert costs(ledger, "asr")["cost"] == D("0.00905")     # 90.5 s / 60 × 0.006


def test_audio_seconds_that_do_not_divide_exactly_round_at_1e_15(ledger):
    # 1 s × 0.006 / 60 = 0.0001 exactly; 0.001 s → 1e-7 exactly; 7 s → 0.0007
    add_call(ledger, "a7", "asr", audio_seconds=7)
    assert costs(ledger, "a7")["cost"] == D("0.0007")


def test_failed_calls_cost_zero_but_stay_visible_as_calls(ledger):
    for status in (401, 429, 500):
        add_call(ledger, f"e{status}", "tok", status=status, input=1_000, output=100)
    add_call(ledger, "ec", "tok-c", status=503, input=1_000)
    for cid in ("e401", "e429", "e500", "ec"):
        got = costs(ledger, cid)
        assert (got["cost"], got["cost_as_token"], got["cost_as_request"]) == (0, 0, 0)
        assert got["priced"]


def test_missing_prices_are_null_never_zero(ledger):
    add_call(ledger, "u", "unknown-model", input=1_000, output=100)
    add_call(ledger, "early", "tok", "2024-12-31 23:00:00+00", input=1_000)
    add_call(ledger, "noc", "img-c", images=1)            # no img-c row: request price unknown
    add_call(ledger, "unit", "tok", images=2)             # tok has no image price
    u = costs(ledger, "u")
    assert u["cost"] is None and u["cost_as_token"] is None and u["cost_as_request"] is None
    assert not u["priced"]
    assert costs(ledger, "early")["cost"] is None
    noc = costs(ledger, "noc")
    assert noc["cost"] is None and noc["cost_as_token"] == D("0.04") and not noc["priced"]
    assert costs(ledger, "unit")["cost"] is None and costs(ledger, "unit")["priced"]
    assert ledger.execute("SELECT count(*) FROM priced_calls WHERE cost = 0").fetchone()[0] == 0


def test_other_variant_without_a_price_is_null(ledger):
    add_call(ledger, "i", "img", images=1)
    assert costs(ledger, "i")["cost_as_request"] is None


def test_tier_applies_to_the_whole_call_above_the_threshold(ledger):
    add_call(ledger, "at", "tier", input=1_000, output=10)       # not above 1000: base
    add_call(ledger, "above", "tier", input=1_001, cached=1, output=10)
    assert costs(ledger, "at")["cost"] == D("0.0011")  # 1000 × 1 + 10 × 10 per 1M
    # 1000 × 2 + 1 × 1 + 10 × 20 per 1M
    assert costs(ledger, "above")["cost"] == D("0.002201")


def test_tier_of_an_aggregated_row_uses_its_average_call(ledger):
    # 3 calls, 3001 input: average 1000.33 > 1000 → tier; 3000 input: average 1000 → base
    add_call(ledger, "hi", "tier-c", requests=3, input=3_001)
    add_call(ledger, "lo", "tier-c", requests=3, input=3_000)
    assert costs(ledger, "hi")["cost_as_token"] == D("0.006002")
    assert costs(ledger, "lo")["cost_as_token"] == D("0.003")
    assert costs(ledger, "hi")["cost"] == D("0.15")


def test_priced_calls_keeps_every_calls_column_first(ledger):
    # the memo_* columns are the cost memo (pricing.memo), surfaced as the cost columns
    calls = [r[0] for r in ledger.execute("DESCRIBE calls").fetchall()
             if not r[0].startswith("memo_")]
    priced = [r[0] for r in ledger.execute("DESCRIBE priced_calls").fetchall()]
    assert priced[:len(calls)] == calls
    assert priced[len(calls):] == ["cost_as_token", "cost_as_request", "cost", "priced",
                                   "price_effective_from", "currency", "price_model"]


def test_two_tiers_pick_the_highest_threshold_passed(tmp_path):
    from pricing_helpers import write

    from ledger.connect import open_ledger
    from pricing import load_prices

    conn = open_ledger(str(tmp_path / "t.duckdb"))
    load_prices(conn, write(tmp_path, "model,effective_from,input,above_input_tokens\n"
                            "q,2025-01-01,1,\nq,2025-01-01,3,200\nq,2025-01-01,2,100\n"))
    for cid, tokens in (("base", 100), ("t1", 101), ("t1b", 200), ("t2", 201)):
        add_call(conn, cid, "q", input=tokens)
    got = {cid: costs(conn, cid)["cost"] for cid in ("base", "t1", "t1b", "t2")}
    assert got == {"base": D("0.0001"), "t1": D("0.000202"), "t1b": D("0.0004"),
                   "t2": D("0.000603")}
    conn.close()


CACHE_SHEET = """\
model,effective_from,input,cached_input,output,cache_write,cache_write_long
cw,2025-01-01,2,0.2,8,2.5,4
cw,2025-06-01,2,0.2,8,2.5,
cw,2025-09-01,2,0.2,8,,
"""


def test_cache_writes_priced_at_their_own_rates_blank_falling_back(tmp_path):
    from pricing_helpers import write

    from ledger.connect import open_ledger
    from pricing import load_prices

    conn = open_ledger(str(tmp_path / "cw.duckdb"))
    load_prices(conn, write(tmp_path, CACHE_SHEET))
    call = {"input": 10_000, "cached": 6_000, "write": 3_000, "write_long": 1_000, "output": 100}
    for cid, day in (("both", "2025-02-01"), ("no_long", "2025-07-01"), ("none", "2025-10-01")):
        add_call(conn, cid, "cw", day + " 12:00:00+00", **call)
    # 1000 uncached × 2 + 6000 read × 0.2 + 2000 five-minute × 2.5 + 1000 one-hour × 4
    # + 100 out × 8 = 2000 + 1200 + 5000 + 4000 + 800 per 1M
    assert costs(conn, "both")["cost"] == D("0.013")
    # cache_write_long blank → the 1-hour writes at cache_write (2.5): 1500 less
    assert costs(conn, "no_long")["cost"] == D("0.0115")
    # both blank → every write at input (2), as before cache writes were modelled
    assert costs(conn, "none")["cost"] == D("0.01")
    # a gateway's over-reported writes never price more input than the call had
    add_call(conn, "over", "cw", "2025-02-01 12:00:00+00", input=1_000, cached=800, write=900,
             write_long=900)
    assert costs(conn, "over")["cost"] == D("0.00096")  # 800 × 0.2 + 200 × 4
    conn.close()


def test_non_billable_calls_cost_zero_and_are_never_unpriced(ledger):
    from pricing import unpriced_models
    from pricing.loader import unpriced_by_sheet
    from pricing.sheet import read_sheet

    add_call(ledger, "count", "claude-not-in-the-sheet", input=5_202, endpoint="count_tokens")
    add_call(ledger, "list", "tok", endpoint="models")
    ledger.execute("INSERT INTO calls (call_id, source, started_at, endpoint, status, requests) "
                   "VALUES ('probe', 'proxy', TIMESTAMPTZ '2025-02-01 00:00:00+00', 'probe', "
                   "404, 1), ('anon', 'proxy', TIMESTAMPTZ '2025-02-01 00:00:00+00', 'models', "
                   "200, 1)")
    for cid in ("count", "list", "probe", "anon"):
        got = costs(ledger, cid)
        assert (got["cost"], got["cost_as_token"], got["cost_as_request"], got["priced"]) == (
            0, 0, 0, True), cid
    assert unpriced_models(ledger).empty
    sheet = read_sheet(ledger.execute("SELECT sheet FROM price_sheets").fetchone()[0])
    assert unpriced_by_sheet(ledger, sheet) == []
    # the same unknown model called for real is unpriced, and listed
    add_call(ledger, "real", "claude-not-in-the-sheet", input=5_202, endpoint="messages")
    assert costs(ledger, "real")["cost"] is None
    assert list(unpriced_models(ledger)["model"]) == ["claude-not-in-the-sheet"]
    # the dashboard's unpriced counts (its rollups) agree: one call, not five
    from pricing import rollup

    rollup.refresh(ledger)
    assert ledger.execute(f"SELECT sum(unpriced_calls), sum(calls) FROM {rollup.DAILY}"
                          ).fetchone() == (1, 5)
