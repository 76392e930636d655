"""Keys: one row per key with spend, trend, error mix and last seen; spikes flagged.

Label-only keys (no fingerprint) are rows and choices of their own; keyless calls are one
"(no key)" row that cannot be opened."""

import streamlit as st

from dashboard import queries
from dashboard.context import context
from dashboard.layout import table

ctx = context()
f, d = ctx.filters, ctx.display
st.title("Keys")

spikes = queries.key_spikes(ctx.ledger, ctx.marker, f)
names = ctx.options["keys"]
for row in spikes.itertuples():
    st.warning(f"**{names.get(row.key_id, row.key_id)}** spent {d.money(row.spend)} on "
               f"{row.day} (UTC), against a usual {d.money(row.baseline_median)} a day.",
               icon="📈")

keys = queries.keys_table(ctx.ledger, ctx.marker, f)
shown = keys[["key_label", "key_hint", "cost", "daily", "calls", "unpriced_calls", "e401",
              "e403", "e429", "e5xx", "last_seen", "key_id"]]
event = table(shown, "keys", d, {"daily": st.column_config.LineChartColumn("Daily spend")},
              on_select="rerun", selection_mode="single-row")

openable = [k for k in keys["key_id"] if isinstance(k, str)]
rows = event.selection.rows if event is not None and hasattr(event, "selection") else []
choice = st.selectbox("Open a key", openable, index=None,
                      format_func=lambda k: str(names.get(k, k)))
if rows and isinstance(keys["key_id"].iloc[rows[0]], str):
    choice = keys["key_id"].iloc[rows[0]]
if choice:
    st.query_params["key"] = choice
    st.switch_page("app_pages/key_detail.py")
