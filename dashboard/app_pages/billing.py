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
both = by_model[by_model["other_unpriced_calls"] < by_model["token_calls"].fillna(0)
                + by_model["request_calls"].fillna(0)]
total_saving = sum((s for s in both["saving"] if s is not None and s == s and s > 0), 0)
c1, c2, c3 = st.columns(3)
c1.metric("Paid", d.money(both["actual"].dropna().sum()))
c2.metric("Other variant would cost", d.money(both["other_variant"].sum()))
c3.metric("Saving where the other variant is cheaper", d.money(total_saving))
if len(by_model) > len(both):
    st.info("Models without a price for the other variant are left out of the comparison: "
            + ", ".join(str(m) for m in by_model.loc[~by_model.index.isin(both.index),
                                                      "base_model"]))
table(both[["base_model", "token_calls", "request_calls", "actual", "other_variant", "saving",
            "other_unpriced_calls"]], "billing_models", d)

st.subheader("Break-even")
model = st.selectbox("Model", list(both["base_model"]) or ["—"])
if model and model != "—":
    prices = queries.model_prices(ctx.ledger, ctx.marker, model, f.end)
    points = queries.break_even_points(ctx.ledger, ctx.marker, f, model)
    tokens = charts.break_even_tokens(prices, charts.input_share(points))
    if tokens is not None:
        st.markdown(f"At this workload's input/output mix, **{model}-c** is cheaper above "
                    f"about **{tokens:,} tokens per call**, per-token below it.")
    chart_with_table(charts.break_even(points, prices, d.currency), points, "break_even", d)

st.subheader("Saving of switching, per key")
per_key = queries.billing_comparison(ctx.ledger, ctx.marker, f, ("key",))
per_key["name"] = per_key["key_label"].fillna(per_key["key_hint"]).fillna(per_key["key"])
chart_with_table(charts.savings_bar(per_key, "name", d.currency),
                 per_key[["name", "key_hint", "token_calls", "request_calls", "actual",
                          "other_variant", "saving", "other_unpriced_calls"]], "billing_keys", d)
