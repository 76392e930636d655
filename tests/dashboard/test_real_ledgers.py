"""Issue 17 (trust and figures): every page on a ledger that looks like users' ledgers."""

from __future__ import annotations

from datetime import date

import pytest
from dashboard_ledger import sql

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


def _login_owner(at, tmp_path, monkeypatch, keys: list[str]) -> None:
    from dashboard.auth import hash_password

    users = tmp_path / "users.toml"
    users.write_text(f'[users.bob]\npassword = "{hash_password("pw", iterations=1000)}"\n'
                     f'role = "owner"\nkeys = {keys!r}\n'.replace("'", '"'))
    monkeypatch.setenv("CALLMETER_USERS_FILE", str(users))
    at.run()
    at.text_input[0].input("bob")
    at.text_input[1].input("pw")
    at.button[0].click()
    at.run()
    at.run()


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
    _login_owner(messy, tmp_path, monkeypatch, ["search-bot"])
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

    from dashboard.connection import Ledger
    from dashboard.queries import breakdown, month_filters

    ledger = Ledger(messy_path)
    f = month_filters(date(2025, 3, 1))
    df = breakdown.__wrapped__(ledger, "m", f, ("tag:team", "tag:env"))
    pairs = set(zip(df["tag_team"], df["tag_env"], strict=True))
    conn = duckdb.connect(messy_path)
    want = set(conn.execute(
        f"SELECT DISTINCT coalesce(tags['team'], '(untagged)'), coalesce(tags['env'], "
        f"'(untagged)') FROM calls WHERE {MARCH_SQL}").fetchall())
    conn.close()
    assert pairs == want and ("ops", "prod") in pairs


def test_bug6_owner_scoped_by_key_hint(messy, messy_path, tmp_path, monkeypatch):
    _login_owner(messy, tmp_path, monkeypatch, ["sk-…fc65"])
    assert not messy.exception, messy.exception
    (cost,) = sql(messy_path, f"SELECT sum(cost) FROM priced_calls WHERE {MARCH_SQL} "
                              "AND key_hint = 'sk-…fc65'")[0]
    assert metrics(messy)["Spend"] == Display().money(cost)
    assert list(messy.sidebar.multiselect(key="f_keys").options) == ["k1:ccc"]


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
