"""One key: its spend, models, daily spend against its month forecast, its latest calls."""

import streamlit as st

from dashboard import charts, queries
from dashboard.context import context
from dashboard.layout import chart_with_table, table

ctx = context()
f, d = ctx.filters, ctx.display
names = ctx.options["keys"]
st.title("Key detail")
ids = list(names)
wanted = st.query_params.get("key")
key = st.selectbox("Key", ids, index=ids.index(wanted) if wanted in ids else 0,
                   format_func=lambda k: names.get(k, k))
st.query_params["key"] = key
kf = f.with_keys((key,))

tot = queries.totals(ctx.ledger, ctx.marker, kf)
c1, c2, c3 = st.columns(3)
c1.metric("Spend", d.money(tot["cost"]))
c2.metric("Calls", f"{tot['calls']:,}")
c3.metric("Errors", f"{tot['errors']:,}")
if tot["unpriced_calls"]:
    st.warning(f"{tot['unpriced_calls']:,} of this key's calls have no price.", icon="⚠️")

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
    fc = queries.key_forecast(ctx.ledger, ctx.marker, key, f.end)
    st.caption(f"Month to {fc['as_of']}: {d.money(fc['spent'])} spent, "
               f"{d.money(fc['total'])} expected by month end "
               f"({d.money(fc['low'])} – {d.money(fc['high'])}).")
    chart_with_table(charts.daily_spend(daily, None, d.currency), daily, "key_daily", d)

st.subheader("Latest calls")
table(queries.recent_calls(ctx.ledger, ctx.marker, kf, 100), "key_calls", d)
