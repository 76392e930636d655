"""Pricing: the price sheet, exact per-token and per-request costs, and every money rule built on
them (break-even, switch savings, recommendations, budgets, spikes, forecast, finance report,
FOCUS export, quotes), plus the cost memo and the dashboard's rollups.

Public API (others import only these names, or a submodule named in docs/architecture.md):

- ``install()`` registers pricing's migrations and hooks with the ledger core; every entry
  point calls it before opening a ledger.
- ``read_sheet(path) -> PriceSheet`` parses and validates a sheet (``.errors``, ``.warnings``
  with line and column); ``require_valid(sheet)`` raises ``SheetInvalid``.
- ``load_prices(conn, path_or_sheet) -> LoadedSheet`` replaces the ledger's ``prices`` table
  in one transaction and records the sheet in ``price_sheets``; ``latest_sheet(conn)``.
- The ``priced_calls`` view (created by pricing's migrations): every ``calls`` column plus
  ``cost_as_token``, ``cost_as_request``, ``cost``, ``priced``, ``price_effective_from``,
  ``currency``.
- ``unpriced_models(conn)`` (loaded prices) and ``unpriced_by_sheet(conn, sheet)``.
- ``switch_savings(conn, since, until)`` and ``break_even_tokens(conn, base_model, by_key=…,
  since=…, until=…)``: pandas DataFrames with ``Decimal`` money.

Names are imported on first use (PEP 562), so a command that only loads calls never imports
pandas, and ``callmeter --help`` never imports DuckDB.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compare import BREAK_EVEN_COLUMNS, break_even_tokens, switch_savings
    from .errors import PricingError, SheetInvalid, SheetProblem
    from .loader import (
        LoadedSheet,
        UnpricedModel,
        latest_sheet,
        load_prices,
        unpriced_by_sheet,
        unpriced_models,
    )
    from .periods import utc_bound
    from .queries import PRICED_COLUMNS
    from .registration import install
    from .sheet import DEFAULT_SHEET, SHEET_COLUMNS, PriceRow, PriceSheet, read_sheet, require_valid

# public name -> the submodule that defines it
_LAZY = {
    "install": "registration",
    "BREAK_EVEN_COLUMNS": "compare", "break_even_tokens": "compare", "switch_savings": "compare",
    "PricingError": "errors", "SheetInvalid": "errors", "SheetProblem": "errors",
    "LoadedSheet": "loader", "UnpricedModel": "loader", "latest_sheet": "loader",
    "load_prices": "loader", "unpriced_by_sheet": "loader", "unpriced_models": "loader",
    "utc_bound": "periods", "PRICED_COLUMNS": "queries", "DEFAULT_SHEET": "sheet",
    "SHEET_COLUMNS": "sheet", "PriceRow": "sheet", "PriceSheet": "sheet", "read_sheet": "sheet",
    "require_valid": "sheet",
}

__all__ = [
    "BREAK_EVEN_COLUMNS",
    "DEFAULT_SHEET",
    "LoadedSheet",
    "PRICED_COLUMNS",
    "PriceRow",
    "PriceSheet",
    "PricingError",
    "SHEET_COLUMNS",
    "SheetInvalid",
    "SheetProblem",
    "UnpricedModel",
    "break_even_tokens",
    "install",
    "latest_sheet",
    "load_prices",
    "read_sheet",
    "require_valid",
    "switch_savings",
    "unpriced_by_sheet",
    "unpriced_models",
    "utc_bound",
]


def _submodule(name: str) -> ModuleType:
    """The submodule ``name``, imported by a plain import statement (visible to the linters)."""
    if name == "compare":
        from . import compare

        return compare
    if name == "errors":
        from . import errors

        return errors
    if name == "registration":
        from . import registration

        return registration
    if name == "loader":
        from . import loader

        return loader
    if name == "periods":
        from . import periods

        return periods
    if name == "queries":
        from . import queries

        return queries
    from . import sheet

    return sheet


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'pricing' has no attribute {name!r}")
    value = getattr(_submodule(_LAZY[name]), name)
    globals()[name] = value
    return value
