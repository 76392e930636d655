"""Reading and validating a price sheet (plain CSV) into exact ``Decimal`` rows.

Every problem is reported with its CSV line and column, all at once, so a sheet is fixed in
one pass. A sheet with errors is never loaded; warnings are shown and loading goes on.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from .errors import SheetInvalid, SheetProblem
from .queries import MAX_TIERS

PRICE_COLUMNS = ("input", "cached_input", "output", "request", "image", "audio_minute",
                 "characters", "cache_write", "cache_write_long")
# Prices a per-token (no -c) row may carry; a -c row carries only `request`.
USAGE_PRICE_COLUMNS = tuple(c for c in PRICE_COLUMNS if c != "request")
SHEET_COLUMNS = ("model", "effective_from", *PRICE_COLUMNS, "above_input_tokens", "currency")
REQUIRED_COLUMNS = ("model", "effective_from")
DEFAULT_CURRENCY = "USD"
DEFAULT_SHEET = "data/prices.csv"  # the shipped sheet (ledger.data_file finds it anywhere)
MAX_SCALE = 9            # prices are stored as DECIMAL(18,9)
MAX_PRICE = Decimal(10) ** 9

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


def _places(value: Decimal) -> int:
    """Decimal places of a finite ``value``."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


@dataclass(frozen=True)
class PriceRow:
    """One sheet row: prices per 1M tokens / per call / per image / per minute / per 1M chars."""

    line: int
    model: str
    effective_from: date
    input: Decimal | None = None
    cached_input: Decimal | None = None
    output: Decimal | None = None
    request: Decimal | None = None
    image: Decimal | None = None
    audio_minute: Decimal | None = None
    characters: Decimal | None = None
    cache_write: Decimal | None = None        # prompt-cache writes; blank → input
    cache_write_long: Decimal | None = None   # writes of the longer retention; blank → cache_write
    above_input_tokens: int = 0
    currency: str = DEFAULT_CURRENCY

    @property
    def per_request(self) -> bool:
        return self.model.endswith("-c")


@dataclass
class PriceSheet:
    """A parsed sheet with everything found wrong in it (``errors`` empty means loadable)."""

    path: str
    sha256: str
    rows: list[PriceRow] = field(default_factory=list)
    problems: list[SheetProblem] = field(default_factory=list)

    @property
    def errors(self) -> list[SheetProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[SheetProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def models(self) -> list[str]:
        return sorted({r.model for r in self.rows})

    @property
    def currency(self) -> str:
        return self.rows[0].currency if self.rows else DEFAULT_CURRENCY


class _Collector:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[SheetProblem] = []

    def error(self, line: int, column: str | None, message: str) -> None:
        self.problems.append(SheetProblem(self.file, line, column, message))

    def warn(self, line: int, column: str | None, message: str) -> None:
        self.problems.append(SheetProblem(self.file, line, column, message, "warning"))


def parse_price(raw: str, line: int, column: str, out: _Collector) -> Decimal | None:
    """``Decimal`` straight from the text (never through float); blank is ``None``."""
    text = raw.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        out.error(line, column, f"{text!r} is not a number")
        return None
    if not value.is_finite():
        out.error(line, column, f"{text!r} is not a finite number")
    elif value < 0:
        out.error(line, column, f"negative price {text}")
    elif value >= MAX_PRICE:
        out.error(line, column, f"price {text} is too large (limit {MAX_PRICE:,})")
    elif _places(value) > MAX_SCALE:
        out.error(line, column, f"{text} has more than {MAX_SCALE} decimal places")
    else:
        return value
    return None


def _parse_header(header: list[str], out: _Collector) -> list[str]:
    names = [h.strip() for h in header]
    for i, name in enumerate(names, start=1):
        if not name:
            out.error(1, f"#{i}", "empty column name")
        elif name not in SHEET_COLUMNS:
            out.error(1, name, f"unknown column {name!r}; known columns: "
                      + ", ".join(SHEET_COLUMNS))
        elif names.index(name) != i - 1:
            out.error(1, name, f"column {name!r} appears twice")
    for name in REQUIRED_COLUMNS:
        if name not in names:
            out.error(1, name, f"missing required column {name!r}")
    return names


def _parse_row(cells: dict[str, str], line: int, out: _Collector) -> PriceRow | None:
    before = len(out.problems)
    model = cells.get("model", "").strip()
    if not model:
        out.error(line, "model", "model is blank")
    raw_date = cells.get("effective_from", "").strip()
    day = None
    if not _DATE_RE.match(raw_date):
        out.error(line, "effective_from", f"{raw_date!r} is not a date (YYYY-MM-DD, UTC)")
    else:
        try:
            day = date.fromisoformat(raw_date)
        except ValueError:
            out.error(line, "effective_from", f"{raw_date!r} is not a valid date")
    prices = {c: parse_price(cells.get(c, ""), line, c, out) for c in PRICE_COLUMNS}
    above = 0
    raw_above = cells.get("above_input_tokens", "").strip()
    if raw_above:
        if raw_above.isdigit():
            above = int(raw_above)
        else:
            out.error(line, "above_input_tokens",
                      f"{raw_above!r} is not a whole number of tokens")
    currency = cells.get("currency", "").strip() or DEFAULT_CURRENCY
    if not _CURRENCY_RE.match(currency):
        out.error(line, "currency", f"{currency!r} is not a 3-letter currency code (e.g. USD)")
    if len(out.problems) > before and any(p.severity == "error"
                                          for p in out.problems[before:]):
        return None
    assert day is not None
    return PriceRow(line=line, model=model, effective_from=day, above_input_tokens=above,
                    currency=currency, **prices)


def _check_billing_rules(row: PriceRow, out: _Collector) -> None:
    given = [c for c in USAGE_PRICE_COLUMNS if getattr(row, c) is not None]
    if row.per_request:
        if row.request is None:
            out.error(row.line, "request", f"{row.model} is a -c (per-request) model: it needs "
                      "a request price")
        if given:
            out.error(row.line, given[0], f"{row.model} is billed per request: "
                      f"{', '.join(given)} belong on the row for {row.model[:-2]}")
        if row.above_input_tokens:
            out.error(row.line, "above_input_tokens", "tiers apply to per-token rows only")
        return
    if row.request is not None:
        out.error(row.line, "request", f"{row.model} is billed per token: a request price "
                  f"belongs on a {row.model}-c row")
    elif not given:
        out.error(row.line, None, f"{row.model} has no price: give at least one of "
                  + ", ".join(c for c in USAGE_PRICE_COLUMNS if not c.startswith("cache_write")))
    for column in ("cached_input", "cache_write", "cache_write_long"):
        if getattr(row, column) is not None and row.input is None:
            out.error(row.line, column, f"{column} without an input price")
    if row.cached_input is not None and row.input is not None and row.cached_input > row.input:
        out.warn(row.line, "cached_input", f"cached input ({row.cached_input}) costs more "
                 f"than input ({row.input})")
    if row.cache_write is not None and row.input is not None and row.cache_write < row.input:
        out.warn(row.line, "cache_write", f"a cache write ({row.cache_write}) costs less than "
                 f"input ({row.input}); providers charge writes at or above the input price")


def _check_across_rows(rows: list[PriceRow], out: _Collector) -> None:
    seen: dict[tuple[str, date, int], int] = {}
    for row in rows:
        key = (row.model, row.effective_from, row.above_input_tokens)
        if key in seen:
            tier = f" above {row.above_input_tokens} input tokens" if row.above_input_tokens else ""
            out.error(row.line, "effective_from", f"duplicate {row.model} from "
                      f"{row.effective_from}{tier} (first on line {seen[key]})")
        else:
            seen[key] = row.line
    tiers: dict[tuple[str, date], int] = defaultdict(int)
    for row in rows:
        if row.above_input_tokens:
            tiers[(row.model, row.effective_from)] += 1
            if tiers[(row.model, row.effective_from)] == MAX_TIERS:
                out.error(row.line, "above_input_tokens", f"more than {MAX_TIERS - 1} tiers for "
                          f"{row.model} from {row.effective_from}")
        if row.above_input_tokens and (row.model, row.effective_from, 0) not in seen:
            out.error(row.line, "above_input_tokens", f"tier row without a base row for "
                      f"{row.model} from {row.effective_from} (above_input_tokens blank)")
    if rows:
        first = rows[0]
        for row in rows:
            if row.currency != first.currency:
                out.error(row.line, "currency", f"{row.currency} differs from {first.currency} "
                          f"(line {first.line}); one sheet holds one currency")
                break


def read_sheet(path: str | Path) -> PriceSheet:
    """Parse and validate a sheet; problems are collected, not raised (see ``require_valid``)."""
    p = Path(path)
    file = str(path)
    data = p.read_bytes()
    sheet = PriceSheet(path=file, sha256=hashlib.sha256(data).hexdigest())
    out = _Collector(file)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        out.error(1, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        sheet.problems = out.problems
        return sheet
    reader = csv.reader(text.splitlines(keepends=True))
    header = next(reader, None)
    if not header:
        out.error(1, None, "empty file: expected a header line starting with model,effective_from")
        sheet.problems = out.problems
        return sheet
    names = _parse_header(header, out)
    if not out.problems:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(names):
                out.error(line, None, f"{len(cells)} fields, the header has {len(names)}")
                continue
            raw = dict(zip(names, cells, strict=True))
            row = _parse_row(raw, line, out)
            if row is not None:
                _check_billing_rules(row, out)
                sheet.rows.append(row)
        _check_across_rows(sheet.rows, out)
        if not sheet.rows and not out.problems:
            out.error(1, None, "the sheet has no price rows")
    sheet.problems = sorted(out.problems, key=lambda q: (q.line, q.severity != "error"))
    return sheet


def require_valid(sheet: PriceSheet) -> PriceSheet:
    """Return the sheet, or raise :class:`SheetInvalid` listing every error."""
    if sheet.errors:
        raise SheetInvalid(sheet.path, sheet.problems)
    return sheet
