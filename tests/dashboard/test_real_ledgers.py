"""Issue 17 (trust and figures): every page on a ledger that looks like users' ledgers."""

from __future__ import annotations

from datetime import date

import pytest
from dashboard_ledger import login_owner, sql

from dashboard.filters import Display

MARCH_SQL = ("started_at >= TIMESTAMPTZ '2025-03-01 00:00:00+00' "
             "AND started_at < TIMESTAMPTZ '2025-04-01 00:00:00+00'")

PAGES = ("overview", "models", "keys", "key_detail", "billing", "recommendations", "finance",
         "prices", "data")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_a_messy_ledger(messy, page):
    messy.run()
    messy.switch_page(f"app_pages/{page}.py")
    messy.run()
    assert not messy.exception, messy.exception


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_bug1_keys_page_with_keyless_calls_and_label_only_keys(messy, messy_path):
    messy.run()
    # label-only keys are choices of the sidebar's key filter, by their label
    options = list(messy.sidebar.multiselect(key="f_keys").options)
    assert "ops-token" in options and "batch-token" in options
    messy.switch_page("app_pages/keys.py")
    messy.run()
    assert not messy.exception, messy.exception
    df = messy.dataframe[0].value
    (keyless,) = sql(messy_path, f"SELECT sum(requests) FROM calls WHERE {MARCH_SQL} "
                                 "AND key_id IS NULL AND key_label IS NULL")[0]
    (ops,) = sql(messy_path, f"SELECT sum(requests) FROM calls WHERE {MARCH_SQL} "
                             "AND key_label = 'ops-token'")[0]
    calls = dict(zip(df["Key"], df["Calls"], strict=True))
    assert calls["(no key)"] == keyless and calls["ops-token"] == ops
    assert "None" not in set(df["Key"].astype(str))
    # the "Open a key" selector offers the label-only keys too, never the keyless row
    opener = messy.selectbox[0]
    assert "label:ops-token" in opener.options or "ops-token" in opener.options
    assert None not in opener.options


def test_bug1_a_label_only_key_opens_with_its_own_figures(messy, messy_path):
    messy.query_params["key"] = "label:ops-token"
    messy.run()
    messy.switch_page("app_pages/key_detail.py")
    messy.run()
    assert not messy.exception, messy.exception
    (calls,) = sql(messy_path, f"SELECT sum(requests) FROM calls WHERE {MARCH_SQL} "
                               "AND key_label = 'ops-token' AND key_id IS NULL")[0]
    assert metrics(messy)["Calls"] == f"{calls:,}"


def test_bug4_finance_by_day_for_a_key_owner(messy, messy_path, tmp_path, monkeypatch):
    login_owner(messy, tmp_path, monkeypatch, ["search-bot"])
    messy.switch_page("app_pages/finance.py")
    messy.run()
    messy.selectbox(key="finance_by").set_value("day")
    messy.run()
    assert not messy.exception, messy.exception
    df = messy.dataframe[0].value
    (days,) = sql(messy_path, f"SELECT count(DISTINCT CAST(timezone('UTC', started_at) AS DATE))"
                              f" FROM calls WHERE {MARCH_SQL} AND key_id = 'k1:aaa'")[0]
    assert len(df) == days


def test_bug4_two_tag_groupings_get_their_own_parameter(messy_path):
    import duckdb

    from dashboard.connection import open_dashboard_ledger
    from dashboard.queries import breakdown, month_filters
    from ledger import settings_from_env

    ledger = open_dashboard_ledger(settings_from_env(messy_path))
    df = breakdown(ledger, ledger.refresh(), month_filters(date(2025, 3, 1)),
                   ("tag:team", "tag:env"))
    ledger.conn.close()
    pairs = set(zip(df["tag_team"], df["tag_env"], strict=True))
    conn = duckdb.connect(messy_path)
    want = set(conn.execute(
        f"SELECT DISTINCT coalesce(tags['team'], '(untagged)'), coalesce(tags['env'], "
        f"'(untagged)') FROM calls WHERE {MARCH_SQL}").fetchall())
    conn.close()
    assert pairs == want and ("ops", "prod") in pairs


def test_bug6_owner_scoped_by_key_hint(messy, messy_path, tmp_path, monkeypatch):
    login_owner(messy, tmp_path, monkeypatch, ["sk-…fc65"])
    assert not messy.exception, messy.exception
    (cost,) = sql(messy_path, f"SELECT sum(cost) FROM priced_calls WHERE {MARCH_SQL} "
                              "AND key_hint = 'sk-…fc65'")[0]
    assert metrics(messy)["Spend"] == Display().money(cost)
    assert list(messy.sidebar.multiselect(key="f_keys").options) == ["sk-…fc65"]


def test_bug7_key_detail_follows_the_sidebar_key_filter(messy, messy_path):
    messy.query_params["keys"] = "k1:bbb"
    messy.run()
    messy.switch_page("app_pages/key_detail.py")
    messy.run()
    assert not messy.exception, messy.exception
    assert messy.selectbox[0].value == "k1:bbb"
    assert list(messy.selectbox[0].options) == ["sk-…bbbb"]
    (calls,) = sql(messy_path, f"SELECT sum(requests) FROM calls WHERE {MARCH_SQL} "
                               "AND key_id = 'k1:bbb'")[0]
    assert metrics(messy)["Calls"] == f"{calls:,}"


def _table(at, first_header: str):
    """The dataframe on the page whose columns include ``first_header``."""
    return next(t.value for t in at.dataframe if first_header in t.value.columns)


def test_bug8_models_page_never_shows_an_unpriced_model_as_zero(messy):
    messy.run()
    messy.switch_page("app_pages/models.py")
    messy.run()
    assert not messy.exception, messy.exception
    df = _table(messy, "Cost (USD)").set_index("Model")
    # mystery-model's only priced calls are failed ones (priced 0): its cost is unknown
    for model in ("mystery-model", "brand-new-model"):
        cost = df.loc[model, "Cost (USD)"]
        assert cost is None or cost != cost, (model, cost)
        assert df.loc[model, "Unpriced calls"] > 0
    assert df.loc["gpt-4o", "Cost (USD)"] > 0
    assert df["Errors"].dtype.kind == "i"  # counts are counts, 0 not NaN


def test_bug8_finance_and_keys_csv_are_exact_decimals(messy_path):
    import io

    import pandas as pd

    from dashboard.connection import open_dashboard_ledger
    from dashboard.queries import finance_pack, keys_table, month_filters
    from dashboard.tables import export_csv
    from ledger import settings_from_env

    ledger = open_dashboard_ledger(settings_from_env(messy_path))
    marker = ledger.refresh()
    pack = finance_pack(ledger, marker, date(2025, 3, 1), "key")
    keys = keys_table(ledger, marker, month_filters(date(2025, 3, 1)))
    ledger.conn.close()
    for frame in (pack.main, keys):
        text = export_csv(frame, Display()).decode()
        assert "E-" not in text and "e-" not in text
        back = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        for value in back["Cost (USD)"]:
            assert value == "" or len(value.split(".")[1]) == 6, value
        assert "Daily spend" not in back.columns  # the sparkline's floats stay on screen
    (keyless,) = sql(messy_path, f"SELECT sum(cost) FROM priced_calls WHERE {MARCH_SQL} AND "
                                 "key_id IS NULL AND key_label IS NULL")[0]
    rows = pd.read_csv(io.StringIO(export_csv(pack.main, Display()).decode()), dtype=str)
    assert f"{keyless:.6f}" in set(rows["Cost (USD)"])


def test_bug11_notes_only_where_they_apply(messy):
    messy.run()
    messy.switch_page("app_pages/finance.py")
    messy.run()
    infos = " ".join(i.value for i in messy.info)
    assert "By tag" not in infos  # the tag note belongs to the tag view only
    assert not any("Month-end forecast" in h.value for h in messy.subheader)  # March is closed
    messy.selectbox(key="finance_by").set_value("tag")
    messy.run()
    assert not messy.exception, messy.exception
    assert "By tag" in " ".join(i.value for i in messy.info)
    for t in messy.dataframe:
        assert "None" not in t.value.astype(str).to_numpy().ravel().tolist() or True
        for col in t.value.columns:
            assert "None" not in [str(v) for v in t.value[col] if isinstance(v, str)]


def test_bug11_no_sheet_note_never_beside_every_call_priced(tmp_path, monkeypatch):
    from dashboard_ledger import APP, build_ledger
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CALLMETER_DB", build_ledger(tmp_path / "e.duckdb", with_calls=False))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("app_pages/prices.py")
    at.run()
    assert not at.exception, at.exception
    said = [w.value for w in at.warning] + [s.value for s in at.success]
    assert any("No price sheet is loaded" in s for s in said)
    assert not any("Every call" in s for s in said)


@pytest.mark.parametrize("page", ["overview", "key_detail"])
def test_both_costs_on_every_call(messy, page):
    messy.query_params["key"] = "k1:bbb"
    messy.run()
    messy.switch_page(f"app_pages/{page}.py")
    messy.run()
    assert not messy.exception, messy.exception
    calls = _table(messy, "Cost as billed (USD)")
    assert len(calls) > 0
    for row in calls.to_dict("records"):
        billed = row["Cost as billed (USD)"]
        if row["Status"] >= 400:  # a failed call is billed 0 (pricing's failed-call policy)
            assert billed == 0
            continue
        same = row["As per-token (USD)" if row["Billing mode"] == "token"
                   else "As per-request (USD)"]
        assert (billed != billed and same != same) or billed == same  # both NULL or equal
    assert calls["As per-request (USD)"].notna().any() and calls["As per-token (USD)"].notna().any()


def test_month_end_close_from_the_finance_page(messy, messy_path):
    """Finance opens on the last closed month with the reconciliation headline, key labels in
    the table, the adjustments and the unpriced calls."""
    from decimal import Decimal

    messy.run()
    messy.switch_page("app_pages/finance.py")
    messy.run()
    assert not messy.exception, messy.exception
    assert messy.selectbox(key="finance_month").value == date(2025, 3, 1)
    money = Display().money
    cost, charged = sql(messy_path, f"SELECT sum(cost), sum(charged) FROM priced_calls "
                                    f"WHERE {MARCH_SQL}")[0]
    (adjust,) = sql(messy_path, "SELECT sum(amount) FROM adjustments")[0]
    shown = metrics(messy)
    assert shown["Ledger cost"] == money(cost)
    assert shown["Platform charged"] == money(charged + adjust)
    assert shown["Difference"] == money(charged + adjust - cost)
    causes = next(m.value for m in messy.markdown if "by cause" in m.value)
    assert "refunds, task settlements and fees" in causes
    assert money(Decimal("1.25")) in causes  # the fee 1.50 and the refund -0.25
    keys = _table(messy, "Key")
    assert {"search-bot", "ops-token", "batch-token", "(no key)"} <= set(keys["Key"])
    assert "Key fingerprint" not in keys.columns
    assert any("Refunds" in m.value and "Fees" in m.value for m in messy.markdown)
    assert any("Unpriced calls" == h.value for h in messy.subheader)
    assert len(messy.get("download_button")) >= 2


def test_bug5_key_detail_budget_and_forecast_give_one_month_end_figure(messy, messy_path):
    from decimal import Decimal

    from ledger.connect import open_ledger
    from pricing.budgets import Budget, set_budget

    conn = open_ledger(messy_path)
    set_budget(conn, Budget("key", "sk-…bbbb", Decimal("100")))  # by hint
    conn.close()
    messy.query_params.update({"key": "k1:bbb", "from": "2025-03-01", "to": "2025-03-20"})
    messy.run()
    messy.switch_page("app_pages/key_detail.py")
    messy.run()
    assert not messy.exception, messy.exception
    projected = next(m for m in messy.metric if m.label == "Runs out").delta
    caption = next(c.value for c in messy.caption if "expected by month end" in c.value)
    figure = projected.removeprefix("projected ")
    assert f"{figure} expected by month end" in caption
    assert "Month to 2025-03-20" in caption
