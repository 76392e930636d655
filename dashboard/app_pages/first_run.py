"""First run: the ledger is empty, so say how to fill it."""

import streamlit as st

from dashboard.context import context

ctx = context()
st.title("Welcome to callmeter")
st.info(f"The ledger `{ctx.ledger.db}` has no calls yet.")
st.markdown(
    """
Fill it in one of three ways:

1. **Import logs you already have** — on the **Data** page (upload), or from a shell:
   `callmeter import export.csv` (new-api, OpenAI, LiteLLM and generic CSV logs are detected).
2. **Record live traffic** — start the proxy and point your clients at it:
   `callmeter proxy --upstream https://your-platform/v1`, then use `http://127.0.0.1:8700/v1`
   as the base URL. Its calls appear here on the next refresh.
3. **Try it on synthetic data** — `callmeter demo` builds a realistic history and opens this
   dashboard on it.

Prices come from `data/prices.csv` (`callmeter prices load`); see the **Prices** page.
"""
)
if st.button("Refresh"):
    ctx.ledger.refresh(force=True)
    st.rerun()
