"""Chart builders, auth and filter values, without Streamlit running."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pandas as pd

from dashboard import auth, charts
from dashboard.filters import Display, Filters


def test_spend_over_time_stacks_one_trace_per_group():
    df = pd.DataFrame({"bucket": [datetime(2025, 3, 1), datetime(2025, 3, 1),
                                  datetime(2025, 3, 2)],
                       "grp": ["a", "b", "a"], "name": ["a", "b", "a"],
                       "cost": [Decimal("1.10"), None, Decimal("2.25")], "calls": [1, 2, 3]})
    fig = charts.spend_over_time(df)
    assert sorted(t.name for t in fig.data) == ["a", "b"]
    a = next(t for t in fig.data if t.name == "a")
    assert list(a.y) == [1.10, 2.25]
    assert fig.layout.barmode == "stack"


def test_break_even_chart_draws_pricings_lines_crossing_at_the_break_even_and_the_calls():
    points = pd.DataFrame({"tokens": [100, 1000], "calls": [5, 1],
                           "per_token_cost": [Decimal("0.0005"), Decimal("0.006")],
                           "per_request_cost": [Decimal("0.01"), Decimal("0.01")],
                           "input_share": [0.5, 0.5], "input_tokens": [250, 500],
                           "tokens_sum": [500, 1000]})
    # a pricing.break_even_tokens row: 6.25 per 1M tokens, 0.01 per request → 1600 tokens
    even = {"token_cost_per_1m": Decimal("6.25"), "request_price": Decimal("0.01"),
            "break_even_tokens": Decimal(1600)}
    fig = charts.break_even(points, even)
    names = [t.name for t in fig.data]
    assert names == ["per-token price", "per-request price", "your calls, per-token",
                     "your calls, per-request"]
    assert list(fig.data[1].y) == [0.01, 0.01]
    token_line = fig.data[0]
    slope = token_line.y[1] / token_line.x[1]
    assert abs(slope * 1600 - 0.01) < 1e-12  # the lines cross at the break-even
    assert [t.name for t in charts.break_even(points, None).data] == names[2:]


def test_token_mix_splits_cached_cache_writes_and_reasoning():
    df = pd.DataFrame({"model": ["m"], "input_tokens": [100], "cached_tokens": [30],
                       "cache_write_tokens": [25], "output_tokens": [50],
                       "reasoning_tokens": [20]})
    fig = charts.token_mix(df)
    got = {t.name: list(t.y)[0] for t in fig.data}
    assert got == {"uncached input": 45, "cached input": 30, "cache writes": 25, "output": 30,
                   "reasoning": 20}


def test_savings_bar_leaves_out_unknown_savings():
    df = pd.DataFrame({"name": ["a", "b"], "saving": [Decimal("3"), None]})
    fig = charts.savings_bar(df, "name")
    assert list(fig.data[0].y) == ["a"]


def test_percentiles_and_histogram_builders():
    lat = pd.DataFrame({"model": ["m"], "latency_p50": [10.0], "latency_p90": [20.0],
                        "latency_p99": [30.0]})
    assert {t.name for t in charts.percentiles(lat).data} == {"p50", "p90", "p99"}
    hist = pd.DataFrame({"model": ["m", "m"], "tokens_from": [1, 2], "calls": [3, 4]})
    assert list(charts.tokens_histogram(hist).data[0].y) == [3, 4]


def test_password_hashes_verify_and_never_store_the_password():
    stored = auth.hash_password("correct horse", iterations=1000)
    assert "correct horse" not in stored
    assert auth.verify_password("correct horse", stored)
    assert not auth.verify_password("wrong", stored)


def test_roles_and_when_a_login_is_required(tmp_path):
    users = tmp_path / "users.toml"
    users.write_text(f'[users.ann]\npassword = "{auth.hash_password("a", iterations=1000)}"\n'
                     'role = "finance"\n')
    loaded = auth.load_users(users)
    assert auth.login("ann", "a", users=loaded, shared_password=None).sees_all_keys
    assert auth.login("ann", "b", users=loaded, shared_password=None) is None
    assert auth.login_required("127.0.0.1", configured=False) is False
    assert auth.login_required("0.0.0.0", configured=False) is True
    assert auth.login_required(None, configured=False) is True  # Streamlit's default: all
    users.write_text('[users.x]\npassword = "plain"\nrole = "finance"\n')
    try:
        auth.load_users(users)
    except auth.AuthConfigError as exc:
        assert "hashed" in str(exc)
    else:
        raise AssertionError("a plain password in the users file must be refused")


def test_filters_periods_and_money_display():
    f = Filters(date(2025, 3, 10), date(2025, 3, 16), tz="Europe/Berlin")
    start, end = f.bounds()
    assert start.isoformat() == "2025-03-10T00:00:00+01:00"
    assert end.isoformat() == "2025-03-17T00:00:00+01:00"
    assert (f.previous().start, f.previous().end) == (date(2025, 3, 3), date(2025, 3, 9))
    assert Display("EUR", Decimal("0.5")).money(Decimal("10.005")) == "5.00 EUR"
    assert Display().money(None) == "—"


# --- charts that survive 30 models and 30 keys ---------------------------------------------

def _spend_by_key(n: int) -> pd.DataFrame:
    rows = []
    for k in range(n):
        for day in (1, 2):   # key k spends k+1 cents a day: key 29 spends most
            rows.append({"bucket": datetime(2025, 3, day), "name": f"key-{k:02d}",
                         "cost": Decimal(k + 1) / 100})
    return pd.DataFrame(rows)


def test_spend_over_time_keeps_the_top_keys_by_spend_and_folds_the_rest_into_other():
    df = _spend_by_key(30)
    fig = charts.spend_over_time(df)
    names = [t.name for t in fig.data]
    assert names == [f"key-{k:02d}" for k in range(29, 20, -1)] + ["other"]  # by spend
    assert len({t.marker.color for t in fig.data}) == len(fig.data)           # distinct colours
    assert next(t for t in fig.data if t.name == "other").marker.color == charts.OTHER_COLOUR
    drawn = sum(sum(t.y) for t in fig.data)
    assert abs(drawn - float(sum(df["cost"]))) < 1e-9                         # nothing lost
    other = next(t for t in fig.data if t.name == "other")
    assert abs(sum(other.y) - 2 * sum(k + 1 for k in range(21)) / 100) < 1e-9


def test_few_groups_have_no_other():
    fig = charts.spend_over_time(_spend_by_key(3))
    assert [t.name for t in fig.data] == ["key-02", "key-01", "key-00"]


def test_tokens_histogram_is_in_numeric_order_and_readable_with_37_models():
    bins = [4096, 128, 1024, 16, 512]   # arrives in any order; "1024" < "128" as text
    df = pd.DataFrame([{"model": f"model-{m:02d}", "tokens_from": b, "calls": m + 1}
                       for m in range(37) for b in bins])
    fig = charts.tokens_histogram(df)
    assert list(fig.layout.xaxis.categoryarray) == ["16–31", "128–255", "512–1,023",
                                                    "1,024–2,047", "4,096–8,191"]
    assert len(fig.data) == charts.TOP + 1 and fig.data[-1].name == "other"
    assert fig.data[0].name == "model-36"                   # most calls first
    assert fig.layout.barmode == "stack"
    assert sum(sum(t.y) for t in fig.data) == int(df["calls"].sum())


def test_token_mix_keeps_top_models_by_tokens():
    df = pd.DataFrame({"model": [f"m{i}" for i in range(30)], "input_tokens": range(30),
                       "cached_tokens": 0, "cache_write_tokens": 0,
                       "output_tokens": 1, "reasoning_tokens": 0})
    fig = charts.token_mix(df)
    assert list(fig.layout.xaxis.categoryarray) == \
        [f"m{i}" for i in range(29, 20, -1)] + ["other"]


def test_latency_and_ttft_charts_are_titled_and_in_seconds():
    df = pd.DataFrame({"model": ["a", "b"], "calls": [10, 20],
                       "latency_p50": [1200.0, 800.0], "latency_p90": [2500.0, 900.0],
                       "latency_p99": [4000.0, 1000.0],
                       "ttft_p50": [300.0, None], "ttft_p90": [500.0, None],
                       "ttft_p99": [900.0, None]})
    lat = charts.percentiles(df, "latency")
    assert lat.layout.title.text == "Latency (s)"
    assert lat.layout.yaxis.title.text == "seconds"
    p50 = next(t for t in lat.data if t.name == "p50")
    assert list(p50.x) == ["b", "a"] and list(p50.y) == [0.8, 1.2]
    ttft = charts.percentiles(df, "ttft")
    assert ttft.layout.title.text == "Time to first token (s)"
    assert {x for t in ttft.data for x in t.x} == {"a"}     # b has no streams
