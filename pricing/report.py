"""The finance pack: a month's cost by key, model, day or tag, reconciled against ``charged``.

Every figure is summed in DuckDB from ``priced_calls`` as exact DECIMAL, so the report's total is
``SELECT sum(cost) FROM priced_calls`` for the month, to the cent and beyond. Unpriced calls are
counted with their token volumes, never folded in as 0. The reconciliation splits the difference
between what the platform says it charged and what the ledger prices, per key and model, into
missing calls, token mismatch, price mismatch, failed-call policy and rounding; the parts add up
exactly to the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pandas as pd

from .forecast import month_bounds, utc_start

__all__ = ["DIMENSIONS", "FinanceReport", "finance_report", "breakdown", "reconciliation",
           "unpriced_models", "ROUNDING_TOLERANCE"]

DIMENSIONS = ("key", "model", "day", "tag")
# new-api bills in quota units of US$0.000002; a per-call difference this small is rounding.
ROUNDING_TOLERANCE = Decimal("0.00001")

MEASURES_SQL = """
  coalesce(sum(requests), 0) AS calls,
  coalesce(sum(requests) FILTER (WHERE status >= 400), 0) AS failed_calls,
  coalesce(sum(input_tokens), 0) AS input_tokens,
  coalesce(sum(cached_tokens), 0) AS cached_tokens,
  coalesce(sum(output_tokens), 0) AS output_tokens,
  coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
  coalesce(sum(cost), 0) AS cost,
  coalesce(sum(cost) FILTER (WHERE billing_mode = 'token'), 0) AS cost_per_token_billing,
  coalesce(sum(cost) FILTER (WHERE billing_mode = 'request'), 0) AS cost_per_request_billing,
  coalesce(sum(requests) FILTER (WHERE cost IS NULL), 0) AS unpriced_calls,
  coalesce(sum(input_tokens) FILTER (WHERE cost IS NULL), 0) AS unpriced_input_tokens,
  coalesce(sum(output_tokens) FILTER (WHERE cost IS NULL), 0) AS unpriced_output_tokens,
  sum(charged) AS charged
"""

MONTH_FILTER_SQL = "started_at >= ? AND started_at < ?"

# Group-by allowlist: each dimension's SELECT list and FROM clause, chosen by name only.
_BY_SQL = {
    "key": ("key_id, any_value(key_hint) AS key_hint, any_value(key_label) AS key_label",
            "priced_calls", "key_id", "cost DESC, key_id"),
    "model": ("model, any_value(base_model) AS base_model, "
              "any_value(billing_mode) AS billing_mode", "priced_calls", "model",
              "cost DESC, model"),
    "day": ("CAST(started_at AT TIME ZONE 'UTC' AS DATE) AS day", "priced_calls", "day", "day"),
    # One row per tag name=value; a call with several tags is counted under each of them.
    "tag": ("coalesce(t.tag, '(untagged)') AS tag",
            "priced_calls LEFT JOIN LATERAL (SELECT e.key || '=' || e.value AS tag "
            "FROM (SELECT unnest(map_entries(tags)) AS e)) t ON true",
            "1", "cost DESC, tag"),
}
# --by tag:NAME groups by one tag's value, so every call is counted once.
TAG_VALUE_SQL = (
    "SELECT coalesce(map_extract_value(tags, ?), '(none)') AS tag_value, {measures} "
    "FROM priced_calls WHERE {where} GROUP BY 1 ORDER BY cost DESC, tag_value"
)
BREAKDOWN_SQL = "SELECT {select}, {measures} FROM {source} WHERE {where} GROUP BY {group} " \
                "ORDER BY {order}"
TOTALS_SQL = "SELECT {measures} FROM priced_calls WHERE {where}"

RECONCILIATION_SQL = """
WITH month AS (
  SELECT *, charged - coalesce(cost, 0) AS d FROM priced_calls
  WHERE started_at >= ? AND started_at < ?
), per AS (
  SELECT key_id, any_value(key_hint) AS key_hint, model,
    coalesce(sum(requests) FILTER (WHERE charged IS NOT NULL), 0) AS calls_with_charge,
    coalesce(sum(requests) FILTER (WHERE charged IS NULL), 0) AS calls_without_charge,
    sum(charged) AS charged,
    coalesce(sum(cost), 0) AS ledger_cost,
    -coalesce(sum(cost) FILTER (WHERE charged IS NULL), 0) AS missing_calls,
    coalesce(sum(d) FILTER (WHERE charged IS NOT NULL AND status >= 400), 0)
      AS failed_call_policy,
    coalesce(sum(d) FILTER (WHERE charged IS NOT NULL AND status < 400 AND cost IS NOT NULL
      AND abs(d) <= ? * requests), 0) AS rounding,
    coalesce(sum(d) FILTER (WHERE charged IS NOT NULL AND status < 400 AND cost IS NOT NULL
      AND abs(d) > ? * requests
      AND (usage_source IS DISTINCT FROM 'reported' OR usage_flag IS NOT NULL)), 0)
      AS token_mismatch,
    coalesce(sum(d) FILTER (WHERE charged IS NOT NULL AND status < 400 AND (cost IS NULL
      OR (abs(d) > ? * requests AND usage_source = 'reported' AND usage_flag IS NULL))), 0)
      AS price_mismatch
  FROM month GROUP BY key_id, model
  HAVING count(charged) > 0
)
SELECT *, charged - ledger_cost AS difference FROM per ORDER BY abs(charged - ledger_cost) DESC,
  key_id, model
"""

UNPRICED_SQL = """
SELECT model, coalesce(sum(requests), 0) AS calls,
  coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
  coalesce(sum(images), 0) AS images, coalesce(sum(characters), 0) AS characters,
  coalesce(sum(audio_seconds), 0) AS audio_seconds
FROM priced_calls WHERE started_at >= ? AND started_at < ? AND cost IS NULL
GROUP BY model ORDER BY calls DESC, model
"""

COMPONENTS = ("missing_calls", "token_mismatch", "price_mismatch", "failed_call_policy",
              "rounding")
_COMPONENT_WORDS = {
    "missing_calls": "calls in the ledger that the platform's log did not charge",
    "token_mismatch": "token counts differ (estimated or flagged usage)",
    "price_mismatch": "platform price differs from the sheet (or the model has no price)",
    "failed_call_policy": "failed calls charged by the platform (the ledger prices them 0)",
    "rounding": "per-call rounding",
}


def _bounds(month: str | date) -> list:
    first, nxt = month_bounds(month)
    return [utc_start(first), utc_start(nxt)]


def _frame(conn: duckdb.DuckDBPyConnection, sql: str, params: list) -> pd.DataFrame:
    cur = conn.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return pd.DataFrame(cur.fetchall(), columns=cols)


def breakdown(conn: duckdb.DuckDBPyConnection, month: str | date, by: str = "key"
              ) -> pd.DataFrame:
    """Cost, calls and tokens for the month by key, model, day, tag or ``tag:NAME``."""
    if by.startswith("tag:") and len(by) > 4:
        sql = TAG_VALUE_SQL.format(measures=MEASURES_SQL, where=MONTH_FILTER_SQL)
        return _frame(conn, sql, [by[4:], *_bounds(month)])
    if by not in _BY_SQL:
        raise ValueError(f"--by must be one of {', '.join(DIMENSIONS)} or tag:NAME, got {by!r}")
    select, source, group, order = _BY_SQL[by]
    sql = BREAKDOWN_SQL.format(select=select, measures=MEASURES_SQL, source=source,
                               where=MONTH_FILTER_SQL, group=group, order=order)
    return _frame(conn, sql, _bounds(month))


def totals(conn: duckdb.DuckDBPyConnection, month: str | date) -> dict:
    sql = TOTALS_SQL.format(measures=MEASURES_SQL, where=MONTH_FILTER_SQL)
    return _frame(conn, sql, _bounds(month)).iloc[0].to_dict()


def explain(row: dict) -> str:
    """One sentence naming the parts of a reconciliation difference, largest first."""
    parts = sorted(((abs(Decimal(row[c])), c) for c in COMPONENTS if Decimal(row[c]) != 0),
                   reverse=True)
    if not parts:
        return "matches"
    return "; ".join(f"{_COMPONENT_WORDS[c]}: {Decimal(row[c]):+.6f}" for _, c in parts)


def reconciliation(conn: duckdb.DuckDBPyConnection, month: str | date,
                   tolerance: Decimal = ROUNDING_TOLERANCE) -> pd.DataFrame:
    """Per key and model with any ``charged``: charged vs ledger cost, the difference in parts."""
    df = _frame(conn, RECONCILIATION_SQL, [*_bounds(month), tolerance, tolerance, tolerance])
    df["explanation"] = [explain(r) for r in df.to_dict("records")]
    return df


def unpriced_models(conn: duckdb.DuckDBPyConnection, month: str | date) -> pd.DataFrame:
    return _frame(conn, UNPRICED_SQL, _bounds(month))


@dataclass
class FinanceReport:
    """Everything finance gets for a month; ``tables`` maps a dimension to its breakdown."""

    month: date
    by: str
    totals: dict
    tables: dict[str, pd.DataFrame]
    reconciliation: pd.DataFrame
    unpriced: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def main(self) -> pd.DataFrame:
        return self.tables[self.by]


def finance_report(conn: duckdb.DuckDBPyConnection, month: str | date, by: str = "key",
                   *, all_dimensions: bool = False) -> FinanceReport:
    """Build the month's pack; ``all_dimensions`` adds every dimension (the XLSX needs them)."""
    dims = list(dict.fromkeys([by, *(DIMENSIONS if all_dimensions else ())]))
    tables = {d: breakdown(conn, month, d) for d in dims}
    tot = totals(conn, month)
    notes = []
    if tot["unpriced_calls"]:
        notes.append(f"{tot['unpriced_calls']} calls have no price and are not in the cost "
                     "(see Unpriced); add their models to the price sheet.")
    if any(d == "tag" for d in dims):
        notes.append("By tag: a call carrying several tags is counted under each, so that "
                     "table's rows can add up to more than the total.")
    return FinanceReport(month=month_bounds(month)[0], by=by, totals=tot, tables=tables,
                         reconciliation=reconciliation(conn, month),
                         unpriced=unpriced_models(conn, month), notes=notes)


# ---- writers: csv (the chosen table + a TOTAL row), json (everything), xlsx (every sheet) ----

MONEY_COLUMNS = ("cost", "cost_per_token_billing", "cost_per_request_billing", "charged",
                 "ledger_cost", "difference", *COMPONENTS)
MONEY_PLACES = Decimal("0.000001")


def _money(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(Decimal(value).quantize(MONEY_PLACES, rounding=ROUND_HALF_UP))


def _plain(df: pd.DataFrame) -> list[dict]:
    """Rows with money as exact decimal strings (6 places) and dates as ISO strings."""
    out = []
    for rec in df.to_dict("records"):
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


def _with_total(report: FinanceReport) -> list[dict]:
    rows = _plain(report.main)
    if rows:
        total = {k: "" for k in rows[0]}
        total[next(iter(rows[0]))] = "TOTAL"
        total.update(_plain(pd.DataFrame([report.totals]))[0])
        rows.append(total)
    return rows


def to_json(report: FinanceReport) -> dict:
    return {
        "month": report.month.strftime("%Y-%m"),
        "by": report.by,
        "totals": _plain(pd.DataFrame([report.totals]))[0],
        "rows": _plain(report.main),
        "reconciliation": _plain(report.reconciliation),
        "unpriced": _plain(report.unpriced),
        "notes": report.notes,
    }


def write_csv(report: FinanceReport, out) -> None:
    import csv

    rows = _with_total(report)
    cols = list(rows[0]) if rows else list(report.main.columns)
    writer = csv.DictWriter(out, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _sheet(wb, title: str, rows: list[dict], columns: list[str]) -> None:
    ws = wb.create_sheet(title)
    ws.append(columns)
    for row in rows:
        ws.append([Decimal(row[c]) if c in MONEY_COLUMNS and row[c] not in (None, "")
                   else row[c] for c in columns])
    for i, c in enumerate(columns, start=1):
        if c in MONEY_COLUMNS:
            for cell in next(ws.iter_cols(min_col=i, max_col=i, min_row=2)):
                cell.number_format = "#,##0.00####"
    ws.freeze_panes = "A2"


def write_xlsx(report: FinanceReport, path) -> None:
    """Summary sheet, one sheet per dimension, then Reconciliation and Unpriced."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Summary"
    ws.append(["callmeter finance report", report.month.strftime("%Y-%m")])
    ws.append([])
    for k, v in _plain(pd.DataFrame([report.totals]))[0].items():
        ws.append([k, Decimal(v) if k in MONEY_COLUMNS and v is not None else v])
    ws.append([])
    for note in report.notes:
        ws.append(["note", note])
    ws.column_dimensions["A"].width = 28
    for dim, df in report.tables.items():
        _sheet(wb, f"By {dim}"[:31], _plain(df), list(df.columns))
    _sheet(wb, "Reconciliation", _plain(report.reconciliation),
           list(report.reconciliation.columns))
    _sheet(wb, "Unpriced", _plain(report.unpriced), list(report.unpriced.columns))
    wb.save(path)
