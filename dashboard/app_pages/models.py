"""Models: consumption and spend by model and endpoint, token mix, per-call shapes, latency."""

import streamlit as st

from dashboard import charts, queries
from dashboard.context import context
from dashboard.layout import chart_with_table, table

ctx = context()
f, d = ctx.filters, ctx.display
st.title("Models")

by_model = queries.breakdown(ctx.ledger, ctx.marker, f, ("model", "endpoint"), ("streamed",))
by_model["stream_share"] = (by_model["streamed"] / by_model["calls"]).fillna(0)
st.subheader("Spend and consumption by model and endpoint")
table(by_model[["model", "endpoint", "cost", "calls", "input_tokens", "cached_tokens",
                "cache_write_tokens", "output_tokens", "reasoning_tokens", "stream_share",
                "unpriced_calls", "errors"]], "models", d,
      {"stream_share": st.column_config.ProgressColumn("streamed", format="percent",
                                                       min_value=0, max_value=1)})

mix_col, dist_col = st.columns(2)
with mix_col:
    st.subheader("Token mix")
    chart_with_table(charts.token_mix(by_model), by_model[["model", "input_tokens",
                     "cached_tokens", "cache_write_tokens", "output_tokens",
                     "reasoning_tokens"]], "token_mix", d)
with dist_col:
    st.subheader("Tokens per call")
    hist = queries.tokens_per_call(ctx.ledger, ctx.marker, f)
    chart_with_table(charts.tokens_histogram(hist), hist, "tokens_per_call", d)

st.subheader("Latency and time to first token (successful calls)")
st.caption("Approximate percentiles: read from eighth-octave bins, so each is within about "
           "±4.5 % of the exact value; the charts show the models with the most calls, the "
           "table every model (ms).")
lat = queries.latency_percentiles(ctx.ledger, ctx.marker, f)
lat_col, ttft_col = st.columns(2)
with lat_col:
    chart_with_table(charts.percentiles(lat, "latency"), lat, "latency", d)
with ttft_col:
    chart_with_table(charts.percentiles(lat, "ttft"), lat, "ttft", d)
