"""Recommendations: the ranked actions with their money, evidence and caveat."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.context import context
from dashboard.layout import table

ctx = context()
f, d = ctx.filters, ctx.display
st.title("Recommendations")
st.caption(f"From calls between {f.start} and {f.end} (UTC days); savings are over that period.")

recs = queries.recommendations(ctx.ledger, ctx.marker, f.start, f.end + timedelta(days=1))
if ctx.filters.scope_keys is not None:
    recs = [r for r in recs if r.get("key_id") in ctx.filters.scope_keys]
if not recs:
    st.success("Nothing worth changing in this period: no material saving found.")
for i, r in enumerate(recs, start=1):
    money = d.money(r["saving"]) if r["saving"] is not None else "—"
    with st.container(border=True):
        st.markdown(f"**{i}. {r['action']}** — saves **{money}** "
                    f"({r['confidence']} confidence)")
        st.markdown(f"*Evidence:* {r['evidence']}")
        st.caption(f"Caveat: {r['caveat']}")
if recs:
    table(pd.DataFrame(recs).drop(columns=["details"], errors="ignore"), "recommendations", d)
