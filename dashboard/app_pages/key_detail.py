"""One key: its spend, models, daily spend against its month forecast and budget, its latest
calls."""

from decimal import Decimal, InvalidOperation

import streamlit as st

from dashboard import charts, queries
from dashboard.context import context
from dashboard.layout import chart_with_table, table
from pricing.groups import key_ref_label
from pricing.periods import as_of

ctx = context()
f, d = ctx.filters, ctx.display
names = ctx.options["keys"]
st.title("Key detail")
# the keys the sidebar leaves (its key filter, the user's scope); a ?key= outside them is not
# opened: the page would show another key than the sidebar says, or zeros
in_view = f.keys_in_view()
ids = [k for k in names if in_view is None or k in in_view]
if not ids:
    st.info("No key in view: the sidebar's key filter leaves none.")
    st.stop()
wanted = st.query_params.get("key")
key = st.selectbox("Key", ids, index=ids.index(wanted) if wanted in ids else 0,
                   format_func=lambda k: str(names.get(k, k)))
st.query_params["key"] = key
kf = f.with_keys((key,))

tot = queries.totals(ctx.ledger, ctx.marker, kf)
c1, c2, c3 = st.columns(3)
c1.metric("Spend", d.money(tot["cost"]))
c2.metric("Calls", f"{tot['calls']:,}")
c3.metric("Errors", f"{tot['errors']:,}")
if tot["unpriced_calls"]:
    st.warning(f"{tot['unpriced_calls']:,} of this key's calls have no price.", icon="⚠️")

st.subheader("Monthly budget")
hint_label = (ctx.options.get("key_hints", {}).get(key), names.get(key))
budgets = queries.key_budgets(ctx.ledger, key, hint_label)
when = as_of(period_end=f.end)  # the one as-of the budget status and forecasts share
for b in queries.key_budget(ctx.ledger, ctx.marker, budgets, when):
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(f"Budget {when.month:%Y-%m}", d.money(b["monthly"]))
    c2.metric("Spent", d.money(b["spent"]),
              f"{b['share_used']:.0%} used" if b["share_used"] is not None else None,
              delta_color="off")
    c3.metric("Burn per day (last 7 days)", d.money(b["burn_per_day"]))
    c4.metric("Runs out", str(b["runs_out_on"]) if b["runs_out_on"] else "lasts the month",
              f"projected {d.money(b['projected'])}", delta_color="off")
    st.caption(f"Complete UTC days through {when.day}; burn over the 7 days to then.")
if not budgets:
    st.caption("No budget set for this key (`callmeter budgets set key …`).")
if ctx.user.sees_all_keys:
    with st.expander("Set this key's monthly budget"):
        amount = st.text_input("Monthly budget (sheet currency)", key="budget_amount")
        if st.button("Save budget"):
            from pricing.budgets import Budget, set_budget

            try:
                # a label-only key's budget is set on its label (pricing matches labels)
                target = key_ref_label(key) or key
                set_budget(ctx.ledger.cursor(), Budget("key", target, Decimal(amount)))
                st.rerun()
            except (InvalidOperation, ValueError) as exc:
                st.error(f"Not a budget: {exc}")

left, right = st.columns(2)
with left:
    st.subheader("Models")
    models = queries.breakdown(ctx.ledger, ctx.marker, kf, ("model",))
    chart_with_table(charts.ranked_bar(models, "model", currency=d.currency),
                     models[["model", "cost", "calls", "input_tokens", "output_tokens",
                             "unpriced_calls", "errors"]], "key_models", d)
with right:
    st.subheader("Daily spend")
    daily = queries.daily_cost(ctx.ledger, ctx.marker, kf)
    fc = queries.month_forecast(ctx.ledger, ctx.marker, when, key=key)
    if when.closed:
        st.caption(f"{when.month:%Y-%m}: {d.money(fc['spent'])} spent (the month is closed).")
    else:
        st.caption(f"Month to {fc['as_of']}: {d.money(fc['spent'])} spent, "
                   f"{d.money(fc['total'])} expected by month end "
                   f"({d.money(fc['low'])} – {d.money(fc['high'])}).")
    chart_with_table(charts.daily_spend(daily, None, d.currency), daily, "key_daily", d)

st.subheader("Latest calls")
st.caption("Each call's cost as billed and what it would have cost as per-token and as "
           "per-request (the same call on `model` and `model-c`).")
table(queries.recent_calls(ctx.ledger, ctx.marker, kf, 100), "key_calls", d)
