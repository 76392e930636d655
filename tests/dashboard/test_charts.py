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
