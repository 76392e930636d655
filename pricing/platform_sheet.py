"""``callmeter prices pull``: the platform's own pricing page (``GET /api/pricing``) as sheet rows.

new-api prices by ratios: ``model_ratio`` 1 = 1M quota per 1M input tokens, i.e. US$
1,000,000 ÷ ``quota_per_unit`` (US$2 at the default 500,000; the site's value is read from
``GET /api/status``); output = input × ``completion_ratio``, cached input = input × ``cache_ratio``
when the platform sets one; a model billed per call (``quota_type`` 1) costs ``model_price``
dollars. Every charge is then multiplied by the ratio of the account's group, so the sheet is
written for that group. Per-call prices go on ``-c`` rows (the sheet's rule); a model billed per
call whose name has no ``-c`` gets its price on ``<name>-c``, which is where ``priced_calls``
looks for a request price.

The group ratio comes from :mod:`pricing.platform_group`.

The pull compares with the prices in force today in the ledger and, with ``apply``, appends
rows dated today to the sheet CSV (replacing only rows already dated today), so the prices in
force before stay in the history.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from ingest.platform import PlatformClient, quota_unit
from ledger import LedgerLocked, open_ledger

from .errors import PricingError
from .platform_group import GroupRatio, account_group, derive_group_ratio, recent_log_rows
from .sheet import SHEET_COLUMNS, read_sheet, require_valid

__all__ = ["PlatformPrice", "PriceChange", "PullResult", "apply_changes", "current_prices",
           "current_prices_from_sheet", "diff_prices", "load_into_ledger", "platform_prices",
           "pull_prices"]

PRICING_PATH = "/api/pricing"
TOKENS_PER_PRICE = Decimal(1_000_000)  # sheet prices are per 1M tokens
SCALE = Decimal("1e-9")               # the sheet keeps 9 decimal places
COMPARED = ("input", "cached_input", "output", "request", "cache_write", "cache_write_long")
# relay/helper/price.go: GetCreateCacheRatio answers 1.25 for a model without its own
# create_cache_ratio (and /api/pricing then omits the field); the 1-hour write costs 6/3.75 of it.
DEFAULT_CREATE_CACHE_RATIO = Decimal("1.25")
LONG_CACHE_WRITE_MULTIPLIER = Decimal(6) / Decimal("3.75")
CARRIED = ("image", "audio_minute", "characters")   # kept from the row in force today


@dataclass(frozen=True)
class PlatformPrice:
    model: str
    input: Decimal | None = None
    cached_input: Decimal | None = None
    output: Decimal | None = None
    request: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_long: Decimal | None = None
    basis: str = ""

    def prices(self) -> dict[str, Decimal | None]:
        return {c: getattr(self, c) for c in COMPARED}


@dataclass(frozen=True)
class PriceChange:
    model: str
    kind: str                      # new | changed | same | not-on-platform
    old: dict[str, Decimal | None]
    new: dict[str, Decimal | None]
    basis: str = ""


@dataclass
class PullResult:
    platform: str
    group: str
    group_ratio: Decimal | None
    changes: list[PriceChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: int = 0
    sheet: str | None = None
    loaded: bool = False
    ratio_basis: str = ""
    quota_per_unit: Decimal | None = None
    refusal: str | None = None        # why --apply must not write these prices

    def of_kind(self, *kinds: str) -> list[PriceChange]:
        return [c for c in self.changes if c.kind in kinds]


def _exact(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _money(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent  # (an int for a finite value)
    return value.quantize(SCALE) if isinstance(exponent, int) and exponent < -9 else value


def platform_prices(body: dict[str, Any], group: str, ratio: Decimal,
                    quota_per_unit: Decimal) -> tuple[list[PlatformPrice], list[str]]:
    """Sheet rows (USD, for ``group`` at ``ratio``) from a ``/api/pricing`` answer, and what was
    left out."""
    usd_per_ratio = TOKENS_PER_PRICE / quota_per_unit
    warnings: list[str] = []
    out: list[PlatformPrice] = []
    for entry in body.get("data") or []:
        name = str(entry.get("model_name") or "").strip()
        groups = entry.get("enable_groups") or []
        if not name:
            continue
        if groups and group not in groups and "all" not in groups:
            continue                      # this account's group cannot call it
        if entry.get("billing_mode") == "tiered_expr":
            warnings.append(f"{name}: priced by an expression on the platform; not pulled")
            continue
        basis = f"group {group} × {ratio}"
        if int(entry.get("quota_type") or 0) == 1:
            price = _money(_exact(entry.get("model_price") or 0) * ratio)
            row = name if name.endswith("-c") else name + "-c"
            out.append(PlatformPrice(row, request=price,
                                     basis=f"model_price {entry.get('model_price')} × {basis}"))
            continue
        if name.endswith("-c"):
            warnings.append(f"{name}: billed per token on the platform, but a -c row holds "
                            "only a per-call price; not pulled")
            continue
        out.append(_ratio_price(name, entry, usd_per_ratio, ratio, basis))
    return sorted(out, key=lambda p: p.model), warnings


def _ratio_price(name: str, entry: dict[str, Any], usd_per_ratio: Decimal, ratio: Decimal,
                 basis: str) -> PlatformPrice:
    """A per-token model's row as new-api charges it (relay/helper/price.go ModelPriceHelper):
    output at ``completion_ratio``, cache reads at ``cache_ratio``, cache writes at
    ``create_cache_ratio`` (1.25 when unset), 1-hour writes at 6/3.75 of that."""
    mr = _exact(entry.get("model_ratio") or 0)
    base = usd_per_ratio * mr * ratio
    cache = entry.get("cache_ratio")
    create = entry.get("create_cache_ratio")
    write = base * (DEFAULT_CREATE_CACHE_RATIO if create is None else _exact(create))
    return PlatformPrice(
        name, input=_money(base),
        output=_money(base * _exact(entry.get("completion_ratio") or 1)),
        cached_input=None if cache is None else _money(base * _exact(cache)),
        cache_write=_money(write), cache_write_long=_money(write * LONG_CACHE_WRITE_MULTIPLIER),
        basis=f"model_ratio {mr} × US${usd_per_ratio}, completion_ratio "
              f"{entry.get('completion_ratio')}"
              + ("" if cache is None else f", cache_ratio {cache}")
              + f", create_cache_ratio {'1.25 (default)' if create is None else create}"
              + f", {basis}")


def current_prices(conn: duckdb.DuckDBPyConnection, today: date) -> dict[str, dict[str, Any]]:
    """The row in force on ``today`` per model (base rows only), from the ledger's prices."""
    cols = {r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'prices'"
    ).fetchall()}
    if not cols:
        return {}
    base = "AND coalesce(above_input_tokens, 0) = 0" if "above_input_tokens" in cols else ""
    wanted = [c for c in (*COMPARED, *CARRIED, "currency") if c in cols]
    rows = conn.execute(
        f"SELECT model, {', '.join(wanted)} FROM prices WHERE effective_from <= ? {base} "
        "QUALIFY row_number() OVER (PARTITION BY model ORDER BY effective_from DESC) = 1",
        [today]).fetchall()
    return {r[0]: dict(zip(wanted, r[1:], strict=True)) for r in rows}


def _effective(prices: dict[str, Any]) -> dict[str, Decimal | None]:
    out = {c: prices.get(c) for c in COMPARED}
    if out["cached_input"] is None:
        out["cached_input"] = out["input"]        # blank cached price = input price
    if out["cache_write"] is None:
        out["cache_write"] = out["input"]         # blank cache write = input price
    if out["cache_write_long"] is None:
        out["cache_write_long"] = out["cache_write"]
    return out


def diff_prices(current: dict[str, dict[str, Any]], pulled: list[PlatformPrice]
                ) -> list[PriceChange]:
    changes = []
    for p in pulled:
        old = current.get(p.model)
        if old is None:
            kind = "new"
        elif _effective(old) == _effective(p.prices()):
            kind = "same"
        else:
            kind = "changed"
        changes.append(PriceChange(p.model, kind, {c: (old or {}).get(c) for c in COMPARED},
                                   p.prices(), p.basis))
    names = {p.model for p in pulled}
    for model, old in sorted(current.items()):
        if model not in names:
            changes.append(PriceChange(model, "not-on-platform",
                                       {c: old.get(c) for c in COMPARED}, {}))
    return changes


def current_prices_from_sheet(sheet: Path, today: date) -> dict[str, dict[str, Any]]:
    """Like :func:`current_prices`, from the sheet file (when another process holds the ledger)."""
    if not sheet.exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    in_force: dict[str, date] = {}
    for row in read_sheet(sheet).rows:
        if row.above_input_tokens or row.effective_from > today:
            continue
        if row.model not in in_force or row.effective_from > in_force[row.model]:
            in_force[row.model] = row.effective_from
            out[row.model] = {c: getattr(row, c) for c in (*COMPARED, *CARRIED, "currency")}
    return out


def _text(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f")


def _rewrite_csv(header: list[str], keep: list[dict[str, Any]], add: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(keep + add)
    return buf.getvalue()


def _read_csv(path: Path, default_header: tuple[str, ...]
              ) -> tuple[list[str], list[dict[str, Any]]]:
    if not path.exists():
        return list(default_header), []
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    return list(reader.fieldnames or default_header), list(reader)


def apply_changes(sheet: Path, changes: list[PriceChange], current: dict[str, dict[str, Any]],
                  today: date, source: str) -> int:
    """Append today's rows for new and changed models to ``sheet`` (validated before it is
    replaced); a row already dated today for the same model is replaced, not doubled."""
    todo = [c for c in changes if c.kind in ("new", "changed")]
    if not todo:
        return 0
    header, rows = _read_csv(sheet, SHEET_COLUMNS)
    header += [c for c in COMPARED if c not in header          # an older sheet's missing
               and any(ch.new.get(c) is not None for ch in todo)]  # price columns
    day = today.isoformat()
    models = {c.model for c in todo}
    keep = [r for r in rows if not (r.get("model") in models and r.get("effective_from") == day
                                    and not (r.get("above_input_tokens") or "").strip())]
    add = []
    for c in todo:
        old = current.get(c.model, {})
        currency = old.get("currency") or "USD"
        if currency != "USD":
            raise PricingError(f"{c.model}: the sheet prices it in {currency}; the platform's "
                               "prices are US dollars, so they cannot be added to this sheet")
        row = {"model": c.model, "effective_from": day, "currency": "USD"}
        row.update({k: _text(v) for k, v in c.new.items()})
        row.update({k: _text(old.get(k)) for k in CARRIED})
        add.append(row)
    tmp = sheet.with_name(sheet.name + ".pull.tmp")
    tmp.write_text(_rewrite_csv(header, keep, add), encoding="utf-8")
    try:
        require_valid(read_sheet(tmp))
    except PricingError:
        tmp.unlink()
        raise
    os.replace(tmp, sheet)
    _record_sources(sheet, todo, day, source)
    return len(add)


def _record_sources(sheet: Path, todo: list[PriceChange], day: str, source: str) -> None:
    """Note where each new row came from in ``<sheet>.sources.csv`` when the sheet has one."""
    path = sheet.with_name(sheet.stem + ".sources.csv")
    if not path.exists():
        return
    header, rows = _read_csv(path, ())
    models = {c.model for c in todo}
    keep = [r for r in rows if not (r.get("model") in models and r.get("effective_from") == day)]
    add = [{"model": c.model, "effective_from": day, "above_input_tokens": "", "source": source,
            "url": "", "checked_on": day, "note": c.basis} for c in todo]
    path.write_text(_rewrite_csv(header, keep, add), encoding="utf-8")


def pull_prices(client: PlatformClient, *, group: str | None = None,
                group_ratio: Decimal | None = None, quota_per_unit: Decimal | None = None,
                current: dict[str, dict[str, Any]] | None = None,
                today: date | None = None) -> PullResult:
    """Fetch the pricing page and compare it with ``current`` (see :func:`current_prices`).

    ``group_ratio`` / ``quota_per_unit``: values the user gave, which win over what is derived.
    The result's ``refusal`` says why its prices must not be written, when they could not be
    derived (the group, its ratio or the quota unit unknown).
    """
    today = today or datetime.now(UTC).date()
    body = client.get_json(PRICING_PATH)
    unit = quota_unit(client, quota_per_unit)
    grp, why = account_group(client, group)
    warnings = list(unit.notes)
    refusal = None if unit.known else unit.notes[-1]
    if grp is None:
        refusal = f"{why}; pass --group (and --group-ratio if the pricing page lacks it)"
        grp = "default"
    if group_ratio is not None:
        derived = GroupRatio(group_ratio, "given with --group-ratio")
    else:
        rows, read_warnings = recent_log_rows(client)
        warnings += read_warnings
        derived = derive_group_ratio(body, grp, rows)
    warnings += derived.warnings
    ratio = derived.ratio
    if ratio is None:
        refusal = refusal or (f"{derived.warnings[-1]}; pass --group-ratio R (the ratio your "
                              "console shows for the group) or make one call in it first")
        ratio = Decimal(1)                 # shown for comparison only; never written
    pulled, more = platform_prices(body, grp, ratio, unit.value)
    result = PullResult(client.base_url, grp, derived.ratio, warnings=warnings + more,
                        ratio_basis=derived.basis, quota_per_unit=unit.value, refusal=refusal)
    result.changes = diff_prices(current or {}, pulled)
    return result


def load_into_ledger(db: str, sheet: Path) -> str:
    """Load ``sheet`` as the ledger's prices (``callmeter prices load``); say what happened."""
    from .loader import load_prices

    try:
        conn = open_ledger(db)
    except LedgerLocked as exc:
        return (f"{exc}; the sheet is written but not loaded: run `callmeter prices load "
                f"{sheet}` when the ledger is free")
    try:
        loaded = load_prices(conn, sheet)
    finally:
        conn.close()
    return f"loaded {sheet}: {loaded.rows} rows for {loaded.models} models"
