"""Billing modes: per-token against per-request — what was paid, what the other would cost."""

import streamlit as st

from dashboard import charts, queries
from dashboard.context import context
from dashboard.layout import chart_with_table, table

ctx = context()
f, d = ctx.filters, ctx.display
st.title("Billing modes")
st.caption("Each model comes as per-token (`model`) and per-request (`model-c`). Same model, "
           "different charge: here is what your calls cost and what the other variant would "
           "have cost for exactly the same calls.")

by_model = queries.billing_comparison(ctx.ledger, ctx.marker, f, ("base_model",))
both = by_model[by_model["switchable"]]
c1, c2, c3 = st.columns(3)
c1.metric("Paid", d.money(both["actual_cost"].dropna().sum()))
c2.metric("On the cheaper variant", d.money(both["cheaper_cost"].sum()))
c3.metric("Saving on the cheaper variant", d.money(both["saving"].dropna().sum()))
if len(by_model) > len(both):
    st.info("Models without a price for every call on both variants are left out of the "
            "comparison: " + ", ".join(str(m) for m in by_model.loc[~by_model["switchable"],
                                                                    "base_model"]))
table(both[["base_model", "token_calls", "request_calls", "actual_cost", "cost_all_token",
            "cost_all_request", "cheaper_mode", "saving"]], "billing_models", d)

st.subheader("Break-even")
model = st.selectbox("Model", list(both["base_model"]) or ["—"])
if model and model != "—":
    even = queries.break_even(ctx.ledger, ctx.marker, f, model)
    points = queries.break_even_points(ctx.ledger, ctx.marker, f, model)
    if even is not None and even["break_even_tokens"] is not None:
        st.markdown(f"At this workload's mix of input, cached input and output, **{model}-c** "
                    f"is cheaper above about **{even['break_even_tokens']:,} tokens per call**, "
                    "per-token below it.")
    chart_with_table(charts.break_even(points, even, d.currency), points, "break_even", d)

st.subheader("Saving of switching, per key")
per_key = queries.billing_comparison(ctx.ledger, ctx.marker, f, ("key",))
per_key["name"] = per_key["key_label"].fillna(per_key["key_hint"]).fillna(per_key["key"])
chart_with_table(charts.savings_bar(per_key, "name", d.currency),
                 per_key[["name", "key_hint", "token_calls", "request_calls", "actual_cost",
                          "cost_all_token", "cost_all_request", "cheaper_mode", "saving"]],
                 "billing_keys", d)
