"""Billing modes: per-token against per-request — what was paid, what the other would cost."""

from decimal import Decimal

import pandas as pd
import streamlit as st

from dashboard import charts, queries
from dashboard.context import context
from dashboard.layout import chart_with_table, table
from pricing.quote import Quote, Workload


def quote_form(models: list[str], used: list[str]) -> None:
    """The planned workload's fields; on submit, its quote."""
    default = next((m for m in used if m in models), models[0])
    with st.form("quote"):
        c1, c2, c3 = st.columns(3)
        model = c1.selectbox("Model", models, index=models.index(default), key="q_model")
        calls = c2.number_input("Calls a month", min_value=1, value=100_000, step=1000,
                                key="q_calls")
        c3.empty()
        inp = c1.number_input("Input tokens per call", min_value=0, value=1_000, step=100,
                              key="q_input")
        out = c2.number_input("Output tokens per call", min_value=0, value=300, step=50,
                              key="q_output")
        cached = c1.number_input("Cached share of input (%)", min_value=0, max_value=100,
                                 value=0, key="q_cached")
        written = c2.number_input("Cache-write share of input (%)", min_value=0,
                                  max_value=100, value=0, key="q_written")
        go = st.form_submit_button("Quote")
    if not go and "q_last" not in st.session_state:
        return
    work = Workload(model, int(calls), int(inp), int(out), Decimal(int(cached)) / 100,
                    cache_write_share=Decimal(int(written)) / 100)
    try:
        work.check()
    except ValueError as exc:
        st.error(f"Cannot quote this workload: {exc}")
        return
    st.session_state["q_last"] = True
    show_quote(queries.quote(ctx.ledger, ctx.marker, work))


def show_quote(q: Quote) -> None:
    cheapest = q.cheapest
    if cheapest is not None:
        st.markdown(f"Cheapest: **{cheapest.model}** ({cheapest.group}), "
                    f"**{d.money(cheapest.cost)} a month**.")
    be = q.break_even
    if be is not None and be.get("break_even_tokens") is not None:
        st.markdown(f"Break-even for {be['base_model']}: about **{be['break_even_tokens']:,} "
                    "tokens per call** at this input/output mix (per request is cheaper above "
                    f"it); for this workload **per {be['cheaper_mode']}** is cheaper.")
    rows = pd.DataFrame([{"option": o.group, "model": o.model, "billing_mode": o.billing_mode,
                          "cost": o.cost, "per_call": o.per_call} for o in q.options])
    table(rows, "quote", d)
    for note in q.notes:
        st.caption(note)

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

st.subheader("Quote a planned workload")
st.caption("Priced with the ledger's price sheet by the same function as `callmeter quote`: "
           "per token, per request and on cheaper models of data/models.csv, with the "
           "break-even.")
models = queries.priced_models(ctx.ledger, ctx.marker)
if not models:
    st.info("No price sheet is loaded: load one on the Prices page to quote a workload.")
else:
    quote_form(models, list(both["base_model"]))
