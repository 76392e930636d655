"""Finance: a month's costs by key / tag / model, as `callmeter report` gives them, with the
reconciliation against what the platform charged and the month-end forecast."""

import io
from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboard import queries
from dashboard.context import context
from dashboard.layout import table

ctx = context()
d = ctx.display
st.title("Finance")
months = queries.months(ctx.ledger, ctx.marker)
left, right = st.columns(2)
month = left.selectbox("Month (UTC)", months, format_func=lambda m: m.strftime("%Y-%m"))
tag_names = sorted({t.split("=", 1)[0] for t in ctx.options.get("tags", {})})
by = right.selectbox("By", ["key", "model", "day", *(f"tag:{t}" for t in tag_names)])

if not ctx.user.sees_all_keys:
    # a key owner gets their own keys' figures from the query layer (scoped), not the full pack
    mf = queries.month_filters(month, ctx.filters.scope_keys)
    rows = queries.breakdown(ctx.ledger, ctx.marker, mf, (by,), queries.FINANCE_EXTRA)
    st.metric("Cost", d.money(rows["cost"].dropna().sum()))
    table(rows, f"finance_{month:%Y-%m}_{by}", d)
    st.stop()

pack = queries.finance_pack(ctx.ledger, ctx.marker, month, by)
tot = pack.totals
c1, c2, c3, c4 = st.columns(4)
c1.metric("Cost", d.money(tot["cost"]))
c2.metric("Calls", f"{int(tot['calls']):,}")
net = pack.money.get("net_charged")
c3.metric("Platform charged", d.money(tot["charged"] if net is None else net),
          help="What the platform's log charged for calls, plus its refunds, task settlements "
          "and fees (see money in the report)")
c4.metric("Unpriced calls", f"{int(tot['unpriced_calls']):,}")
for note in pack.notes:
    st.info(note)

main = pack.main
table(main, f"finance_{month:%Y-%m}_{by}", d)

csv_col, xlsx_col = st.columns(2)
from pricing.report import write_csv, write_xlsx  # noqa: E402  (pricing's writers)

text = io.StringIO()
write_csv(pack, text)
csv_col.download_button("Report CSV (as `callmeter report`)", text.getvalue().encode(),
                        file_name=f"callmeter-{month:%Y-%m}-{by}.csv", mime="text/csv")
xlsx = io.BytesIO()
write_xlsx(pack, xlsx)
xlsx_col.download_button("Report Excel", xlsx.getvalue(),
                         file_name=f"callmeter-{month:%Y-%m}.xlsx")

st.subheader("Reconciliation with what the platform charged")
if len(pack.reconciliation):
    table(pack.reconciliation, "reconciliation", d)
else:
    st.caption("No call in this month carries a platform charge to reconcile with.")
if len(pack.unpriced):
    st.subheader("Unpriced calls")
    table(pack.unpriced, "unpriced", d)

st.subheader("Month-end forecast")
today = datetime.now(UTC).date()
last_day = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
as_of = max(min(today - timedelta(days=1), last_day), month)
fc = queries.month_forecast(ctx.ledger, ctx.marker, as_of)
st.markdown(f"Spent {d.money(fc['spent'])} to {fc['as_of']}; expected **{d.money(fc['total'])}**"
            f" by month end ({d.money(fc['low'])} – {d.money(fc['high'])}).")
st.line_chart(fc["daily"], x="day", y=["actual", "expected"])
