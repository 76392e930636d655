"""Overview: spend, calls, tokens and error rate against the previous period; where it went."""

import streamlit as st

from dashboard import charts, queries
from dashboard.context import context
from dashboard.layout import chart_with_table, delta, table

ctx = context()
f, d = ctx.filters, ctx.display
now = queries.totals(ctx.ledger, ctx.marker, f)
before = queries.totals(ctx.ledger, ctx.marker, f.previous())

st.title("Overview")
st.caption(f"{f.start} – {f.end} ({f.tz}), against {f.previous().start} – "
           f"{f.previous().end}")
tokens_now = now["input_tokens"] + now["output_tokens"]
tokens_before = before["input_tokens"] + before["output_tokens"]
err_now = now["errors"] / now["calls"] if now["calls"] else 0
err_before = before["errors"] / before["calls"] if before["calls"] else 0
c1, c2, c3, c4 = st.columns(4)
c1.metric("Spend", d.money(now["cost"]), delta(now["cost"], before["cost"]),
          delta_color="inverse")
c2.metric("Calls", f"{now['calls']:,}", delta(now["calls"], before["calls"]))
c3.metric("Tokens", f"{tokens_now:,}", delta(tokens_now, tokens_before))
c4.metric("Error rate", f"{err_now:.2%}",
          f"{(err_now - err_before) * 100:+.2f} pp" if before["calls"] else None,
          delta_color="inverse")
if now["unpriced_calls"]:
    st.warning(f"{now['unpriced_calls']:,} calls ({now['unpriced_tokens']:,} tokens) have no "
               "price and are not in the spend above. See Prices to add them.", icon="⚠️")

left, right = st.columns([3, 1])
by = right.radio("Stack by", ["model", "key", "endpoint", "billing_mode"], horizontal=False)
grain = "hour" if f.days <= 2 else "day"
series = queries.over_time(ctx.ledger, ctx.marker, f, by, grain)
with left:
    st.subheader(f"Spend by {grain}")
    chart_with_table(charts.spend_over_time(series, grain, d.currency), series, "spend_over_time",
                     d)

k_col, m_col = st.columns(2)
keys = queries.breakdown(ctx.ledger, ctx.marker, f, ("key",))
keys["name"] = keys["key_label"].fillna(keys["key_hint"]).fillna(keys["key"]).fillna("(no key)")
models = queries.breakdown(ctx.ledger, ctx.marker, f, ("model",))
with k_col:
    st.subheader("Top keys")
    chart_with_table(charts.ranked_bar(keys, "name", currency=d.currency),
                     keys[["name", "key_hint", "cost", "calls", "unpriced_calls", "errors"]],
                     "top_keys", d)
with m_col:
    st.subheader("Top models")
    chart_with_table(charts.ranked_bar(models, "model", currency=d.currency),
                     models[["model", "cost", "calls", "unpriced_calls", "errors"]],
                     "top_models", d)

st.subheader("Latest calls")
st.caption("Each call's cost as billed and what it would have cost as per-token and as "
           "per-request (the same call on `model` and `model-c`); — where there is no price.")
table(queries.recent_calls(ctx.ledger, ctx.marker, f, 50), "latest_calls", d)
