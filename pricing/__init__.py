"""Pricing: the price sheet, exact per-token and per-request costs, break-even and savings.

Public API (others import only these names):

- ``read_sheet(path) -> PriceSheet`` parses and validates a sheet (``.errors``, ``.warnings``
  with line and column); ``require_valid(sheet)`` raises ``SheetInvalid``.
- ``load_prices(conn, path_or_sheet) -> LoadedSheet`` replaces the ledger's ``prices`` table
  in one transaction and records the sheet in ``price_sheets``; ``latest_sheet(conn)``.
- The ``priced_calls`` view (created by the ledger's migrations): every ``calls`` column plus
  ``cost_as_token``, ``cost_as_request``, ``cost``, ``priced``, ``price_effective_from``,
  ``currency``.
- ``unpriced_models(conn)`` (loaded prices) and ``unpriced_by_sheet(conn, sheet)``.
- ``switch_savings(conn, since, until)`` and ``break_even_tokens(conn, base_model, by_key=…,
  since=…, until=…)``: pandas DataFrames with ``Decimal`` money.
"""

from .compare import BREAK_EVEN_COLUMNS, break_even_tokens, switch_savings, utc_bound
from .errors import PricingError, SheetInvalid, SheetProblem
from .loader import (
    LoadedSheet,
    UnpricedModel,
    latest_sheet,
    load_prices,
    unpriced_by_sheet,
    unpriced_models,
)
from .queries import PRICED_COLUMNS
from .sheet import SHEET_COLUMNS, PriceRow, PriceSheet, read_sheet, require_valid

DEFAULT_SHEET = "data/prices.csv"

__all__ = [
    "BREAK_EVEN_COLUMNS",
    "DEFAULT_SHEET",
    "PRICED_COLUMNS",
    "SHEET_COLUMNS",
    "LoadedSheet",
    "PriceRow",
    "PriceSheet",
    "PricingError",
    "SheetInvalid",
    "SheetProblem",
    "UnpricedModel",
    "break_even_tokens",
    "latest_sheet",
    "load_prices",
    "read_sheet",
    "require_valid",
    "switch_savings",
    "unpriced_by_sheet",
    "unpriced_models",
    "utc_bound",
]
