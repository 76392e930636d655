"""Human tables: the one place that turns a query's DataFrame into what a person reads.

Every page shows its tables through :func:`show` (``layout.table`` and
``layout.chart_with_table`` call it), so a column reads the same everywhere:

- headers in words with their unit: ``cost`` → "Cost (USD)", ``e401`` → "401s",
  ``latency_ms`` → "Latency (ms)"; the currency is the display currency (sidebar);
- money converted at the display rate, with thousands separators and the same number of
  decimals down a column (2, or more when the column only holds fractions of a cent);
- counts with thousands separators; NULL shown as "—" (unpriced is never 0, never "None");
- the key's label first (label, else hint, else "(no key)"), fingerprints hidden unless
  ``show_ids=True`` (the CSV keeps them);
- the CSV (:func:`export_csv`) has the same headers, money as exact decimals (6 places, no
  exponent, no float), NULL as an empty cell, no sparkline lists.

The API is small on purpose (other pages and helpers depend on it): :func:`header`,
:func:`human_frame`, :func:`styled`, :func:`show`, :func:`export_csv`, :func:`money_places`.
A column this module does not know gets a header from its name ("unpriced_x" →
"Unpriced x") and is shown as it is; add it to :data:`COLUMNS` to give it words and a kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from .filters import Display

__all__ = ["COLUMNS", "Column", "header", "human_frame", "styled", "show", "export_csv",
           "money_places", "KEY_HEADER", "NO_KEY"]

NULL = "—"
NO_KEY = "(no key)"
KEY_HEADER = "Key"
CSV_PLACES = Decimal("0.000001")
STYLE_LIMIT = 200_000  # cells; above it the table is shown unstyled (Styler is per cell)


@dataclass(frozen=True)
class Column:
    """How one column reads: its header (``{cur}`` becomes the currency) and its kind —
    money, count, number, share, ms, text, time, id (hidden), list (sparkline, not exported)."""

    header: str
    kind: str = "text"


def _money(h: str) -> Column:
    return Column(h + " ({cur})", "money")


def _count(h: str) -> Column:
    return Column(h, "count")


COLUMNS: dict[str, Column] = {
    # who and what
    "key_id": Column("Key fingerprint", "id"), "key": Column("Key fingerprint", "id"),
    "key_hint": Column("Key hint"), "key_label": Column("Key label"),
    "name": Column("Name"), "model": Column("Model"), "base_model": Column("Base model"),
    "endpoint": Column("Endpoint"), "billing_mode": Column("Billing mode"),
    "current_mode": Column("Billing mode"), "cheaper_mode": Column("Cheaper mode"),
    "tag": Column("Tag"), "tag_value": Column("Tag value"), "usage_source": Column("Usage"),
    "status": Column("Status", "number"), "stream": Column("Streamed"),
    "explanation": Column("Why they differ"), "kind": Column("Kind"),
    "action": Column("Action"), "confidence": Column("Confidence"), "grp": Column("Group", "id"),
    # when
    "started_at": Column("Started (UTC)", "time"), "day": Column("Day", "time"),
    "bucket": Column("Period", "time"), "hour": Column("Hour", "time"),
    "first_seen": Column("First seen (UTC)", "time"),
    "last_seen": Column("Last seen (UTC)", "time"),
    # counts
    "calls": _count("Calls"), "failed_calls": _count("Failed calls"),
    "errors": _count("Errors"), "e401": _count("401s"), "e403": _count("403s"),
    "e429": _count("429s"), "e5xx": _count("5xx"), "unpriced_calls": _count("Unpriced calls"),
    "charged_calls": _count("Calls with a charge"), "streamed": _count("Streamed calls"),
    "token_calls": _count("Per-token calls"), "request_calls": _count("Per-request calls"),
    "calls_with_charge": _count("Calls with a charge"),
    "calls_without_charge": _count("Calls without a charge"),
    "input_tokens": _count("Input tokens"), "cached_tokens": _count("Cached tokens"),
    "cache_write_tokens": _count("Cache-write tokens"), "output_tokens": _count("Output tokens"),
    "reasoning_tokens": _count("Reasoning tokens"), "unpriced_tokens": _count("Unpriced tokens"),
    "unpriced_input_tokens": _count("Unpriced input tokens"),
    "unpriced_output_tokens": _count("Unpriced output tokens"),
    "tokens": _count("Tokens"), "images": _count("Images"), "characters": _count("Characters"),
    "tokens_from": _count("Tokens per call (from)"),
    "audio_seconds": Column("Audio (s)", "number"),
    "latency_ms": Column("Latency (ms)", "number"),
    "ttft_ms": Column("Time to first token (ms)", "number"),
    "stream_share": Column("Streamed", "share"),
    "daily": Column("Daily spend", "list"),
    # money
    "cost": _money("Cost"), "actual_cost": _money("Paid"), "cheaper_cost": _money("On cheaper"),
    "saving": _money("Saving"), "charged": _money("Platform charged"),
    "monthly_saving": _money("Saving a month"),
    "per_call": _money("Per call"), "option": Column("Option"),
    # a price sheet's what-if (Prices page)
    "cost_before": _money("Cost now"), "cost_after": _money("Cost with this sheet"),
    "delta": _money("Change"), "unpriced_before": _count("Unpriced calls now"),
    "unpriced_after": _count("Unpriced calls with this sheet"),
    "effective_from": Column("Effective from", "time"),
    "above_input_tokens": _count("Above input tokens"), "change": Column("Change to the row"),
    "cost_where_charged": _money("Ledger cost where charged"),
    "token_cost": _money("Paid per-token"), "request_cost": _money("Paid per-request"),
    "paid_per_token": _money("Paid per-token"),
    "paid_per_request": _money("Paid per-request"),
    "cost_per_token_billing": _money("Paid per-token (old name)"),
    "cost_per_request_billing": _money("Paid per-request (old name)"),
    "all_as_per_token": _money("All as per-token"),
    "all_as_per_request": _money("All as per-request"),
    "cost_all_token": _money("All as per-token"), "cost_all_request": _money("All as per-request"),
    "cost_as_billed": _money("Cost as billed"), "cost_as_token": _money("As per-token"),
    "cost_as_request": _money("As per-request"),
    "other_variant": _money("Other variant"), "baseline": _money("Usual a day"),
    "baseline_median": _money("Usual a day"), "spend": _money("Spend"),
    "ledger_cost": _money("Ledger cost"), "net_charged": _money("Platform net charge"),
    "difference": _money("Difference"), "adjustments": _money("Refunds, settlements, fees"),
    "missing_calls": _money("Not charged by platform"),
    "token_mismatch": _money("Token mismatch"), "price_mismatch": _money("Price mismatch"),
    "failed_call_policy": _money("Failed calls charged"), "rounding": _money("Rounding"),
    "monthly": _money("Budget"), "spent": _money("Spent"), "projected": _money("Projected"),
    "burn_per_day": _money("Burn a day"), "last_day_cost": _money("Last day"),
    "per_token_cost": _money("Per-token, a call"),
    "per_request_cost": _money("Per-request, a call"),
    # prices (per unit)
    "input": Column("Input ({cur} / 1M tokens)", "money"),
    "cached_input": Column("Cached input ({cur} / 1M tokens)", "money"),
    "output": Column("Output ({cur} / 1M tokens)", "money"),
    "request": Column("Request ({cur} / call)", "money"),
    "image": Column("Image ({cur} / image)", "money"),
    "audio_minute": Column("Audio ({cur} / minute)", "money"),
    "characters_price": Column("Characters ({cur} / 1M)", "money"),
}
_KEY_PARTS = ("key_label", "key_hint", "key_id", "key")
_FIRST = ("Started (UTC)", "Day", "Period")
_LEADING = ("Model", "Base model", "Endpoint", "Tag", "Tag value")


def column(name: str) -> Column:
    """The known column, else one with a header made from the name (shown as it is)."""
    return COLUMNS.get(name) or Column(name.replace("_", " ").strip().capitalize())


def header(name: str, currency: str) -> str:
    """The header a person reads for column ``name`` ("cost" → "Cost (USD)")."""
    return column(name).header.format(cur=currency)


def _decimal(value: Any) -> Decimal | None:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def money_places(values: pd.Series) -> int:
    """Decimals for a money column, the same down the column: 2, or 4 / 6 when every amount
    is below a cent / a hundredth of a cent (a per-call cost would otherwise read 0.00)."""
    amounts = [abs(d) for d in map(_decimal, values) if d is not None and d != 0]
    if not amounts or max(amounts) >= Decimal("0.01"):
        return 2
    return 4 if max(amounts) >= Decimal("0.0001") else 6


def _key_name(df: pd.DataFrame) -> pd.Series:
    """The key as a person names it: label, else hint, else fingerprint, else "(no key)"."""
    name = pd.Series([None] * len(df), index=df.index, dtype=object)
    for part in ("name", *_KEY_PARTS):
        if part in df.columns:
            name = name.where(name.notna(), df[part])
    return name.where(name.notna(), NO_KEY)


def human_frame(df: pd.DataFrame, display: Display, *, show_ids: bool = False,
                for_export: bool = False) -> pd.DataFrame:
    """``df`` for people: key label first, ids dropped (unless ``show_ids``), money at the
    display rate (exact Decimal for export, else float), headers in words. Values are not
    turned into text here (:func:`styled` does that), so columns still sort as numbers."""
    out = df.copy()
    has_key = any(c in out.columns for c in _KEY_PARTS)
    if has_key:
        out.insert(0, KEY_HEADER, _key_name(out))
        drop = [c for c in ("name", "key_label") if c in out.columns]
        if not (show_ids or for_export):
            drop += [c for c in ("key_id", "key") if c in out.columns]
        out = out.drop(columns=drop)
    unknown = _unknown_cost(out)
    for name in list(out.columns):
        kind = column(str(name)).kind
        if kind == "count":  # a count the SQL left NULL (FILTER matched nothing) is 0
            out[name] = out[name].map(lambda v: 0 if v is None or v != v else int(v))
        if name == "cost" and unknown is not None:
            out[name] = out[name].where(~unknown, None)
        if kind == "id" and not (show_ids or for_export) and name != KEY_HEADER:
            out = out.drop(columns=[name])
        elif kind == "list" and for_export:
            out = out.drop(columns=[name])
        elif kind == "money":
            out[name] = [_converted(v, display, for_export) for v in out[name]]
    out.columns = [c if c == KEY_HEADER else header(str(c), display.currency)
                   for c in out.columns]
    lead = [c for c in (*_FIRST, KEY_HEADER, *_LEADING) if c in out.columns]
    return out[lead + [c for c in out.columns if c not in lead]]


def _unknown_cost(df: pd.DataFrame) -> pd.Series | None:
    """Rows whose cost is 0 only because their priced calls are failed ones (priced 0) while
    the rest have no price: unpriced, shown "—", never 0."""
    if "cost" not in df.columns or "unpriced_calls" not in df.columns:
        return None
    zero = df["cost"].map(lambda v: _decimal(v) == 0)
    some_unpriced = df["unpriced_calls"].map(lambda v: bool(v == v and v))
    return zero & some_unpriced


def _converted(value: Any, display: Display, exact: bool) -> Any:
    amount = _decimal(value)
    if amount is None:
        return None
    amount *= display.rate
    if exact:
        return amount.quantize(CSV_PLACES, rounding=ROUND_HALF_UP)
    return float(amount)


def _kinds(df: pd.DataFrame, currency: str) -> dict[str, str]:
    """Header → kind, for the columns of a :func:`human_frame`."""
    by_header = {header(n, currency): c.kind for n, c in COLUMNS.items()}
    return {str(c): by_header.get(str(c), "text") for c in df.columns}


def _money_format(places: int) -> Any:
    return lambda v: NULL if v is None or v != v else f"{v:,.{places}f}"


def _count_format(v: Any) -> str:
    if v is None or v != v:
        return NULL
    return f"{v:,.0f}" if isinstance(v, (int, float, Decimal)) else str(v)


def _time_format(v: Any) -> str:
    if v is None or v is pd.NaT or (isinstance(v, float) and v != v):
        return NULL
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S") if (v.hour, v.minute, v.second) != (0, 0, 0) \
            else v.strftime("%Y-%m-%d")
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def styled(frame: pd.DataFrame, currency: str) -> Styler | pd.DataFrame:
    """The display text of a :func:`human_frame` (the numbers underneath still sort):
    money with separators and the column's decimals, counts with separators, "—" for NULL."""
    if frame.size > STYLE_LIMIT:  # unstyled, but text columns still say "—", never "None"
        kinds = _kinds(frame, currency)
        text = [c for c in frame.columns if kinds.get(c) == "text"]
        return frame.assign(**{c: frame[c].astype(object).where(frame[c].notna(), NULL)
                               for c in text})
    formats: dict[str, Any] = {}
    for col, kind in _kinds(frame, currency).items():
        if kind == "money":
            formats[col] = _money_format(money_places(frame[col]))
        elif kind == "count":
            formats[col] = _count_format
        elif kind == "time":
            formats[col] = _time_format
    return frame.style.format(formats, na_rep=NULL)


def show(df: pd.DataFrame, name: str, display: Display,
         column_config: dict[str, Any] | None = None, *, show_ids: bool = False,
         **kw: Any) -> object:
    """``df`` as a human table with a CSV download under it. ``column_config`` may be keyed
    by the query's column names (``"daily"``); it is moved to the headers shown."""
    frame = human_frame(df, display, show_ids=show_ids)
    config = {header(k, display.currency) if k != KEY_HEADER else k: v
              for k, v in (column_config or {}).items()}
    for col, kind in _kinds(frame, display.currency).items():
        if kind == "money" or kind == "count":
            config.setdefault(col, st.column_config.Column(alignment="right"))
    event = st.dataframe(styled(frame, display.currency), hide_index=True, width="stretch",
                         column_config=config, key=f"table_{name}", **kw)
    st.download_button("Download CSV", export_csv(df, display), file_name=f"{name}.csv",
                       mime="text/csv", key=f"csv_{name}")
    return event


def export_csv(df: pd.DataFrame, display: Display) -> bytes:
    """CSV with the table's headers, key label first and fingerprint kept, money exact at the
    display rate (6 places, never a float or an exponent), NULL as an empty cell."""
    frame = human_frame(df, display, for_export=True)
    kinds = _kinds(frame, display.currency)
    for col in frame.columns:
        if kinds[str(col)] == "money":
            frame[col] = [None if v is None else f"{v:f}" for v in frame[col]]
        else:  # any other exact number: its digits, never an exponent
            frame[col] = [f"{v.normalize():f}" if isinstance(v, Decimal) else v
                          for v in frame[col]]
    return frame.to_csv(index=False).encode()
