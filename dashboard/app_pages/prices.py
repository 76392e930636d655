"""Prices: the loaded sheet, models left without a price, and uploading a new sheet."""

import tempfile
from pathlib import Path

import streamlit as st

from dashboard import queries
from dashboard.context import context
from dashboard.layout import table

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
else:
    st.success("Every call in the ledger has a price.")

st.subheader("Upload a sheet")
st.caption("Checked the same way as `callmeter prices check`; when it is valid, loading it "
           "replaces the prices table and every call is repriced at once.")
if not ctx.user.sees_all_keys:
    st.caption("Only finance users can change prices.")
    st.stop()
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
                st.success(f"Loaded {loaded.rows} rows; history repriced.")
                st.rerun()
