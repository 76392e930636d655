"""Every page through Streamlit's AppTest on a small hand-built ledger.

Numbers on the page are compared with SQL run here on ``priced_calls``, independently of the
dashboard's query layer and its rollup.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from dashboard_ledger import APP, MARCH, build_ledger, login_owner, sql
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from dashboard.filters import Display
from ledger.config import spool_dir
from ledger.connect import open_ledger
from ledger.spool import SpoolWriter
from pricing import break_even_tokens, load_prices

MARCH_SQL = ("started_at >= TIMESTAMPTZ '2025-03-01 00:00:00+00' "
             "AND started_at < TIMESTAMPTZ '2025-04-01 00:00:00+00'")
PAGES = ("overview", "models", "keys", "key_detail", "billing", "recommendations", "finance",
         "prices", "data")
money = Display().money


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def param(app, name: str) -> list[str]:
    value = app.query_params.get(name)
    return value if isinstance(value, list) else [value]


def march(path: str, expr: str, extra: str = "TRUE"):
    return sql(path, f"SELECT {expr} FROM priced_calls WHERE {MARCH_SQL} AND {extra}")[0]


def test_overview_headline_equals_sql(app, ledger_path):
    app.run()
    assert not app.exception
    cost, calls, tokens, errors, unpriced = march(
        ledger_path, "sum(cost), sum(requests), sum(input_tokens + output_tokens), "
        "sum(requests) FILTER (WHERE status >= 400), sum(requests) FILTER (WHERE cost IS NULL)")
    shown = metrics(app)
    assert shown["Spend"] == money(cost)
    assert shown["Calls"] == f"{calls:,}"
    assert shown["Tokens"] == f"{tokens:,}"
    assert shown["Error rate"] == f"{errors / calls:.2%}"
    assert unpriced > 0 and f"{unpriced:,} calls" in app.warning[0].value  # never hidden
    # the filters were written back into the URL, so the view can be shared
    assert param(app, "from") == ["2025-03-01"] and param(app, "tz") == ["UTC"]


def test_filters_come_from_the_url(app, ledger_path):
    app.query_params.update({"keys": "k1:aaa", "tags": "team=search"})
    app.run()
    assert not app.exception
    (cost,) = march(ledger_path, "sum(cost)", "key_id = 'k1:aaa'")
    assert metrics(app)["Spend"] == money(cost)
    assert app.sidebar.multiselect(key="f_keys").value == ["k1:aaa"]


def test_changing_the_period_in_the_sidebar(app, ledger_path):
    from datetime import date

    app.run()
    app.sidebar.date_input(key="f_period").set_value((date(2025, 3, 10), date(2025, 3, 12)))
    app.run()
    assert not app.exception
    (cost,) = sql(ledger_path, "SELECT sum(cost) FROM priced_calls WHERE started_at >= "
                  "TIMESTAMPTZ '2025-03-10 00:00:00+00' AND started_at < "
                  "TIMESTAMPTZ '2025-03-13 00:00:00+00'")[0]
    assert metrics(app)["Spend"] == money(cost)
    assert param(app, "to") == ["2025-03-12"]


def test_a_half_hour_timezone_reads_raw_calls_and_agrees(app, ledger_path):
    app.query_params["tz"] = "Asia/Kolkata"
    app.run()
    assert not app.exception
    (cost,) = sql(ledger_path, "SELECT sum(cost) FROM priced_calls WHERE started_at >= "
                  "TIMESTAMPTZ '2025-03-01 00:00:00+05:30' AND started_at < "
                  "TIMESTAMPTZ '2025-04-01 00:00:00+05:30'")[0]
    assert metrics(app)["Spend"] == money(cost)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(app, page):
    app.run()
    app.switch_page(f"app_pages/{page}.py")
    app.run()
    assert not app.exception, app.exception
    assert app.title[0].value


def test_key_detail_numbers(app, ledger_path):
    app.query_params["key"] = "k1:aaa"
    app.run()
    app.switch_page("app_pages/key_detail.py")
    app.run()
    cost, calls, errors = march(ledger_path, "sum(cost), sum(requests), "
                                "sum(requests) FILTER (WHERE status >= 400)", "key_id = 'k1:aaa'")
    shown = metrics(app)
    assert (shown["Spend"], shown["Calls"], shown["Errors"]) == (
        money(cost), f"{calls:,}", f"{errors:,}")
    assert app.selectbox[0].value == "k1:aaa"


def test_keys_page_lists_each_key_once_without_the_key(app, ledger_path):
    app.run()
    app.switch_page("app_pages/keys.py")
    app.run()
    df = app.dataframe[0].value
    assert sorted(df["Key hint"]) == ["sk-…aaaa", "sk-…bbbb"]
    assert list(df.columns)[0] == "Key" and "Key fingerprint" not in df.columns
    by_key = dict(sql(ledger_path, f"SELECT key_hint, sum(requests) FROM priced_calls "
                                   f"WHERE {MARCH_SQL} GROUP BY 1"))
    assert dict(zip(df["Key hint"], df["Calls"], strict=True)) == by_key


def _pricing_break_even(path: str, base_model: str) -> dict:
    """pricing's own break-even for March, on a connection of this test's own."""
    import duckdb

    conn = duckdb.connect(path)
    try:
        [row] = break_even_tokens(conn, base_model, since=date(2025, 3, 1),
                                  until=date(2025, 4, 1)).to_dict("records")
    finally:
        conn.close()
    return row


def _break_even_text(app) -> str:
    return next(m.value for m in app.markdown if "tokens per call" in m.value)


def test_billing_page_compares_the_same_calls(app, ledger_path):
    app.run()
    app.switch_page("app_pages/billing.py")
    app.run()
    paid, as_token, as_request = march(
        ledger_path, "sum(cost), sum(cost_as_token), sum(cost_as_request)",
        "base_model = 'gpt-4o'")
    shown = metrics(app)
    assert shown["Paid"] == money(paid)
    assert shown["On the cheaper variant"] == money(min(as_token, as_request))
    assert shown["Saving on the cheaper variant"] == money(paid - min(as_token, as_request))
    even = _pricing_break_even(ledger_path, "gpt-4o")
    assert f"about **{even['break_even_tokens']:,} tokens per call**" in _break_even_text(app)


# gpt-4o with a cached-input price and a second tier above 1,000 input tokens per call
TIERED_SHEET = """model,effective_from,input,cached_input,output,request,above_input_tokens
gpt-4o,2025-01-01,2.5,0.25,10,,
gpt-4o,2025-01-01,5,0.5,20,,1000
gpt-4o-c,2025-01-01,,,,0.02,
"""


def test_billing_break_even_is_pricings_own_with_cache_prices_and_tiers(tmp_path, monkeypatch):
    """The page shows ``pricing.break_even_tokens``: cached input at its own price and calls
    above the tier at the tier's price, never a twin that prices every token at the base
    input/output price."""
    path = str(tmp_path / "tiered.duckdb")
    conn = open_ledger(path)
    (tmp_path / "prices.csv").write_text(TIERED_SHEET)
    load_prices(conn, tmp_path / "prices.csv")
    conn.execute(
        "INSERT INTO calls (call_id, source, started_at, key_id, key_hint, endpoint, model, "
        "base_model, billing_mode, status, requests, input_tokens, cached_tokens, output_tokens, "
        "reasoning_tokens, images, characters, audio_seconds, usage_source) "
        "SELECT 'c' || i, 'csv', TIMESTAMPTZ '2025-03-02 00:00:00+00' + i * INTERVAL 1 HOUR, "
        "'k1:aaa', 'sk-…aaaa', 'chat', 'gpt-4o', 'gpt-4o', 'token', 200, 1, "
        "CASE WHEN i % 3 = 0 THEN 4000 ELSE 600 END, CASE WHEN i % 2 = 0 THEN 400 ELSE 0 END, "
        "150, 0, 0, 0, 0, 'reported' FROM range(0, 300) t(i)")
    conn.close()
    monkeypatch.setenv("CALLMETER_DB", path)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(MARCH)
    at.run()
    at.switch_page("app_pages/billing.py")
    at.run()
    assert not at.exception, at.exception
    even = _pricing_break_even(path, "gpt-4o")
    text = _break_even_text(at)
    assert f"about **{even['break_even_tokens']:,} tokens per call**" in text
    # the base input/output prices alone (what the page's old float twin used) disagree
    (share,) = sql(path, "SELECT sum(input_tokens) / sum(input_tokens + output_tokens) "
                         "FROM calls")[0]
    naive = Decimal("0.02") / ((Decimal(str(round(share, 6))) * Decimal("2.5")
                                + (1 - Decimal(str(round(share, 6)))) * 10) / 10**6)
    assert naive.quantize(Decimal(1)) != even["break_even_tokens"]


def test_finance_matches_the_report_total(app, ledger_path):
    app.run()
    app.switch_page("app_pages/finance.py")
    app.run()
    assert not app.exception
    assert app.selectbox[0].value.strftime("%Y-%m") == "2025-03"
    cost, charged = march(ledger_path, "sum(cost), sum(charged)")
    assert metrics(app)["Ledger cost"] == money(cost)
    assert metrics(app)["Platform charged"] == money(charged)
    assert len(app.get("download_button")) >= 2  # CSV and Excel


def test_data_page_counts_and_spool_loaded_on_refresh(app, ledger_path):
    writer = SpoolWriter(spool_dir(ledger_path))
    writer.append({"call_id": "proxy-1", "source": "proxy",
                   "started_at": "2025-03-30T12:00:00+00:00", "model": "gpt-4o",
                   "key_id": "k1:aaa", "key_hint": "sk-…aaaa", "input_tokens": 10,
                   "output_tokens": 5, "status": 200, "endpoint": "chat", "requests": 1})
    writer.close()
    app.run()
    app.switch_page("app_pages/data.py")
    app.run()
    assert not app.exception
    assert metrics(app)["Rows"] == "601"
    assert metrics(app)["Last proxy call"].startswith("2025-03-30")


def test_empty_ledger_shows_first_run_page(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLMETER_DB", build_ledger(tmp_path / "empty.duckdb", with_calls=False))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Welcome to callmeter"
    assert "callmeter demo" in at.markdown[0].value


def test_beyond_localhost_without_password_refuses(app):
    st_config.set_option("server.address", "0.0.0.0")
    app.run()
    assert not app.exception
    assert "needs a login" in app.error[0].value
    assert not app.metric


def test_shared_password_login(app, ledger_path, monkeypatch):
    st_config.set_option("server.address", "0.0.0.0")
    monkeypatch.setenv("CALLMETER_DASHBOARD_PASSWORD", "s3cret")
    app.run()
    assert not app.metric
    app.text_input[1].input("wrong")
    app.button[0].click()
    app.run()
    assert "Wrong user or password." in [e.value for e in app.error]
    app.text_input[1].input("s3cret")
    app.button[0].click()
    app.run()
    app.run()
    (cost,) = march(ledger_path, "sum(cost)")
    assert metrics(app)["Spend"] == money(cost)


def test_key_owner_sees_only_their_keys(app, ledger_path, tmp_path, monkeypatch):
    login_owner(app, tmp_path, monkeypatch, ["search-bot"])
    (cost,) = march(ledger_path, "sum(cost)", "key_id = 'k1:aaa'")
    assert metrics(app)["Spend"] == money(cost)
    assert list(app.sidebar.multiselect(key="f_keys").options) == ["search-bot"]
    app.switch_page("app_pages/keys.py")
    app.run()
    assert list(app.dataframe[0].value["Key hint"]) == ["sk-…aaaa"]
    assert Decimal(0) <= Decimal(str(cost))


def test_key_detail_shows_budget_burn_and_run_out(app, ledger_path):
    from ledger.connect import open_ledger
    from pricing.budgets import Budget, set_budget

    conn = open_ledger(ledger_path)
    set_budget(conn, Budget("key", "search-bot", Decimal("0.40")))  # by label
    conn.close()
    app.query_params["key"] = "k1:aaa"
    app.run()
    app.switch_page("app_pages/key_detail.py")
    app.run()
    assert not app.exception, app.exception
    (spent,) = march(ledger_path, "sum(cost)", "key_id = 'k1:aaa'")
    (week,) = sql(ledger_path, "SELECT sum(cost) FROM priced_calls WHERE key_id = 'k1:aaa' AND "
                  "started_at >= TIMESTAMPTZ '2025-03-24 00:00:00+00' AND "
                  "started_at < TIMESTAMPTZ '2025-03-31 00:00:00+00'")[0]
    shown = metrics(app)
    assert shown["Budget 2025-03"] == money(Decimal("0.40"))
    assert shown["Spent"] == money(spent)
    assert shown["Burn per day (last 7 days)"] == money(week / 7)
    # as of the period's last day (31 March): over budget already, so it ran out that day
    assert spent > Decimal("0.40") and shown["Runs out"] == "2025-03-31"


def test_recommendations_page_lists_pricing_recommend(app, ledger_path):
    from datetime import date

    from ledger.connect import open_ledger
    from pricing.recommend import recommend

    conn = open_ledger(ledger_path)
    want = [r.action for r in recommend(conn, date(2025, 3, 1), date(2025, 4, 1))]
    conn.close()
    app.run()
    app.switch_page("app_pages/recommendations.py")
    app.run()
    assert not app.exception, app.exception
    if want:
        assert list(app.dataframe[0].value["Action"]) == want
    else:  # the hand-built ledger's savings are below the default thresholds (5.00)
        assert "Nothing worth changing" in app.success[0].value
