"""Finance: close a month from this page alone — the last closed month by default, its
reconciliation headline (platform charged, ledger, the difference by cause), its costs by key /
tag / model / day as `callmeter report` gives them, the unpriced calls and adjustments, the
report's CSV and Excel; the month-end forecast only while the month is still open."""

import io
from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboard import queries
from dashboard.context import context
from dashboard.layout import table
from pricing.periods import as_of, month_bounds
from pricing.report import (
    HEADLINE_PARTS,
    OLD_PAID_COLUMNS,
    TAG_NOTE,
    part_words,
    reconciliation_headline,
    write_csv,
    write_xlsx,
)

ctx = context()
d = ctx.display
st.title("Finance")
months = queries.months(ctx.ledger, ctx.marker)
this_month = datetime.now(UTC).date().replace(day=1)
closed = [m for m in months if m < this_month]
left, right = st.columns(2)
month = left.selectbox("Month (UTC)", months, index=months.index(closed[0]) if closed else 0,
                       format_func=lambda m: m.strftime("%Y-%m") + ("" if m < this_month
                                                                    else " (open)"),
                       key="finance_month")
tag_names = sorted({t.split("=", 1)[0] for t in ctx.options.get("tags", {})})
dims = ["key", "model", "day", *(["tag"] if ctx.user.sees_all_keys else []),
        *(f"tag:{t}" for t in tag_names)]
by = right.selectbox("By", dims,
                     format_func=lambda b: {"tag": "tag (each name=value)"}.get(b, b),
                     key="finance_by")
when = as_of(period_end=month_bounds(month)[1] - timedelta(days=1))  # closed: its last day

if not ctx.user.sees_all_keys:
    # a key owner gets their own keys' figures from the query layer (scoped), not the full pack
    mf = queries.month_filters(month, ctx.filters.scope_keys)
    rows = queries.breakdown(ctx.ledger, ctx.marker, mf, (by,), queries.FINANCE_EXTRA)
    st.metric("Cost", d.money(rows["cost"].dropna().sum() if len(rows) else None))
    table(rows, f"finance_{month:%Y-%m}_{by}", d)
    st.stop()

pack = queries.finance_pack(ctx.ledger, ctx.marker, month, by)
tot = pack.totals
head = reconciliation_headline(pack)

st.subheader(f"{month:%B %Y}" + ("" if when.closed else " (still open)"))
c1, c2, c3, c4 = st.columns(4)
c1.metric("Platform charged", d.money(head["net_charged"] if head else None),
          help="What the platform's log charged for calls, plus its refunds, task settlements "
          "and fees")
c2.metric("Ledger cost", d.money(tot["cost"]),
          help="Every priced call of the month at the price sheet's prices")
c3.metric("Difference", d.money(head["difference"] if head else None),
          help="Platform charged minus ledger cost, split by cause below")
c4.metric("Unpriced calls", f"{int(tot['unpriced_calls']):,}")
if head is None:
    st.caption("The platform charged nothing this month (no call carries a charge, no refund "
               "or fee): nothing to reconcile with.")
else:
    parts = sorted(((abs(head[p]), p) for p in HEADLINE_PARTS if head[p] != 0), reverse=True)
    if parts:
        st.markdown("The difference, by cause:\n" + "\n".join(
            f"- {part_words(p)}: **{d.money(head[p])}**" for _, p in parts))
    else:
        st.success("The platform's charge and the ledger agree.")
for note in pack.notes:
    if note != TAG_NOTE or by == "tag":
        st.info(note)

st.subheader(f"Costs by {by}")
# the report's old names of paid_per_* (kept in its CSV/JSON for existing readers) not twice
table(pack.main.drop(columns=list(OLD_PAID_COLUMNS), errors="ignore"),
      f"finance_{month:%Y-%m}_{by}", d)

csv_col, xlsx_col = st.columns(2)
text = io.StringIO()
write_csv(pack, text)
csv_col.download_button("Report CSV (as `callmeter report`)", text.getvalue().encode(),
                        file_name=f"callmeter-{month:%Y-%m}-{by}.csv", mime="text/csv")
xlsx = io.BytesIO()
write_xlsx(pack, xlsx)
xlsx_col.download_button("Report Excel (every sheet)", xlsx.getvalue(),
                         file_name=f"callmeter-{month:%Y-%m}.xlsx")

st.subheader("Reconciliation by key and model")
if len(pack.reconciliation):
    table(pack.reconciliation, "reconciliation", d)
else:
    st.caption("No call in this month carries a platform charge to reconcile with.")
money = pack.money
if money.get("adjustments") is not None:
    st.subheader("Refunds, settlements and fees")
    lines = [("Charged on calls", "charged_on_calls"), ("Refunds", "adjustments_refund"),
             ("Task settlements", "adjustments_settlement"), ("Fees", "adjustments_fee"),
             ("Billed (not by call)", "adjustments_billed"), ("Net charged", "net_charged")]
    st.markdown("\n".join(f"- {label}: **{d.money(money.get(k))}**" for label, k in lines
                          if money.get(k) is not None))
st.subheader("Unpriced calls")
if len(pack.unpriced):
    st.warning(f"{int(tot['unpriced_calls']):,} calls have no price and are not in the ledger "
               "cost; add their models on the Prices page before closing the month.")
    table(pack.unpriced, "unpriced", d)
else:
    st.caption("Every call of this month has a price.")

if not when.closed:
    st.subheader("Month-end forecast")
    fc = queries.month_forecast(ctx.ledger, ctx.marker, when)
    st.markdown(f"Spent {d.money(fc['spent'])} to {fc['as_of']}; expected "
                f"**{d.money(fc['total'])}** by month end ({d.money(fc['low'])} – "
                f"{d.money(fc['high'])}).")
    st.line_chart(fc["daily"], x="day", y=["actual", "expected"])
