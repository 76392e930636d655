"""The one formatting layer (dashboard.tables): what a person reads in a table and a CSV."""

from __future__ import annotations

import io
from decimal import Decimal

import pandas as pd

from dashboard.filters import Display
from dashboard.tables import NO_KEY, export_csv, header, human_frame, money_places, styled

USD = Display()


def _keys() -> pd.DataFrame:
    return pd.DataFrame({
        "key_id": ["k1:aaa", "k1:bbb", None],
        "key_hint": ["sk-…aaaa", "sk-…bbbb", None],
        "key_label": ["search-bot", None, None],
        "cost": [Decimal("1234.5"), None, Decimal("0.000000000000001")],
        "calls": [12345, 3, 1],
        "e401": [1, 0, 0],
        "daily": [[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]],
    })


def test_headers_are_words_with_units_and_the_key_label_comes_first():
    frame = human_frame(_keys(), USD)
    assert list(frame.columns) == ["Key", "Key hint", "Cost (USD)", "Calls", "401s",
                                   "Daily spend"]
    # label, else hint, else "(no key)"; the fingerprint is hidden
    assert list(frame["Key"]) == ["search-bot", "sk-…bbbb", NO_KEY]
    assert header("cost", "EUR") == "Cost (EUR)"
    assert header("some_new_thing", "USD") == "Some new thing"


def test_display_text_has_separators_consistent_decimals_and_a_dash_for_null():
    frame = human_frame(_keys(), USD)
    html = styled(frame, "USD").to_html()
    assert "1,234.50" in html and "12,345" in html
    assert "0.00" in html  # same 2 decimals down the column
    assert "—" in html and "None" not in html and "nan" not in html


def test_a_table_too_large_to_style_still_shows_a_dash_not_none(monkeypatch):
    import dashboard.tables as tables

    monkeypatch.setattr(tables, "STYLE_LIMIT", 1)
    shown = styled(human_frame(_keys(), USD), "USD")
    assert isinstance(shown, pd.DataFrame)
    assert list(shown["Key hint"]) == ["sk-…aaaa", "sk-…bbbb", "—"]
    assert pd.isna(shown["Cost (USD)"].iloc[1])  # numbers stay numbers, to sort


def test_per_call_costs_get_more_decimals():
    assert money_places(pd.Series([Decimal("0.00125"), Decimal("0.0004")])) == 4
    assert money_places(pd.Series([Decimal("0.000002"), None])) == 6
    assert money_places(pd.Series([Decimal("3.5"), Decimal("0.0001")])) == 2
    assert money_places(pd.Series([None, None])) == 2


def test_display_rate_converts_money_and_names_the_currency():
    frame = human_frame(_keys(), Display(currency="EUR", rate=Decimal("0.5")))
    assert frame["Cost (EUR)"].iloc[0] == 617.25


def test_csv_keeps_fingerprints_exact_decimals_and_empty_for_unpriced():
    text = export_csv(_keys(), USD).decode()
    back = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    assert list(back.columns) == ["Key", "Key fingerprint", "Key hint", "Cost (USD)", "Calls",
                                  "401s"]  # no sparkline list in a CSV
    assert list(back["Cost (USD)"]) == ["1234.500000", "", "0.000000"]
    assert "E-" not in text and "e-" not in text
