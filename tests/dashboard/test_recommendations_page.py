"""Recommendations page on the messy ledger: headline, cards naming key and model, grouped by
kind, following the sidebar's keys and models, and drawn when started outside the repository
(bug 3: data/models.csv is the shipped copy, not a path relative to the working directory)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from dashboard_ledger import APP, sql
from messy_ledger import CSV_LABEL, KEY_ADS, KEY_SEARCH, build_messy_ledger
from streamlit.testing.v1 import AppTest

from dashboard.filters import Display
from ledger.connect import open_ledger
from pricing.recommend import recommend

money = Display().money


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    return build_messy_ledger(tmp_path_factory.mktemp("messy") / "ledger.duckdb")


def _month_end(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _app(messy, monkeypatch, **params) -> AppTest:
    monkeypatch.setenv("CALLMETER_DB", messy.path)
    monkeypatch.delenv("CALLMETER_DASHBOARD_PASSWORD", raising=False)
    monkeypatch.delenv("CALLMETER_USERS_FILE", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"from": str(messy.closed_month),
                            "to": str(_month_end(messy.closed_month)), "tz": "UTC", **params})
    at.run()
    at.switch_page("app_pages/recommendations.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _expected(messy) -> list:
    conn = open_ledger(messy.path)
    try:
        return recommend(conn, messy.closed_month, _month_end(messy.closed_month)
                         + timedelta(days=1))
    finally:
        conn.close()


def _key_of(messy, hint: str) -> str:
    return sql(messy.path, "SELECT any_value(key_id) FROM calls WHERE key_hint = ?", [hint])[0][0]


def test_headline_cards_and_table_outside_the_repository(messy, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)   # bug 3: no data/models.csv here
    want = _expected(messy)
    assert {r.kind for r in want} >= {"switch_variant", "rate_limits"}
    at = _app(messy, monkeypatch)
    days = _month_end(messy.closed_month).day
    best: dict = {}   # alternatives for one key and model do not add up: the largest counts
    for r in want:
        if r.saving is not None:
            best[(r.key_id, r.model)] = max(best.get((r.key_id, r.model), 0), r.saving)
    monthly = sum(v * 30 / days for v in best.values())
    assert len([r for r in want if r.saving is not None]) > len(best)   # there are some
    headings = [h.value for h in at.subheader]
    assert f"{len(want)} actions, {money(monthly)} a month" in headings
    assert any(h.startswith("Switch billing variant (same model): ") for h in headings)
    assert any(h.startswith("Rate limits (429s): ") for h in headings)
    cards = " ".join(m.value for m in at.markdown)
    assert f"Key: **{CSV_LABEL}** · Model: **gpt-4o**" in cards   # the switch, by label
    shown = at.dataframe[-1].value
    assert list(shown["Action"]) == [r.action for r in want]
    assert shown.columns[0] == "Key" and CSV_LABEL in set(shown["Key"])
    assert KEY_SEARCH not in cards and KEY_ADS not in cards   # hints at most, never a key


def test_follows_the_sidebar_keys_and_models(messy, monkeypatch):
    want = _expected(messy)
    label_ref = f"label:{CSV_LABEL}"    # a label-only key, as the sidebar names it
    assert {r.key_id for r in want} == {label_ref}
    mine = _app(messy, monkeypatch, keys=label_ref).dataframe[-1].value
    assert list(mine["Action"]) == [r.action for r in want]
    at = _app(messy, monkeypatch, keys=_key_of(messy, "sk-…a1b2"))
    assert not at.dataframe and "Nothing worth changing" in at.success[0].value
    by_model = _app(messy, monkeypatch, models="gpt-4o-c").dataframe[-1].value
    assert set(by_model["Model"].dropna()) == {"gpt-4o"}
    assert len(by_model) == len([r for r in want if r.model in ("gpt-4o", None)])
    mini = _app(messy, monkeypatch, models="gpt-4o-mini").dataframe[-1].value
    assert "gpt-4o" not in set(mini["Model"])


def test_savings_are_the_engines_own_to_the_cent(messy, monkeypatch):
    at = _app(messy, monkeypatch)
    shown = at.dataframe[-1].value
    want = _expected(messy)
    days = _month_end(messy.closed_month).day
    for (_, row), r in zip(shown.iterrows(), want, strict=True):
        if r.saving is None:
            assert row["Saving (USD)"] != row["Saving (USD)"]   # NULL (drawn as "—")
            continue
        assert abs(row["Saving (USD)"] - float(r.saving)) < 1e-9
        assert abs(row["Saving a month (USD)"] - float(r.saving * 30 / days)) < 1e-9


def test_says_when_sidebar_filters_do_not_narrow_it(messy, monkeypatch):
    """Endpoint, billing-mode and tag filters are not applied to recommendations: the page
    says so instead of implying they are."""
    plain = _app(messy, monkeypatch)
    assert not [i for i in plain.info if "do not narrow" in i.value]
    tagged = _app(messy, monkeypatch, endpoints="chat")
    assert [i for i in tagged.info if "do not narrow" in i.value]
