"""The Billing page's quote calculator prices a planned workload with ``pricing.quote`` (the
function behind ``callmeter quote``) on the ledger's sheet: the same options, totals and
break-even, shown before anything is recorded."""

from __future__ import annotations

from decimal import Decimal

from dashboard.filters import Display
from ledger.connect import open_ledger
from pricing.quote import Workload, quote
from pricing.recommend import load_models

money = Display().money


def _quote_on(app, **fields):
    app.run()
    app.switch_page("app_pages/billing.py")
    app.run()
    assert not app.exception, app.exception
    for key, value in fields.items():
        app.number_input(key=key).set_value(value)
    app.button[[b.label for b in app.button].index("Quote")].click()
    app.run()
    assert not app.exception, app.exception
    return app


def test_quote_is_callmeter_quote_on_the_ledgers_sheet(app, ledger_path):
    at = _quote_on(app, q_calls=250_000, q_input=2_400, q_output=350, q_cached=30,
                   q_written=10)
    work = Workload("gpt-4o", 250_000, 2_400, 350, Decimal("0.3"),
                    cache_write_share=Decimal("0.1"))
    conn = open_ledger(ledger_path)
    try:
        want = quote(conn, work, load_models())
    finally:
        conn.close()
    shown = at.dataframe[-1].value
    assert list(shown["Model"]) == [o.model for o in want.options]
    assert list(shown["Option"]) == [o.group for o in want.options]
    for (_, row), o in zip(shown.iterrows(), want.options, strict=True):
        if o.cost is None:
            assert row["Cost (USD)"] != row["Cost (USD)"]        # unpriced: NULL, never 0
        else:
            assert abs(row["Cost (USD)"] - float(o.cost)) < 1e-9
    text = " ".join(m.value for m in at.markdown)
    assert want.cheapest is not None
    assert f"**{want.cheapest.model}** ({want.cheapest.group}), " \
           f"**{money(want.cheapest.cost)} a month**" in text
    assert want.break_even is not None
    assert f"about **{want.break_even['break_even_tokens']:,} tokens per call**" in text
    assert f"**per {want.break_even['cheaper_mode']}** is cheaper" in text


def test_an_impossible_workload_is_a_message(app):
    at = _quote_on(app, q_cached=70, q_written=50)
    assert any("cannot pass 1" in e.value for e in at.error)
