"""The finance pack: a month's cost by key, model, day or tag, reconciled against ``charged``.

Every figure is summed in DuckDB from ``priced_calls`` as exact DECIMAL, so the report's total is
``SELECT sum(cost) FROM priced_calls`` for the month, to the cent and beyond. Unpriced calls are
counted with their token volumes, never folded in as 0. The platform's net charge is what its log
charged for calls plus the month's adjustments (refunds, task settlements, fees, billed lines:
see pricing.adjustments), each kind its own line. The reconciliation splits the difference
between that net charge and what the ledger prices, per key and model, into missing calls,
token mismatch, price mismatch, failed-call policy, rounding and adjustments; the parts add up
exactly to the difference.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from openpyxl import Workbook

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import duckdb
import pandas as pd

from ledger import fetch_one

from . import rollup
from .adjustments import ADJUSTMENTS_BY_KEY_MODEL_SQL, month_money
from .frames import decimal_frame, records
from .groups import TAG_PAIRS_JOIN, tag_value_sql
from .memo import priced_source
from .periods import UTC_DAY_SQL, month_bounds, utc_start

__all__ = ["DIMENSIONS", "FinanceReport", "finance_report", "breakdown", "reconciliation",
           "unpriced_models", "ROUNDING_TOLERANCE", "reconciliation_headline", "sheet_title",
           "HEADLINE_PARTS", "OLD_PAID_COLUMNS", "part_words", "report_from",
           "month_aggregate"]

DIMENSIONS = ("key", "model", "day", "tag")
ROUNDING_TOLERANCE = rollup.ROUNDING_TOLERANCE   # per request; see pricing.rollup

# The month summed once into a small TEMP table: one row per key x label x model x UTC day x
# tags x failed x unpriced x reconciliation class. Every section of the report then reads that
# table; DECIMAL sums of sums are exact, so each figure equals the same sum over priced_calls.
# The reconciliation class is decided per call (the rounding tolerance compares each call's
# difference), with the same predicates as summing ``charged - cost`` per call would use.
# ``key_label`` is a group, not a pick: label-only keys (no key_id) stay apart.
_AGGREGATE_COLUMNS = """key_id, key_label, model, base_model, billing_mode, tags, {day} AS day,
  status >= 400 AS failed, {unpriced} AS unpriced, {recon} AS recon,
  any_value(key_hint) AS key_hint,"""

# From the daily rollup (pricing.rollup), when it holds exactly the ledger's calls and prices:
# it carries each call's classes (``unpriced``, ``recon``) as dimensions, so the month is a few
# thousand rollup rows. A rollup row's calls all have a charge or none (``recon``), so its
# ``charged - cost`` summed per call is ``charged - cost_where_charged``.
ROLLUP_AGGREGATE_SQL = "CREATE TEMP TABLE {name} AS SELECT " + _AGGREGATE_COLUMNS.format(
    day=UTC_DAY_SQL.format(col="day"), unpriced="unpriced", recon="recon") + """
  coalesce(sum(call_rows) FILTER (WHERE recon <> 'uncharged'), 0) AS charged_rows,
  sum(calls) AS requests,
  sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
  sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens,
  sum(images) AS images, sum(characters) AS characters, sum(audio_seconds) AS audio_seconds,
  sum(cost) AS cost, sum(charged) AS charged,
  sum(charged - coalesce(cost_where_charged, 0)) AS d,
  sum(cost_as_token) AS cost_as_token, sum(cost_as_request) AS cost_as_request,
  sum(no_token_price_calls) AS no_token_price,
  sum(no_request_price_calls) AS no_request_price
FROM """ + rollup.DAILY + """
WHERE day >= ? AND day < ?
GROUP BY ALL
"""

# From the calls (the rollup is stale, or another rounding tolerance was asked for).
MONTH_AGGREGATE_SQL = "CREATE TEMP TABLE {name} AS SELECT " + _AGGREGATE_COLUMNS.format(
    day=UTC_DAY_SQL.format(col="started_at"), unpriced="cost IS NULL",
    recon=rollup.recon_class_sql("?")) + """
  count(charged) AS charged_rows,
  sum(requests) AS requests,
  sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
  sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens,
  sum(images) AS images, sum(characters) AS characters, sum(audio_seconds) AS audio_seconds,
  sum(cost) AS cost, sum(charged) AS charged, sum(charged - coalesce(cost, 0)) AS d,
  sum(cost_as_token) AS cost_as_token, sum(cost_as_request) AS cost_as_request,
  sum(requests) FILTER (WHERE cost_as_token IS NULL) AS no_token_price,
  sum(requests) FILTER (WHERE cost_as_request IS NULL) AS no_request_price
FROM {source}
WHERE started_at >= ? AND started_at < ?
GROUP BY ALL
"""
DROP_AGGREGATE_SQL = "DROP TABLE IF EXISTS {name}"
CURRENCY_SQL = "SELECT coalesce(any_value(currency), 'USD') FROM prices"

MEASURES_SQL = """
  coalesce(sum(requests), 0) AS calls,
  coalesce(sum(requests) FILTER (WHERE failed), 0) AS failed_calls,
  coalesce(sum(input_tokens), 0) AS input_tokens,
  coalesce(sum(cached_tokens), 0) AS cached_tokens,
  coalesce(sum(output_tokens), 0) AS output_tokens,
  coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
  {cost} AS cost,
  {paid_token} AS paid_per_token,
  {paid_request} AS paid_per_request,
  {paid_token} AS cost_per_token_billing,
  {paid_request} AS cost_per_request_billing,
  CASE WHEN coalesce(sum(no_token_price), 0) = 0 THEN coalesce(sum(cost_as_token), 0) END
    AS all_as_per_token,
  CASE WHEN coalesce(sum(no_request_price), 0) = 0 THEN coalesce(sum(cost_as_request), 0) END
    AS all_as_per_request,
  coalesce(sum(requests) FILTER (WHERE unpriced), 0) AS unpriced_calls,
  coalesce(sum(input_tokens) FILTER (WHERE unpriced), 0) AS unpriced_input_tokens,
  coalesce(sum(output_tokens) FILTER (WHERE unpriced), 0) AS unpriced_output_tokens,
  sum(charged) AS charged
"""


def _known_sum(where: str) -> str:
    """What the calls matching ``where`` cost: 0 when there are none, NULL (unpriced, never
    0) when some exist and none of them is priced."""
    return (f"coalesce(sum(cost) FILTER (WHERE {where}), CASE WHEN coalesce(sum(requests) "
            f"FILTER (WHERE {where} AND unpriced), 0) = 0 THEN 0 END)")


# paid_per_* split what was paid by the mode it was billed in; all_as_per_* are the what-ifs
# (every call of the row on that variant). cost_per_*_billing are the old names of paid_per_*
# (kept for existing readers; docs/recommendations.md).
MEASURES_SQL = MEASURES_SQL.format(cost=_known_sum("true"),
                                   paid_token=_known_sum("billing_mode = 'token'"),
                                   paid_request=_known_sum("billing_mode = 'request'"))

# Group-by allowlist: each dimension's SELECT list and FROM clause ({agg}: the month's
# aggregate), chosen by name only.
_BY_SQL = {
    # a label-only key (no fingerprint: new-api's token name) is a row of its own
    "key": ("key_id, any_value(key_hint) AS key_hint, any_value(key_label) AS key_label",
            "{agg}", "key_id, CASE WHEN key_id IS NULL THEN key_label END",
            "cost DESC, key_id, key_label"),
    "model": ("model, any_value(base_model) AS base_model, "
              "any_value(billing_mode) AS billing_mode", "{agg}", "model",
              "cost DESC, model"),
    "day": ("day", "{agg}", "day", "day"),
    # One row per tag name=value; a call with several tags is counted under each of them.
    "tag": ("coalesce(t.tag, '(untagged)') AS tag",
            "{agg} LEFT " + TAG_PAIRS_JOIN,
            "1", "cost DESC, tag"),
}
# --by tag:NAME groups by one tag's value, so every call is counted once.
TAG_VALUE_SQL = (
    f"SELECT coalesce({tag_value_sql('?')}, '(none)') AS tag_value, {{measures}} "
    "FROM {agg} GROUP BY 1 ORDER BY cost DESC, tag_value"
)
BREAKDOWN_SQL = "SELECT {select}, {measures} FROM {source} GROUP BY {group} ORDER BY {order}"
TOTALS_SQL = "SELECT {measures} FROM {agg}"

RECONCILIATION_SQL = """
WITH calls_per AS (
  SELECT key_id, any_value(key_hint) AS key_hint, model,
    coalesce(sum(requests) FILTER (WHERE recon <> 'uncharged'), 0) AS calls_with_charge,
    coalesce(sum(requests) FILTER (WHERE recon = 'uncharged'), 0) AS calls_without_charge,
    sum(charged) AS charged,
    coalesce(sum(cost), 0) AS ledger_cost,
    -coalesce(sum(cost) FILTER (WHERE recon = 'uncharged'), 0) AS missing_calls,
    coalesce(sum(d) FILTER (WHERE recon = 'failed_call_policy'), 0) AS failed_call_policy,
    coalesce(sum(d) FILTER (WHERE recon = 'rounding'), 0) AS rounding,
    coalesce(sum(d) FILTER (WHERE recon = 'token_mismatch'), 0) AS token_mismatch,
    coalesce(sum(d) FILTER (WHERE recon = 'price_mismatch'), 0) AS price_mismatch
  FROM {agg} GROUP BY key_id, model
  HAVING sum(charged_rows) > 0
),
adj AS (""" + ADJUSTMENTS_BY_KEY_MODEL_SQL + """),
per AS (
  SELECT coalesce(c.key_id, a.key_id) AS key_id, c.key_hint,
    coalesce(c.model, a.model) AS model,
    coalesce(c.calls_with_charge, 0) AS calls_with_charge,
    coalesce(c.calls_without_charge, 0) AS calls_without_charge,
    c.charged, coalesce(a.adjustments, 0) AS adjustments,
    coalesce(c.charged, 0) + coalesce(a.adjustments, 0) AS net_charged,
    coalesce(c.ledger_cost, 0) AS ledger_cost,
    coalesce(c.missing_calls, 0) AS missing_calls,
    coalesce(c.failed_call_policy, 0) AS failed_call_policy,
    coalesce(c.rounding, 0) AS rounding, coalesce(c.token_mismatch, 0) AS token_mismatch,
    coalesce(c.price_mismatch, 0) AS price_mismatch
  FROM calls_per c FULL JOIN adj a
    ON c.key_id IS NOT DISTINCT FROM a.key_id AND c.model IS NOT DISTINCT FROM a.model
)
SELECT *, net_charged - ledger_cost AS difference FROM per
ORDER BY abs(net_charged - ledger_cost) DESC, key_id, model
"""

UNPRICED_SQL = """
SELECT model, coalesce(sum(requests), 0) AS calls,
  coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
  coalesce(sum(images), 0) AS images, coalesce(sum(characters), 0) AS characters,
  coalesce(sum(audio_seconds), 0) AS audio_seconds
FROM {agg} WHERE unpriced
GROUP BY model ORDER BY calls DESC, model
"""

TAG_NOTE = ("By tag: a call carrying several tags is counted under each, so that table's rows "
            "can add up to more than the total.")
COMPONENTS = ("missing_calls", "token_mismatch", "price_mismatch", "failed_call_policy",
              "rounding", "adjustments")
_COMPONENT_WORDS = {
    "uncharged_groups": "keys and models the platform charged nothing for",
    "adjustments": "refunds, task settlements and fees (not calls)",
    "missing_calls": "calls in the ledger that the platform's log did not charge",
    "token_mismatch": "token counts differ (estimated or flagged usage)",
    "price_mismatch": "platform price differs from the sheet (or the model has no price)",
    "failed_call_policy": "failed calls charged by the platform (the ledger prices them 0)",
    "rounding": "per-call rounding",
}


def _bounds(month: str | date) -> list[Any]:
    first, nxt = month_bounds(month)
    return [utc_start(first), utc_start(nxt)]


@contextmanager
def month_aggregate(conn: duckdb.DuckDBPyConnection, month: str | date,
                    tolerance: Decimal = ROUNDING_TOLERANCE) -> Iterator[str]:
    """The month summed into a TEMP table (from the daily rollup when it is current and the
    tolerance is the rollup's, else one pass over the calls); yields its name, drops it after."""
    bounds = _bounds(month)
    name = f"_finance_month_{uuid.uuid4().hex[:12]}"
    if tolerance == ROUNDING_TOLERANCE and rollup.is_current(conn):
        conn.execute(ROLLUP_AGGREGATE_SQL.format(name=name), bounds)
    else:
        sql = MONTH_AGGREGATE_SQL.format(name=name, source=priced_source(conn, *bounds))
        conn.execute(sql, [tolerance, tolerance, tolerance, *bounds])
    try:
        yield name
    finally:
        conn.execute(DROP_AGGREGATE_SQL.format(name=name))


def _breakdown(conn: duckdb.DuckDBPyConnection, agg: str, by: str) -> pd.DataFrame:
    if by.startswith("tag:") and len(by) > 4:
        return decimal_frame(conn, TAG_VALUE_SQL.format(measures=MEASURES_SQL, agg=agg), [by[4:]])
    if by not in _BY_SQL:
        raise ValueError(f"--by must be one of {', '.join(DIMENSIONS)} or tag:NAME, got {by!r}")
    select, source, group, order = _BY_SQL[by]
    sql = BREAKDOWN_SQL.format(select=select, measures=MEASURES_SQL,
                               source=source.format(agg=agg), group=group, order=order)
    return decimal_frame(conn, sql, [])


def _check_by(by: str) -> None:
    if not (by.startswith("tag:") and len(by) > 4) and by not in _BY_SQL:
        raise ValueError(f"--by must be one of {', '.join(DIMENSIONS)} or tag:NAME, got {by!r}")


def breakdown(conn: duckdb.DuckDBPyConnection, month: str | date, by: str = "key"
              ) -> pd.DataFrame:
    """Cost, calls and tokens for the month by key, model, day, tag or ``tag:NAME``."""
    _check_by(by)
    with month_aggregate(conn, month) as agg:
        return _breakdown(conn, agg, by)


def _totals(conn: duckdb.DuckDBPyConnection, agg: str) -> dict[str, Any]:
    return records(decimal_frame(conn, TOTALS_SQL.format(measures=MEASURES_SQL, agg=agg), []))[0]


def totals(conn: duckdb.DuckDBPyConnection, month: str | date) -> dict[str, Any]:
    with month_aggregate(conn, month) as agg:
        return _totals(conn, agg)


def explain(row: dict[str, Any]) -> str:
    """One sentence naming the parts of a reconciliation difference, largest first."""
    parts = sorted(((abs(Decimal(row[c])), c) for c in COMPONENTS if Decimal(row[c]) != 0),
                   reverse=True)
    if not parts:
        return "matches"
    return "; ".join(f"{_COMPONENT_WORDS[c]}: {Decimal(row[c]):+.6f}" for _, c in parts)


def part_words(part: str) -> str:
    """What a reconciliation part means, in words (the headline and ``explain`` use them)."""
    return _COMPONENT_WORDS[part]


def _reconciliation(conn: duckdb.DuckDBPyConnection, agg: str, bounds: list[Any]) -> pd.DataFrame:
    df = decimal_frame(conn, RECONCILIATION_SQL.format(agg=agg), bounds)
    df["explanation"] = [explain(r) for r in records(df)]
    return df


def reconciliation(conn: duckdb.DuckDBPyConnection, month: str | date,
                   tolerance: Decimal = ROUNDING_TOLERANCE) -> pd.DataFrame:
    """Per key and model with any ``charged``: charged vs ledger cost, the difference in parts."""
    with month_aggregate(conn, month, tolerance) as agg:
        return _reconciliation(conn, agg, _bounds(month))


def unpriced_models(conn: duckdb.DuckDBPyConnection, month: str | date) -> pd.DataFrame:
    with month_aggregate(conn, month) as agg:
        return decimal_frame(conn, UNPRICED_SQL.format(agg=agg), [])


HEADLINE_PARTS = (*COMPONENTS, "uncharged_groups")
# the old names of paid_per_token / paid_per_request, kept in the CSV and JSON for existing readers
OLD_PAID_COLUMNS = ("cost_per_token_billing", "cost_per_request_billing")


def reconciliation_headline(report: FinanceReport) -> dict[str, Any] | None:
    """The month in one line: what the platform charged (net of refunds, settlements, fees),
    what the ledger prices, their difference, and that difference split by cause — the
    reconciliation's parts summed, plus ``uncharged_groups``: the cost of keys x models the
    platform charged nothing for at all. The parts add up exactly to the difference. None
    when the platform charged nothing this month (nothing to reconcile with)."""
    net = report.money.get("net_charged")
    if net is None:
        return None
    rec = report.reconciliation
    ledger_cost = report.totals["cost"] or Decimal(0)
    parts = {c: sum((Decimal(v) for v in rec[c]), Decimal(0)) if len(rec) else Decimal(0)
             for c in COMPONENTS}
    in_recon = sum((Decimal(v) for v in rec["ledger_cost"]), Decimal(0)) if len(rec) \
        else Decimal(0)
    parts["uncharged_groups"] = -(ledger_cost - in_recon)
    return {"net_charged": net, "ledger_cost": ledger_cost, "difference": net - ledger_cost,
            **parts}


@dataclass
class FinanceReport:
    """Everything finance gets for a month; ``tables`` maps a dimension to its breakdown."""

    month: date
    by: str
    totals: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    reconciliation: pd.DataFrame
    unpriced: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    money: dict[str, Any] = field(default_factory=dict)     # pricing.adjustments.month_money
    currency: str = "USD"                                   # the price sheet's

    @property
    def main(self) -> pd.DataFrame:
        return self.tables[self.by]


def finance_report(conn: duckdb.DuckDBPyConnection, month: str | date, by: str = "key",
                   *, all_dimensions: bool = False) -> FinanceReport:
    """Build the month's pack; ``all_dimensions`` adds every dimension (the XLSX needs them)."""
    _check_by(by)
    with month_aggregate(conn, month) as agg:
        return report_from(conn, agg, month, by, all_dimensions=all_dimensions)


def report_from(conn: duckdb.DuckDBPyConnection, agg: str, month: str | date, by: str = "key",
                *, all_dimensions: bool = False) -> FinanceReport:
    """The pack summed from ``agg``, a relation with the month aggregate's columns (the one
    :func:`month_aggregate` built, or the month's calls one per row, as the exactness test
    compares them)."""
    dims = list(dict.fromkeys([by, *(DIMENSIONS if all_dimensions else ())]))
    for d in dims:
        _check_by(d)
    bounds = _bounds(month)
    tables = {d: _breakdown(conn, agg, d) for d in dims}
    tot = _totals(conn, agg)
    recon = _reconciliation(conn, agg, bounds)
    unpriced = decimal_frame(conn, UNPRICED_SQL.format(agg=agg), [])
    money = month_money(conn, agg, bounds)
    currency = fetch_one(conn.execute(CURRENCY_SQL))[0]
    return FinanceReport(month=month_bounds(month)[0], by=by, totals=tot, tables=tables,
                         reconciliation=recon, unpriced=unpriced, notes=_notes(tot, money, by),
                         money=money, currency=str(currency))


def _notes(tot: dict[str, Any], money: dict[str, Any], by: str) -> list[str]:
    notes = []
    if tot["unpriced_calls"]:
        notes.append(f"{tot['unpriced_calls']} calls have no price and are not in the cost "
                     "(see Unpriced); add their models to the price sheet.")
    if by == "tag":
        notes.append(TAG_NOTE)
    if money["adjustments"] is not None:
        notes.append("The platform's net charge is what it charged for calls plus refunds, task "
                     "settlements and fees, each on its own line (see money); those are not "
                     "calls and are in no call count.")
    return notes


# ---- writers: csv (the chosen table + a TOTAL row), json (everything), xlsx (every sheet) ----

MONEY_COLUMNS = ("cost", "paid_per_token", "paid_per_request", "all_as_per_token",
                 "all_as_per_request", "cost_per_token_billing", "cost_per_request_billing",
                 "charged",
                 "ledger_cost", "difference", "net_charged", "charged_on_calls", *COMPONENTS,
                 *(f"adjustments_{k}" for k in ("refund", "settlement", "fee", "billed")))
# the money lines under the CSV's TOTAL row (label, key of FinanceReport.money)
MONEY_LINES = (("CHARGED ON CALLS", "charged_on_calls"), ("REFUNDS", "adjustments_refund"),
               ("TASK SETTLEMENTS", "adjustments_settlement"), ("FEES", "adjustments_fee"),
               ("BILLED (not by call)", "adjustments_billed"), ("NET CHARGED", "net_charged"))
MONEY_PLACES = Decimal("0.000001")


def _money(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(Decimal(str(value)).quantize(MONEY_PLACES, rounding=ROUND_HALF_UP))


def _plain(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows with money as exact decimal strings (6 places) and dates as ISO strings."""
    out = []
    for rec in records(df):
        row = {}
        for k, v in rec.items():
            if k in MONEY_COLUMNS:
                row[k] = _money(v)
            elif isinstance(v, date):
                row[k] = v.isoformat()
            elif v is None or (isinstance(v, float) and pd.isna(v)):
                row[k] = None
            else:
                row[k] = v.item() if hasattr(v, "item") else v
        out.append(row)
    return out


def _with_total(report: FinanceReport) -> list[dict[str, Any]]:
    rows = _plain(report.main)
    if rows:
        total = {k: "" for k in rows[0]}
        total[next(iter(rows[0]))] = "TOTAL"
        total.update(_plain(pd.DataFrame([report.totals]))[0])
        rows.append(total)
        rows.extend(_money_lines(report, list(rows[0])))
    return rows


def _money_lines(report: FinanceReport, columns: list[str]) -> list[dict[str, Any]]:
    """What the platform charged, adjustment by kind, and its net, under the TOTAL row (in the
    ``charged`` column): the adjustments are money, not calls, so they are no table row."""
    if report.money.get("adjustments") is None:
        return []
    out = []
    for label, key in MONEY_LINES:
        value = report.money.get(key)
        if value is None and key != "net_charged":
            continue
        line = {k: "" for k in columns}
        line[columns[0]] = label
        line["charged"] = _money(value) or "0.000000"
        out.append(line)
    return out


def to_json(report: FinanceReport) -> dict[str, Any]:
    return {
        "month": report.month.strftime("%Y-%m"),
        "by": report.by,
        "totals": _plain(pd.DataFrame([report.totals]))[0],
        "rows": _plain(report.main),
        "money": _plain(pd.DataFrame([report.money]))[0] if report.money else {},
        "reconciliation": _plain(report.reconciliation),
        "unpriced": _plain(report.unpriced),
        "notes": report.notes,
    }


def write_csv(report: FinanceReport, out: TextIO) -> None:
    import csv

    rows = _with_total(report)
    cols = list(rows[0]) if rows else list(report.main.columns)
    writer = csv.DictWriter(out, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


# Excel refuses these in a sheet title ("By tag:team" raised ValueError) and caps it at 31.
_BAD_TITLE = str.maketrans({c: " " for c in "[]:*?/\\"})


def sheet_title(title: str, taken: set[str] | None = None) -> str:
    """``title`` as Excel accepts it: no ``[]:*?/\\``, at most 31 characters, not starting
    or ending with an apostrophe, unique among ``taken`` (which it joins)."""
    clean = " ".join(title.translate(_BAD_TITLE).split()).strip("'") or "Sheet"
    taken = taken if taken is not None else set()
    name, n = clean[:31], 2
    while name.lower() in {t.lower() for t in taken}:
        suffix = f" ({n})"
        name, n = clean[:31 - len(suffix)] + suffix, n + 1
    taken.add(name)
    return name


def _money_format(currency: str) -> str:
    """Excel number format: thousands separators, 2 to 6 decimals, the currency after."""
    return f'#,##0.00####" {currency}";-#,##0.00####" {currency}"'


def _widths(ws: Any) -> None:
    for column in ws.columns:
        longest = max((len(str(c.value)) for c in column if c.value is not None), default=8)
        ws.column_dimensions[column[0].column_letter].width = min(max(longest + 2, 10), 60)


def _sheet(wb: Workbook, title: str, rows: list[dict[str, Any]], columns: list[str],
           currency: str, note: str | None = None) -> None:
    ws = wb.create_sheet(title)
    ws.append(columns)
    for row in rows:
        ws.append([Decimal(row[c]) if c in MONEY_COLUMNS and row[c] not in (None, "")
                   else row[c] for c in columns])
    for i, c in enumerate(columns, start=1):
        if c in MONEY_COLUMNS:
            for cell in next(ws.iter_cols(min_col=i, max_col=i, min_row=2)):
                cell.number_format = _money_format(currency)
    _widths(ws)
    if note:
        ws.append([])
        ws.append([note])
    ws.freeze_panes = "A2"


def write_xlsx(report: FinanceReport, path: str | Path | IO[bytes]) -> None:
    """Summary sheet (with the currency), one sheet per dimension, then Reconciliation and
    Unpriced; money cells are numbers in a money format; columns sized to their contents."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.worksheets[0]
    ws.title = "Summary"
    taken = {"Summary", "Reconciliation", "Unpriced"}
    ws.append(["callmeter finance report", report.month.strftime("%Y-%m")])
    ws.append(["currency", report.currency])
    ws.append([])
    money_rows = list(_plain(pd.DataFrame([report.totals]))[0].items())
    money_rows += [("", None)]
    money_rows += list((_plain(pd.DataFrame([report.money]))[0] if report.money else {}).items())
    for k, v in money_rows:
        ws.append([k, Decimal(v) if k in MONEY_COLUMNS and v is not None else v])
        if k in MONEY_COLUMNS:
            ws.cell(ws.max_row, 2).number_format = _money_format(report.currency)
    ws.append([])
    for note in report.notes:
        ws.append(["note", note])
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 24
    for dim, df in report.tables.items():
        _sheet(wb, sheet_title(f"By {dim}", taken), _plain(df), list(df.columns),
               report.currency, TAG_NOTE if dim == "tag" else None)
    _sheet(wb, "Reconciliation", _plain(report.reconciliation),
           list(report.reconciliation.columns), report.currency)
    _sheet(wb, "Unpriced", _plain(report.unpriced), list(report.unpriced.columns),
           report.currency)
    wb.save(path)
