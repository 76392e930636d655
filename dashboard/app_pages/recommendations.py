"""Recommendations: a headline, the actions grouped by kind (each naming key and model), and a
sortable table — for the sidebar's period, keys and models."""

import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.context import context
from dashboard.layout import table
from dashboard.tables import NO_KEY

KINDS = {"switch_variant": "Switch billing variant (same model)",
         "cheaper_model": "Try a cheaper model",
         "prompt_cache": "Cache more of the prompt",
         "rate_limits": "Rate limits (429s)",
         "estimated_usage": "Usage the platform did not report"}

ctx = context()
f, d = ctx.filters, ctx.display
st.title("Recommendations")
st.caption(f"From calls between {f.start} and {f.end} ({f.tz} days), for the keys and models "
           "chosen in the sidebar; savings are over that period and, scaled to 30 days, a "
           "month. Alternatives for the same key and model do not add up: a total counts the "
           "largest.")

if f.endpoints or f.modes or f.tags:
    st.info("The sidebar's endpoint, billing-mode and tag filters do not narrow "
            "recommendations: each one weighs all of a key and model's calls in the period.")

recs = queries.recommendations_in_view(ctx.ledger, ctx.marker, f, ctx.options.get("keys", {}))
monthly = queries.monthly_saving(recs)
if not recs:
    st.success("Nothing worth changing in this view: no material saving found.")
else:
    st.subheader(f"{len(recs)} action{'s' if len(recs) != 1 else ''}, "
                 f"{d.money(monthly)} a month")


def card(r: dict[str, object]) -> None:
    saving = (f"saves **{d.money(r['saving'])}** in the period "
              f"(**{d.money(r['monthly_saving'])} a month**)" if r["saving"] is not None
              else "no saving in money")
    with st.container(border=True):
        st.markdown(f"**{r['action']}** — {saving}, {r['confidence']} confidence")
        st.markdown(f"Key: **{r['key_name'] or NO_KEY}** · "
                    f"Model: **{r['model'] or 'all models'}**"
                    + (f" · Tag: {r['tag']}" if r.get("tag") else ""))
        st.markdown(f"*Evidence:* {r['evidence']}")
        st.caption(f"Caveat: {r['caveat']}")


for kind in dict.fromkeys([*KINDS, *(str(r["kind"]) for r in recs)]):
    title = KINDS.get(kind, kind)
    group = [r for r in recs if r["kind"] == kind]
    if not group:
        continue
    group_monthly = queries.monthly_saving(group)
    st.subheader(f"{title}: {len(group)}" + (f", {d.money(group_monthly)} a month"
                                             if group_monthly else ""))
    for r in group:
        card(r)

if recs:
    st.subheader("All actions (click a header to sort)")
    rows = pd.DataFrame([{"key_label": r["key_name"], "key_hint": r["key_hint"],
                          "key_id": r["key_id"], "kind": KINDS.get(str(r["kind"]), r["kind"]),
                          "model": r["model"], "action": r["action"], "saving": r["saving"],
                          "monthly_saving": r["monthly_saving"],
                          "confidence": r["confidence"]} for r in recs])
    table(rows, "recommendations", d)
