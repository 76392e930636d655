"""Prices: the loaded sheet, models left without a price, editing it, uploading a new sheet."""

import csv
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.context import context
from dashboard.layout import table
from pricing import SheetProblem
from pricing.frames import records
from pricing.sheet import PriceSheet

EDITOR_KEY = "price_editor"


def _cell(value: object) -> str:
    """A prices-table value as sheet text: exact decimals, ISO dates, blank for NULL."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def sheet_frame(prices: pd.DataFrame) -> pd.DataFrame:
    """The loaded prices as sheet rows (text cells, so money never passes through float)."""
    from pricing.sheet import SHEET_COLUMNS

    if "sheet_line" in prices.columns:
        prices = prices.sort_values(["sheet_line", "model", "effective_from"], kind="stable")
    rows = [{c: _cell(r.get(c)) for c in SHEET_COLUMNS} for r in records(prices)]
    return pd.DataFrame(rows, columns=list(SHEET_COLUMNS), dtype=object)


def write_sheet_csv(frame: pd.DataFrame, path: Path) -> None:
    from pricing.sheet import SHEET_COLUMNS

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(SHEET_COLUMNS)
        for r in records(frame):
            w.writerow([_cell(r.get(c)).strip() for c in SHEET_COLUMNS])


def where(problem: SheetProblem) -> str:
    """A sheet problem located in the edited table: row (1 = first row) and CSV line."""
    place = f"line {problem.line}" if problem.line <= 1 else \
        f"row {problem.line - 1} (line {problem.line})"
    if problem.column:
        place += f", column {problem.column}"
    return f"{place}: {problem.severity}: {problem.message}"


def preview(sheet: PriceSheet, loaded: pd.DataFrame, name: str) -> None:
    """Before anything is saved: the priced total now and with ``sheet``, the models whose
    cost changes, and the loaded rows it changes or removes (they reprice calls already made)."""
    from pricing.whatif import history_rewrites

    impact = queries.sheet_impact(ctx.ledger, ctx.marker, sheet.sha256, sheet)
    st.markdown("**Before you save: what this sheet does to the ledger**")
    c1, c2, c3 = st.columns(3)
    c1.metric("Priced total now", d.money(impact.before))
    c2.metric("With this sheet", d.money(impact.after))
    c3.metric("Change", d.money(impact.change))
    by_model = impact.by_model
    moved = by_model[[not (dl is not None and dl == dl and dl == 0 and b == a)
                      for dl, b, a in zip(by_model["delta"], by_model["unpriced_before"],
                                          by_model["unpriced_after"], strict=True)]]
    if len(moved):
        table(moved, f"{name}_delta", d)
    else:
        st.caption("No call's cost changes.")
    rewrites = history_rewrites(loaded, sheet)
    if rewrites:
        st.warning(f"This rewrites history: {len(rewrites)} loaded row(s) changed or removed, "
                   "so calls already made since their effective date are repriced. To change a "
                   "price from a date on, keep the old row and add one with a new "
                   "`effective_from` instead.")
        table(pd.DataFrame(rewrites), f"{name}_rewrites", d)


def undo() -> None:
    """Go back to the sheet loaded before the current one (kept in the ledger)."""
    previous = queries.previous_sheet(ctx.ledger)
    if previous is None:
        st.caption("No earlier sheet to go back to.")
        return
    info, sheet = previous
    label = (f"Undo: reload the previous sheet ({Path(info.sheet).name}, {info.rows} rows, "
             f"loaded {info.loaded_at:%Y-%m-%d %H:%M} UTC)")
    if st.button(label, key="undo_prices"):
        from pricing.loader import load_prices

        loaded = load_prices(ctx.ledger.cursor(), sheet)
        ctx.ledger.refresh(force=True)
        st.session_state.pop(EDITOR_KEY, None)
        st.session_state["prices_undone"] = loaded.rows
        st.rerun()


ctx = context()
d = ctx.display
st.title("Prices")

prices = queries.prices_table(ctx.ledger, ctx.marker)
st.subheader("Loaded sheet")
if len(prices):
    table(prices, "prices", d)
else:
    st.warning("No price sheet is loaded, so every call is unpriced. Load one below or with "
               "`callmeter prices load data/prices.csv`.")

unpriced = queries.unpriced_models(ctx.ledger, ctx.marker)
st.subheader("Models without a price")
if len(unpriced):
    st.warning(f"{int(unpriced['unpriced_calls'].sum()):,} calls on {len(unpriced)} model(s) "
               "have no price; add rows for them to the sheet.")
    table(unpriced, "unpriced_models", d)
elif len(prices) and queries.ledger_summary(ctx.ledger, ctx.marker)["calls"]:
    st.success("Every call in the ledger has a price.")  # never beside "no sheet is loaded"

if not ctx.user.sees_all_keys:
    st.caption("Only finance users can change prices.")
    st.stop()

st.subheader("Edit the sheet")
st.caption("Change, add or delete rows (prices per 1M tokens, per call for `-c` models). The "
           "edited sheet is checked exactly as `callmeter prices check` checks a file; "
           "saving it loads it and reprices every call.")
money = d.money if d else (lambda v: "—" if v is None else str(v))
done = st.session_state.pop("price_edit_done", None)
if done:
    st.success(f"Loaded {done['rows']} rows; history repriced.")
    c1, c2, c3 = st.columns(3)
    c1.metric("Priced total before", money(done["before"]))
    c2.metric("Priced total after", money(done["after"]))
    c3.metric("Change", money((done["after"] or 0) - (done["before"] or 0)))
base = sheet_frame(prices)
edited = st.data_editor(base, num_rows="dynamic", hide_index=True, width="stretch",
                        key=EDITOR_KEY,
                        column_config={c: st.column_config.TextColumn(c) for c in base.columns})
edited = edited.reset_index(drop=True)
if not edited.fillna("").astype(str).equals(base.astype(str)):
    from pricing.loader import load_prices
    from pricing.sheet import read_sheet

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prices-edited-in-dashboard.csv"
        write_sheet_csv(edited, path)
        sheet = read_sheet(path)
    for problem in sheet.problems:
        (st.error if problem.severity == "error" else st.warning)(where(problem))
    if sheet.errors:
        st.caption(f"{len(sheet.errors)} error(s): fix them to save. Nothing was changed.")
    else:
        preview(sheet, prices, "edit")
    if not sheet.errors and st.button("Save and reprice", type="primary", key="save_prices"):
        before = queries.ledger_cost(ctx.ledger, ctx.marker)["cost"]
        try:
            loaded = load_prices(ctx.ledger.cursor(), sheet)
        except Exception as exc:  # noqa: BLE001 - shown to the user; nothing was loaded
            st.error(f"Could not load the edited sheet: {exc}")
        else:
            marker = ctx.ledger.refresh(force=True)
            after = queries.ledger_cost(ctx.ledger, marker)["cost"]
            st.session_state["price_edit_done"] = {"rows": loaded.rows, "before": before,
                                                   "after": after}
            del st.session_state[EDITOR_KEY]  # the loaded sheet is the new starting point
            st.rerun()
else:
    st.caption("No edits yet.")

undone = st.session_state.pop("prices_undone", None)
if undone:
    st.success(f"Went back to the previous sheet ({undone} rows); history repriced.")
undo()

st.subheader("Upload a sheet")
st.caption("Checked the same way as `callmeter prices check`; when it is valid, loading it "
           "replaces the prices table and every call is repriced at once.")
upload = st.file_uploader("Price sheet (CSV)", type=["csv"], key="price_sheet")
if upload is not None:
    from dashboard.files import inside
    from pricing.loader import load_prices, unpriced_by_sheet
    from pricing.sheet import read_sheet

    with tempfile.TemporaryDirectory() as tmp:
        # the name is the client's to choose: keep only a plain last component
        path = inside(Path(tmp), upload.name, "sheet.csv")
        path.write_bytes(upload.getvalue())
        sheet = read_sheet(path)
        for problem in sheet.problems:
            (st.error if problem.severity == "error" else st.warning)(str(problem))
        if not sheet.errors:
            missing = unpriced_by_sheet(ctx.ledger.cursor(), sheet)
            st.info(f"{len(sheet.rows)} rows for {len(sheet.models)} models, currency "
                    f"{sheet.currency}. It would leave {sum(u.calls for u in missing):,} calls "
                    f"on {len(missing)} model(s) unpriced.")
            preview(sheet, prices, "upload")
            if st.button("Load this sheet and reprice"):
                loaded = load_prices(ctx.ledger.cursor(), sheet)
                ctx.ledger.refresh(force=True)
                st.session_state.pop(EDITOR_KEY, None)
                st.success(f"Loaded {loaded.rows} rows; history repriced.")
                st.rerun()
