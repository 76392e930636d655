"""Making a validated sheet the ledger's ``prices`` table, and finding what stays unpriced."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ledger import variant_name

from .frames import decimal_frame
from .memo import refresh_cost_memo
from .queries import (
    CALL_DAYS_SQL,
    DELETE_PRICES_SQL,
    INSERT_PRICE_SHEET_SQL,
    INSERT_PRICE_SQL,
    KEEP_SHEET_ROWS_SQL,
    LATEST_PRICE_SHEET_SQL,
    SNAPSHOT_SUFFIX_RE,
    UNPRICED_MODELS_SQL,
)
from .sheet import PriceSheet, read_sheet, require_valid


@dataclass(frozen=True)
class LoadedSheet:
    """What ``price_sheets`` records about a load."""

    sheet: str
    sha256: str
    loaded_at: datetime
    rows: int
    models: int
    currency: str


@dataclass(frozen=True)
class UnpricedModel:
    """A model seen in the ledger that a sheet leaves without a price (on some call days)."""

    model: str
    price_row: str      # the sheet model name that would price it (base or base-c)
    calls: int          # calls (sum of ``requests``) left unpriced
    first_day: date
    last_day: date


def load_prices(conn: duckdb.DuckDBPyConnection, source: str | Path | PriceSheet,
                *, now: datetime | None = None) -> LoadedSheet:
    """Replace the ``prices`` table with a valid sheet, in one transaction; record the sheet.

    Raises :class:`~pricing.errors.SheetInvalid` (nothing changes) when the sheet has errors.
    """
    sheet = source if isinstance(source, PriceSheet) else read_sheet(source)
    require_valid(sheet)
    loaded = LoadedSheet(sheet=str(Path(sheet.path).resolve()), sha256=sheet.sha256,
                         loaded_at=now or datetime.now(UTC), rows=len(sheet.rows),
                         models=len(sheet.models), currency=sheet.currency)
    # base rows store above_input_tokens NULL (blank in the sheet); tier rows the threshold
    params = [[r.model, r.effective_from, r.above_input_tokens or None, r.input, r.cached_input,
               r.output, r.request, r.image, r.audio_minute, r.characters, r.currency, r.line,
               r.cache_write, r.cache_write_long]
              for r in sheet.rows]
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(DELETE_PRICES_SQL)
        conn.executemany(INSERT_PRICE_SQL, params)
        conn.execute(INSERT_PRICE_SHEET_SQL, [loaded.sheet, loaded.sha256, loaded.loaded_at,
                                              loaded.rows, loaded.models, loaded.currency])
        conn.execute(KEEP_SHEET_ROWS_SQL, [loaded.sha256, loaded.sha256])  # for an undo
        refresh_cost_memo(conn)  # history repriced under the new sheet
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return loaded


def latest_sheet(conn: duckdb.DuckDBPyConnection) -> LoadedSheet | None:
    """The sheet loaded last, or ``None`` when no sheet was ever loaded."""
    row = conn.execute(LATEST_PRICE_SHEET_SQL).fetchone()  # (none before a first load)
    return LoadedSheet(*row) if row else None


def unpriced_models(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Models whose calls the loaded prices leave unpriced: model, billing_mode, calls, rows,
    first_call, last_call, reason; most calls first."""


    return decimal_frame(conn, UNPRICED_MODELS_SQL)


def unpriced_by_sheet(conn: duckdb.DuckDBPyConnection, sheet: PriceSheet
                      ) -> list[UnpricedModel]:
    """What ``sheet`` would leave unpriced in this ledger, without loading it (``prices check``).

    A call needs a row for its base model (per-token calls) or base model + ``-c`` (per-request
    calls) with ``effective_from`` on or before the call's UTC day.
    """
    earliest: dict[str, date] = {}
    for row in sheet.rows:
        if row.model not in earliest or row.effective_from < earliest[row.model]:
            earliest[row.model] = row.effective_from
    sheet_bases = {m.removesuffix("-c") for m in earliest}
    found: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, None, None])
    for model, base, mode, day, calls in conn.execute(CALL_DAYS_SQL).fetchall():
        key = variant_name(base or model, mode)
        # a dated snapshot without a row of its own is priced from its base model's (queries)
        priced_as = base or model
        if priced_as not in sheet_bases:
            priced_as = re.sub(SNAPSHOT_SUFFIX_RE, "", priced_as)
        first = earliest.get(variant_name(priced_as, mode))
        if first is not None and day is not None and day >= first:
            continue
        acc = found[(model, key)]
        acc[0] += int(calls or 0)
        acc[1] = day if acc[1] is None or (day and day < acc[1]) else acc[1]
        acc[2] = day if acc[2] is None or (day and day > acc[2]) else acc[2]
    out = [UnpricedModel(model, key, calls, first, last)
           for (model, key), (calls, first, last) in found.items()]
    return sorted(out, key=lambda u: (-u.calls, u.model))
