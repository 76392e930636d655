"""Price what-if before commit (Prices page): the before/after totals and per-model change
shown BEFORE saving are what loading the sheet then does; an edit that rewrites a loaded row is
warned about, a new dated row is not; the previous sheet can be reloaded (undo)."""

from __future__ import annotations

from decimal import Decimal

from dashboard_ledger import sql
from test_pages_sync_prices import _edit, metrics, open_page

from dashboard.filters import Display
from ledger.connect import open_ledger
from pricing import load_prices
from pricing.sheet import read_sheet
from pricing.whatif import history_rewrites, previous_sheet, sheet_impact

money = Display().money
SHEET = """model,effective_from,input,cached_input,output,request
gpt-4o,2025-01-01,2.5,1.25,10,
gpt-4o-c,2025-01-01,,,,0.01
"""


def _total(path: str) -> Decimal:
    return sql(path, "SELECT sum(cost) FROM priced_calls")[0][0]


def _by_model(path: str) -> dict[str, Decimal]:
    return dict(sql(path, "SELECT model, sum(cost) FROM priced_calls GROUP BY model"))


def test_the_preview_is_what_loading_then_does_and_changes_nothing(ledger_path, tmp_path):
    sheet_file = tmp_path / "new.csv"
    sheet_file.write_text(SHEET.replace("gpt-4o,2025-01-01,2.5", "gpt-4o,2025-01-01,3")
                          + "gpt-4o,2025-03-01,5,2.5,20,\n")
    sheet = read_sheet(sheet_file)
    before_rows = sql(ledger_path, "SELECT * FROM prices ORDER BY ALL")
    before, before_models = _total(ledger_path), _by_model(ledger_path)
    conn = open_ledger(ledger_path)
    try:
        impact = sheet_impact(conn, sheet)
        assert conn.execute("SELECT * FROM prices ORDER BY ALL").fetchall() == before_rows
        load_prices(conn, sheet)
    finally:
        conn.close()
    assert impact.before == before
    assert impact.after == _total(ledger_path) and impact.after != before
    assert impact.change == impact.after - before
    after_models = _by_model(ledger_path)
    got = {r.model: r.delta for r in impact.by_model.itertuples() if r.delta is not None}
    assert got == {m: after_models[m] - before_models[m] for m in got}
    assert got["gpt-4o"] > 0 and got["gpt-4o-c"] == 0
    unpriced = impact.by_model.set_index("model").loc["mystery-model"]
    assert unpriced["unpriced_before"] == unpriced["unpriced_after"] > 0   # still unpriced


def test_rewriting_a_loaded_row_is_named_a_new_dated_row_is_not(ledger_path, tmp_path):
    loaded = open_ledger(ledger_path).execute("SELECT * FROM prices").df()
    dated = tmp_path / "dated.csv"
    dated.write_text(SHEET + "gpt-4o,2025-03-15,3,1.5,12,\n")
    assert history_rewrites(loaded, read_sheet(dated)) == []
    rewritten = tmp_path / "rewritten.csv"
    rewritten.write_text(SHEET.replace("gpt-4o,2025-01-01,2.5", "gpt-4o,2025-01-01,3")
                         .replace("gpt-4o-c,2025-01-01,,,,0.01\n", ""))
    changes = {(r["model"], r["change"]) for r in history_rewrites(loaded, read_sheet(rewritten))}
    assert changes == {("gpt-4o", "changed: input 2.5 → 3"), ("gpt-4o-c", "removed")}


def test_undo_reloads_the_previous_sheet_with_its_rows(ledger_path, tmp_path):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(SHEET)
    second.write_text(SHEET.replace(",0.01", ",0.05"))
    conn = open_ledger(ledger_path)
    try:
        assert previous_sheet(conn) is None
        load_prices(conn, first)
        total_first = conn.execute("SELECT sum(cost) FROM priced_calls").fetchone()[0]
        load_prices(conn, second)
        assert conn.execute("SELECT sum(cost) FROM priced_calls").fetchone()[0] != total_first
        info, sheet = previous_sheet(conn)
        assert info.sheet.endswith("first.csv") and info.rows == 2
        assert sheet.rows == read_sheet(first).rows
        load_prices(conn, sheet)
        assert conn.execute("SELECT sum(cost) FROM priced_calls").fetchone()[0] == total_first
        assert previous_sheet(conn)[0].sheet.endswith("second.csv")
    finally:
        conn.close()


def test_the_page_shows_the_change_before_saving_and_can_undo(app, ledger_path):
    before = _total(ledger_path)
    open_page(app, "prices")
    _edit(app, "gpt-4o-c", "request", "0.02")                  # 109 charged calls, +0.01 each
    change = Decimal("0.01") * 109
    shown = metrics(app)
    assert shown["Priced total now"] == money(before)
    assert shown["With this sheet"] == money(before + change)
    assert shown["Change"] == money(change)
    assert any("rewrites history" in w.value for w in app.warning)
    assert _total(ledger_path) == before                       # nothing saved yet
    app.button(key="save_prices").click()
    app.run()
    assert _total(ledger_path) == before + change

    _edit(app, "gpt-4o-c", "request", "0.03")                  # a second sheet, then undo
    app.button(key="save_prices").click()
    app.run()
    assert _total(ledger_path) == before + 2 * change
    undo = app.button(key="undo_prices")
    assert "prices-edited-in-dashboard.csv" in undo.label and "/tmp" not in undo.label
    undo.click()
    app.run()
    assert not app.exception, app.exception
    assert _total(ledger_path) == before + change
    assert any("previous sheet" in s.value for s in app.success)
