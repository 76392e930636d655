"""A price sheet's effect before it is loaded, the rows that rewrite history, and the sheet
loaded before the current one (undo).

The effect is computed by the ledger's own cost formula (:func:`pricing.queries.priced_select`
over ``calls``) with the candidate rows in ``prices`` inside a transaction that is rolled back:
nothing is changed, and other readers never see the candidate (DuckDB's MVCC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd

from .frames import decimal_frame, records
from .loader import LoadedSheet
from .queries import (
    DELETE_PRICES_SQL,
    INSERT_PRICE_SQL,
    PREVIOUS_SHEET_SQL,
    SHEET_ROWS_SQL,
    priced_select,
)
from .sheet import PRICE_COLUMNS, PriceRow, PriceSheet

__all__ = ["SheetImpact", "sheet_impact", "history_rewrites", "previous_sheet"]

COST_BY_MODEL_SQL = f"""
SELECT model, sum(requests) AS calls, sum(cost) AS cost,
  coalesce(sum(requests) FILTER (WHERE cost IS NULL), 0) AS unpriced_calls
FROM ({priced_select('calls')}) GROUP BY model
"""


@dataclass(frozen=True)
class SheetImpact:
    """Totals under the loaded prices and under the candidate sheet, and per model
    (``model``, ``calls``, ``cost_before``, ``cost_after``, ``delta``, unpriced calls both
    ways); money exact, None where nothing is priced."""

    before: Decimal | None
    after: Decimal | None
    by_model: pd.DataFrame

    @property
    def change(self) -> Decimal | None:
        if self.before is None and self.after is None:
            return None
        return (self.after or Decimal(0)) - (self.before or Decimal(0))


def _row_params(r: PriceRow) -> list[Any]:
    return [r.model, r.effective_from, r.above_input_tokens or None, r.input, r.cached_input,
            r.output, r.request, r.image, r.audio_minute, r.characters, r.currency, r.line,
            r.cache_write, r.cache_write_long]


def _total(series: pd.Series) -> Decimal | None:
    values = [v for v in series if v is not None and v == v]
    return sum(values, Decimal(0)) if values else None


def sheet_impact(conn: duckdb.DuckDBPyConnection, sheet: PriceSheet) -> SheetImpact:
    """What loading ``sheet`` would do to every call's cost, without loading it."""
    before = decimal_frame(conn, COST_BY_MODEL_SQL)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(DELETE_PRICES_SQL)
        conn.executemany(INSERT_PRICE_SQL, [_row_params(r) for r in sheet.rows])
        after = decimal_frame(conn, COST_BY_MODEL_SQL)
    finally:
        conn.execute("ROLLBACK")
    both = before.merge(after, on=["model", "calls"], how="outer",
                       suffixes=("_before", "_after"))
    both = both.rename(columns={"unpriced_calls_before": "unpriced_before",
                                "unpriced_calls_after": "unpriced_after"})
    both["delta"] = [None if a is None or b is None or a != a or b != b else a - b
                     for a, b in zip(both["cost_after"], both["cost_before"], strict=True)]
    both = both.sort_values("model", ignore_index=True)
    return SheetImpact(_total(both["cost_before"]), _total(both["cost_after"]), both)


def _key(r: dict[str, Any]) -> tuple[str, date, int]:
    day = r["effective_from"]
    day = day.date() if isinstance(day, datetime) else day   # pandas gives a Timestamp
    above = r.get("above_input_tokens")
    return (str(r["model"]), day, int(above) if above is not None and above == above else 0)


def _same(a: Any, b: Any) -> bool:
    none_a, none_b = a is None or a != a, b is None or b != b
    if none_a or none_b:
        return none_a and none_b
    return Decimal(str(a)) == Decimal(str(b))


def history_rewrites(loaded: pd.DataFrame, sheet: PriceSheet) -> list[dict[str, Any]]:
    """Rows of the loaded prices (``prices`` table) that ``sheet`` changes or removes: each
    reprices calls already made since its ``effective_from``. A price change from a date on
    is a new row with that date instead. Returns model, effective_from, above_input_tokens,
    change ("changed: input 2.5 → 3" or "removed")."""
    new = {(r.model, r.effective_from, r.above_input_tokens or 0): r for r in sheet.rows}
    out = []
    for old in records(loaded):
        key = _key(old)
        row = new.get(key)
        if row is None:
            change = "removed"
        else:
            diffs = [f"{c} {_text(old.get(c))} → {_text(getattr(row, c))}"
                     for c in PRICE_COLUMNS if not _same(old.get(c), getattr(row, c))]
            if not diffs:
                continue
            change = "changed: " + ", ".join(diffs)
        out.append({"model": key[0], "effective_from": key[1], "above_input_tokens": key[2],
                    "change": change})
    return out


def _text(v: Any) -> str:
    if v is None or v != v:
        return "blank"
    return format(Decimal(str(v)).normalize(), "f")


def previous_sheet(conn: duckdb.DuckDBPyConnection) -> tuple[LoadedSheet, PriceSheet] | None:
    """The sheet loaded before the current one (another content), with its rows, ready for
    :func:`pricing.load_prices`; None when there is none or its rows were not kept (loaded
    before m010)."""
    row = conn.execute(PREVIOUS_SHEET_SQL).fetchone()
    if row is None:
        return None
    info = LoadedSheet(*row)
    rows = [_price_row(r) for r in conn.execute(SHEET_ROWS_SQL, [info.sha256]).fetchall()]
    return info, PriceSheet(path=info.sheet, sha256=info.sha256, rows=rows)


def _price_row(r: tuple[Any, ...]) -> PriceRow:
    """A ``SHEET_ROWS_SQL`` row: line, model, day, the price columns in order, tier, currency."""
    line, model, day, *prices, above, currency = r
    return PriceRow(line, model, day, **{c: None if v is None else Decimal(v)
                                         for c, v in zip(PRICE_COLUMNS, prices, strict=True)},
                    above_input_tokens=int(above), currency=currency)
