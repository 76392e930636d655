"""A month of priced calls as FinOps Foundation FOCUS 1.2 cost-and-usage rows (CSV or Parquet).

One row per key × model (as called, so billing mode included) × UTC day (or hour) × tags, summed
in DuckDB as exact DECIMAL from the same priced rows as ``callmeter report``, so ``ListCost``
adds up to the report's total. Columns and rules are FOCUS 1.2's as shipped in the FinOps
Foundation's ``focus-validator`` 2.2.1 (``rules/model-1.2.0.1.json``, read 2026-12):

- ``ListCost`` and ``ContractedCost``: the sheet's price (the platform's price list).
- ``BilledCost`` and ``EffectiveCost``: what the platform charged where a log carried it
  (``charged``), else the sheet's price.
- ``SubAccountId`` / ``SubAccountName``: the key fingerprint (or, for a key known only by its
  label, the label) and its label or hint.
- ``ConsumedQuantity`` / ``PricingQuantity`` with their units: tokens for per-token models
  (images, characters or seconds where those are what is priced), requests for ``-c`` models.
- ``Tags``: the call's tags as a JSON object; ``x_`` columns keep callmeter's own figures.

FOCUS forbids a null cost, so calls without a price get rows of their own, ``x_Unpriced`` true,
a ChargeDescription starting ``UNPRICED`` and 0 in the cost columns (the platform's charge, when
known, in ``BilledCost``); the export says how many there are.

The ledger's adjustments (refunds, task settlements, fees, billed lines: money that is not a
call) are rows too, summed per key × model × kind × the same UTC day or hour, so ``BilledCost``
adds up to the platform's net charge. Their ChargeCategory is ``Adjustment``: FOCUS's ``Credit``
is an incentive "unrelated to other past/current/future charges", and a ``Usage`` row must carry
quantities and a SKU an adjustment line does not have (docs/otel-focus.md says more). They have
no quantities, and every cost column is the signed amount (ListCost-C-008, ContractedCost-C-008,
EffectiveCost-C-010). Calls whose source sends its bill as billed lines (OpenAI's Costs API)
bill 0 themselves, so that bill is not counted twice.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import duckdb

from .memo import priced_source
from .periods import month_bounds, utc_start

__all__ = ["FOCUS_COLUMNS", "FocusExport", "FocusOptions", "GRAINS", "focus_export",
           "write_focus"]

GRAINS = {"day": 86_400_000_000, "hour": 3_600_000_000}  # bucket size in microseconds

# The month's priced calls summed per row of the export. {bucket} is a GRAINS value.
FOCUS_ROWS_SQL = """
SELECT make_timestamp((epoch_us(started_at) // {bucket}) * {bucket}) AS period_start,
  key_id, key_label, any_value(key_hint) AS key_hint,
  model, any_value(base_model) AS base_model, billing_mode, tags,
  cost IS NULL AS unpriced, any_value(currency) AS currency,
  sum(requests) AS requests,
  coalesce(sum(requests) FILTER (WHERE status >= 400), 0) AS failed_requests,
  sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
  sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens,
  sum(images) AS images, sum(characters) AS characters, sum(audio_seconds) AS audio_seconds,
  coalesce(sum(cost), 0) AS list_cost,
  coalesce(sum(coalesce(charged, CASE WHEN source IN (SELECT source FROM adjustments
    WHERE kind = 'billed' AND occurred_at >= ? AND occurred_at < ?) THEN 0 ELSE cost END)),
    0) AS billed_cost,
  count(charged) AS charged_rows
FROM {source}
WHERE started_at >= ? AND started_at < ?
GROUP BY ALL
ORDER BY period_start, key_id NULLS FIRST, model, unpriced
"""

# The month's adjustments summed per row of the export (amounts are signed: a refund < 0).
FOCUS_ADJUSTMENTS_SQL = """
SELECT make_timestamp((epoch_us(occurred_at) // {bucket}) * {bucket}) AS period_start,
  key_id, key_label, NULL AS key_hint, model, kind, tags,
  count(*) AS adjustments, sum(amount) AS amount,
  string_agg(DISTINCT reason, '; ' ORDER BY reason) AS reasons
FROM adjustments
WHERE occurred_at >= ? AND occurred_at < ?
GROUP BY period_start, key_id, key_label, model, kind, tags
ORDER BY period_start, key_id NULLS FIRST, model NULLS FIRST, kind
"""

# kind → (ChargeFrequency, what a row of it is)
ADJUSTMENT_CHARGES = {
    "refund": ("One-Time", "refunded by the platform (a failed async task, or a task settled "
                           "below its up-front charge)"),
    "settlement": ("One-Time", "charged on settling async tasks above their up-front charge"),
    "fee": ("One-Time", "fee charged on failed requests"),
    "billed": ("Usage-Based", "billed by the provider, not tied to calls"),
}

FOCUS_COLUMNS = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "CommitmentDiscountStatus", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
    "EffectiveCost", "InvoiceId", "InvoiceIssuerName", "ListCost", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName",
    "ServiceCategory", "ServiceName", "ServiceSubcategory", "SkuId", "SubAccountId",
    "SubAccountName", "Tags",
    # callmeter's own (FOCUS: custom columns carry x_ and come last)
    "x_Model", "x_BaseModel", "x_BillingMode", "x_KeyHint", "x_Calls", "x_FailedCalls",
    "x_InputTokens", "x_CachedTokens", "x_OutputTokens", "x_ReasoningTokens", "x_Unpriced",
    "x_ChargedCalls", "x_AdjustmentKind", "x_Adjustments", "x_AdjustmentReasons",
)
MONEY = ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost")
QUANTITIES = ("ConsumedQuantity", "PricingQuantity")
TIMES = ("BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart")


@dataclass(frozen=True)
class FocusOptions:
    """Who bills: FOCUS wants a provider, an invoice issuer and a billing account by name."""

    provider: str = "LLM platform"
    billing_account_id: str = "default"
    billing_account_name: str | None = None
    currency: str = "USD"           # for rows with no priced call (FOCUS: never null)
    grain: str = "day"
    publishers: dict[str, str] | None = None   # base model → model maker (data/models.csv)


@dataclass
class FocusExport:
    rows: list[dict[str, Any]]
    list_cost: Decimal
    billed_cost: Decimal
    unpriced_rows: int
    unpriced_calls: int
    adjustment_rows: int = 0


def _quantity(r: dict[str, Any]) -> tuple[Decimal, str]:
    """(quantity, unit) of what a per-token row is priced by."""
    tokens = int(r["input_tokens"] or 0) + int(r["output_tokens"] or 0)
    for value, unit in ((tokens, "Tokens"), (r["images"], "Images"),
                        (r["characters"], "Characters")):
        if value:
            return Decimal(int(value)), unit
    if r["audio_seconds"]:
        return Decimal(str(r["audio_seconds"])), "Seconds"
    return Decimal(int(r["requests"])), "Requests"


def _account_name(r: dict[str, Any]) -> str:
    """The key's label, else its hint (written with ASCII dots), else its fingerprint."""
    return r["key_label"] or (r["key_hint"] or "").replace("\u2026", "...") or r["key_id"]


def _describe(r: dict[str, Any]) -> str:
    mode = "per request" if r["billing_mode"] == "request" else "per token"
    text = f"{r['model']}: {int(r['requests'])} calls billed {mode}"
    if r["unpriced"]:
        return (f"UNPRICED {text}: no price in the sheet, cost unknown (0 here: FOCUS costs "
                "cannot be null)")
    return text


def _charge_columns(r: dict[str, Any], bounds: tuple[datetime, datetime], step: timedelta,
                    opts: FocusOptions, model: str | None) -> dict[str, Any]:
    """The columns a call row and an adjustment row fill alike: who bills whom, when, for what."""
    start = r["period_start"].replace(tzinfo=UTC)
    publishers = opts.publishers or {}
    return {
        "BillingAccountId": opts.billing_account_id,
        "BillingAccountName": opts.billing_account_name or opts.billing_account_id,
        "BillingCurrency": r.get("currency") or opts.currency,
        "BillingPeriodStart": bounds[0], "BillingPeriodEnd": bounds[1],
        "ChargeClass": None,  # corrections of a previously invoiced month: see focus_export
        "ChargePeriodStart": start, "ChargePeriodEnd": start + step,
        # the month's statement: a provisional invoice in FOCUS's terms
        "InvoiceId": f"{opts.billing_account_id}-{bounds[0]:%Y-%m}",
        "CommitmentDiscountStatus": None,  # no commitment discounts on the platform
        "InvoiceIssuerName": opts.provider, "ProviderName": opts.provider,
        "PublisherName": publishers.get(model or "", "unknown"),
        "ServiceCategory": "AI and Machine Learning", "ServiceName": "LLM API",
        "ServiceSubcategory": "Generative AI",
        # a key known by its label only (some platform logs) is a sub-account all the same
        "SubAccountId": r["key_id"] or r["key_label"],
        "SubAccountName": _account_name(r) if r["key_id"] or r["key_label"] else None,
        "Tags": json.dumps(dict(r["tags"]), sort_keys=True) if r["tags"] else None,
        "x_KeyHint": r["key_hint"],
    }


def _focus_row(r: dict[str, Any], bounds: tuple[datetime, datetime], step: timedelta,
               opts: FocusOptions) -> dict[str, Any]:
    consumed, consumed_unit = _quantity(r)
    if r["billing_mode"] == "request":
        priced, priced_unit = Decimal(int(r["requests"])), "Requests"
    else:
        priced, priced_unit = consumed, consumed_unit
    list_cost, billed = Decimal(r["list_cost"]), Decimal(r["billed_cost"])
    return _charge_columns(r, bounds, step, opts, r["base_model"]) | {
        "BilledCost": billed, "ChargeCategory": "Usage", "ChargeDescription": _describe(r),
        "ChargeFrequency": "Usage-Based", "ConsumedQuantity": consumed,
        "ConsumedUnit": consumed_unit, "ContractedCost": list_cost, "EffectiveCost": billed,
        "ListCost": list_cost, "PricingQuantity": priced, "PricingUnit": priced_unit,
        "SkuId": r["model"],
        "x_Model": r["model"], "x_BaseModel": r["base_model"], "x_BillingMode": r["billing_mode"],
        "x_Calls": int(r["requests"]),
        "x_FailedCalls": int(r["failed_requests"]), "x_InputTokens": int(r["input_tokens"]),
        "x_CachedTokens": int(r["cached_tokens"]), "x_OutputTokens": int(r["output_tokens"]),
        "x_ReasoningTokens": int(r["reasoning_tokens"]), "x_Unpriced": bool(r["unpriced"]),
        "x_ChargedCalls": int(r["charged_rows"]), "x_AdjustmentKind": None, "x_Adjustments": 0,
        "x_AdjustmentReasons": None,
    }


def _adjustment_row(r: dict[str, Any], bounds: tuple[datetime, datetime], step: timedelta,
                    opts: FocusOptions) -> dict[str, Any]:
    """A FOCUS ``Adjustment`` row: no quantities, every cost column the signed amount."""
    frequency, what = ADJUSTMENT_CHARGES[r["kind"]]
    amount, base = Decimal(r["amount"]), r["model"] and r["model"].removesuffix("-c")
    n = int(r["adjustments"])
    text = (f"{n} {r['kind']} line{'s' if n > 1 else ''}"
            f"{' for ' + r['model'] if r['model'] else ''}: {what}")
    return _charge_columns(r, bounds, step, opts, base) | {
        "BilledCost": amount, "ChargeCategory": "Adjustment",
        "ChargeDescription": text,
        "ChargeFrequency": frequency, "ConsumedQuantity": None, "ConsumedUnit": None,
        "ContractedCost": amount, "EffectiveCost": amount, "ListCost": amount,
        "PricingQuantity": None, "PricingUnit": None, "SkuId": r["model"],
        "x_Model": r["model"], "x_BaseModel": base, "x_BillingMode": None, "x_Calls": 0,
        "x_FailedCalls": 0, "x_InputTokens": 0, "x_CachedTokens": 0, "x_OutputTokens": 0,
        "x_ReasoningTokens": 0, "x_Unpriced": False, "x_ChargedCalls": 0,
        # the platform's own words (e.g. 任务失败) kept apart: focus-validator 2.2.1 wants
        # ChargeDescription in ASCII, a stricter reading of FOCUS's StringHandling
        "x_AdjustmentKind": r["kind"], "x_Adjustments": n, "x_AdjustmentReasons": r["reasons"],
    }


def _records(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, rec, strict=True)) for rec in cur.fetchall()]


def focus_export(conn: duckdb.DuckDBPyConnection, month: str | date,
                 opts: FocusOptions = FocusOptions()) -> FocusExport:
    """The month's FOCUS rows (exact ``Decimal`` money) and their totals: calls, then
    adjustments.

    ChargeClass stays null: an adjustment is exported in the month it happened, and a refund or
    a settlement does not say when its task was charged, so one that corrects a previously
    invoiced month (a task charged on the last evening, settled after midnight) is not known.
    """
    if opts.grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}, got {opts.grain!r}")
    first, nxt = month_bounds(month)
    bounds = (utc_start(first), utc_start(nxt))
    sql = FOCUS_ROWS_SQL.format(bucket=GRAINS[opts.grain], source=priced_source(conn, *bounds))
    step = timedelta(microseconds=GRAINS[opts.grain])
    rows = [_focus_row(r, bounds, step, opts) for r in _records(conn, sql, [*bounds, *bounds])]
    adjustments = [_adjustment_row(r, bounds, step, opts) for r in _records(
        conn, FOCUS_ADJUSTMENTS_SQL.format(bucket=GRAINS[opts.grain]), list(bounds))]
    unpriced = [r for r in rows if r["x_Unpriced"]]
    rows += adjustments
    return FocusExport(rows=rows, list_cost=sum((r["ListCost"] for r in rows), Decimal(0)),
                       billed_cost=sum((r["BilledCost"] for r in rows), Decimal(0)),
                       unpriced_rows=len(unpriced),
                       unpriced_calls=sum(r["x_Calls"] for r in unpriced),
                       adjustment_rows=len(adjustments))


def _text(column: str, value: object) -> str:
    if value is None:
        return ""
    if column in TIMES:
        return value.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else str(value)
    if isinstance(value, Decimal):  # with a point: a CSV reader (the validator's) infers a
        text = format(value.normalize(), "f") if value else "0"   # whole column as integers
        return text if "." in text else f"{text}.0"               # otherwise, not decimals
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    """FOCUS CSV: exact decimals with a point, no exponent; ISO 8601 UTC times ending in Z."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FOCUS_COLUMNS)
    for row in rows:
        writer.writerow([_text(c, row[c]) for c in FOCUS_COLUMNS])


def write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    """FOCUS Parquet: money and quantities as decimal128(38, 15), times as UTC timestamps."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    money = pa.decimal128(38, 15)
    types = {c: money for c in MONEY + QUANTITIES}
    types |= {c: pa.timestamp("us", tz="UTC") for c in TIMES}
    types |= {c: pa.int64() for c in FOCUS_COLUMNS if c.startswith("x_")
              and c not in ("x_Model", "x_BaseModel", "x_BillingMode", "x_KeyHint",
                            "x_Unpriced", "x_AdjustmentKind", "x_AdjustmentReasons")}
    types["x_Unpriced"] = pa.bool_()
    schema = pa.schema([(c, types.get(c, pa.string())) for c in FOCUS_COLUMNS])
    scale = Decimal("1e-15")
    data = {c: [(r[c].quantize(scale) if types.get(c) == money and r[c] is not None else r[c])
                for r in rows] for c in FOCUS_COLUMNS}
    pq.write_table(pa.table(data, schema=schema), path)


def write_focus(export: FocusExport, out: Path | None, stream: TextIO | None = None) -> None:
    """Write to ``out`` (``.parquet`` or CSV by suffix) or, without one, CSV to ``stream``."""
    if out is not None and out.suffix.lower() == ".parquet":
        write_parquet(export.rows, out)
    elif out is not None:
        with out.open("w", newline="", encoding="utf-8") as f:
            write_csv(export.rows, f)
    else:
        write_csv(export.rows, stream or sys.stdout)
