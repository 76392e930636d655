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
    elif st.button("Save and reprice", type="primary", key="save_prices"):
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

st.subheader("Upload a sheet")
st.caption("Checked the same way as `callmeter prices check`; when it is valid, loading it "
           "replaces the prices table and every call is repriced at once.")
upload = st.file_uploader("Price sheet (CSV)", type=["csv"], key="price_sheet")
if upload is not None:
    from pricing.loader import load_prices, unpriced_by_sheet
    from pricing.sheet import read_sheet

    with tempfile.TemporaryDirectory() as tmp:
        # the name is the client's to choose: keep only a plain last component
        path = Path(tmp) / (Path(upload.name).name.lstrip(".") or "sheet.csv")
        path.write_bytes(upload.getvalue())
        sheet = read_sheet(path)
        for problem in sheet.problems:
            (st.error if problem.severity == "error" else st.warning)(str(problem))
        if not sheet.errors:
            missing = unpriced_by_sheet(ctx.ledger.cursor(), sheet)
            st.info(f"{len(sheet.rows)} rows for {len(sheet.models)} models, currency "
                    f"{sheet.currency}. It would leave {sum(u.calls for u in missing):,} calls "
                    f"on {len(missing)} model(s) unpriced.")
            if st.button("Load this sheet and reprice"):
                loaded = load_prices(ctx.ledger.cursor(), sheet)
                ctx.ledger.refresh(force=True)
                st.session_state.pop(EDITOR_KEY, None)
                st.success(f"Loaded {loaded.rows} rows; history repriced.")
                st.rerun()
