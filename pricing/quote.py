"""What a planned workload would cost: per token, per request, on cheaper models, break-even.

A quote prices a workload that has not happened — N calls of T input and U output tokens, a
share of the input cached — with the same cost formula as every recorded call: the workload
becomes one synthetic ledger row per candidate model (``requests`` = N, token totals N × T),
priced by :func:`pricing.queries.priced_select` against the ``prices`` table behind ``conn``.
Tiers, cached input and price dates therefore apply exactly as in ``priced_calls``; the
break-even comes from :func:`pricing.compare.break_even_row` and the candidates from the
recommendations' rule (:func:`pricing.recommend.candidate_models`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import duckdb

from ledger import CALL_COLUMNS

from .compare import break_even_row
from .queries import priced_select
from .recommend import candidate_models

__all__ = ["Option", "Quote", "Workload", "quote"]

# The workload's fields in each synthetic row; every other calls column gets its default.
_FIELDS = ("model", "base_model", "billing_mode", "started_at", "requests", "input_tokens",
           "cached_tokens", "output_tokens", "cache_write_tokens", "cache_write_long_tokens")
_DEFAULTS = {"status": "200", "endpoint": "'chat'", "stream": "false", "images": "0",
             "characters": "0", "audio_seconds": "0", "reasoning_tokens": "0",
             "usage_source": "'reported'"}


@dataclass(frozen=True)
class Workload:
    """A planned workload: ``calls`` calls of ``input_tokens`` in and ``output_tokens`` out
    each, ``cached_share`` of the input read from the prompt cache and ``cache_write_share``
    written to it (``cache_write_long_share`` of the input with the longer retention, part of
    the written share), priced as of ``on``."""

    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cached_share: Decimal = Decimal(0)
    on: date | None = None
    cache_write_share: Decimal = Decimal(0)
    cache_write_long_share: Decimal = Decimal(0)

    def check(self) -> None:
        if self.calls < 1 or self.input_tokens < 0 or self.output_tokens < 0:
            raise ValueError("a workload needs calls >= 1 and token counts >= 0")
        shares = (self.cached_share, self.cache_write_share, self.cache_write_long_share)
        if not all(Decimal(0) <= s <= Decimal(1) for s in shares):
            raise ValueError("cached share and cache-write shares must be between 0 and 1")
        if self.cached_share + self.cache_write_share > 1:
            raise ValueError("cached share + cache-write share cannot pass 1 (both are parts "
                             "of the input)")
        if self.cache_write_long_share > self.cache_write_share:
            raise ValueError("the long-retention share is part of the cache-write share")

    def _share(self, share: Decimal) -> int:
        total = Decimal(self.calls * self.input_tokens) * share
        return int(total.quantize(Decimal(1), ROUND_HALF_EVEN))

    @property
    def cached_tokens(self) -> int:
        return self._share(self.cached_share)

    @property
    def cache_write_tokens(self) -> int:
        return self._share(self.cache_write_share)

    @property
    def cache_write_long_tokens(self) -> int:
        return self._share(self.cache_write_long_share)


@dataclass
class Option:
    """One way to run the workload: a model as called (``-c``: per request) and its cost."""

    group: str        # "as asked", "other billing mode", or a cheaper-model group
    model: str
    billing_mode: str
    cost: Decimal | None          # None: the sheet has no price for it on that date
    per_call: Decimal | None


@dataclass
class Quote:
    workload: Workload
    options: list[Option]
    break_even: dict[str, Any] | None = None      # compare.break_even_row of the asked model
    currency: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def cheapest(self) -> Option | None:
        priced = [o for o in self.options if o.cost is not None]
        return min(priced, key=lambda o: o.cost or Decimal(0)) if priced else None


def _source(rows: int) -> str:
    exprs = []
    for name, typ in CALL_COLUMNS.items():
        expr = f"q.{name}" if name in _FIELDS else _DEFAULTS.get(name, "NULL")
        exprs.append(f"CAST({expr} AS {typ}) AS {name}")
    values = ", ".join(["(" + ", ".join(["?"] * len(_FIELDS)) + ")"] * rows)
    return f"(SELECT {', '.join(exprs)} FROM (VALUES {values}) q({', '.join(_FIELDS)}))"


def _price(conn: duckdb.DuckDBPyConnection, w: Workload, names: list[str]
           ) -> dict[str, tuple[Decimal | None, str | None]]:
    """model as called → (cost of the whole workload or None, currency)."""
    at = datetime.combine(w.on or datetime.now(UTC).date(), datetime.min.time(), tzinfo=UTC)
    params: list[Any] = []
    for name in names:
        base, mode = (name[:-2], "request") if name.endswith("-c") else (name, "token")
        params += [name, base, mode, at, w.calls, w.calls * w.input_tokens, w.cached_tokens,
                   w.calls * w.output_tokens, w.cache_write_tokens, w.cache_write_long_tokens]
    sql = f"SELECT model, cost, currency FROM ({priced_select(_source(len(names)))})"
    return {m: (None if c is None else Decimal(c), cur)
            for m, c, cur in conn.execute(sql, params).fetchall()}


def _cheaper(candidates: list[Option], asked: Decimal | None) -> list[Option]:
    """Candidate models with a variant cheaper than the asked option (both their variants
    shown), cheapest first; all of them, by cost, when the asked model has no price."""
    by_model: dict[str, list[Option]] = {}
    for o in candidates:
        by_model.setdefault(o.model.removesuffix("-c"), []).append(o)
    kept = []
    for variants in by_model.values():
        best = min((o.cost for o in variants if o.cost is not None), default=None)
        if best is not None and (asked is None or best < asked):
            kept.append((best, variants))
    return [o for _, variants in sorted(kept, key=lambda kv: kv[0]) for o in variants]


def quote(conn: duckdb.DuckDBPyConnection, workload: Workload,
          models: dict[str, dict[str, Any]] | None = None) -> Quote:
    """Price ``workload`` on its model both ways and on the cheaper-model candidates of
    ``models`` (data/models.csv as :func:`pricing.recommend.load_models` reads it): those of
    the recommendations' rule with a variant cheaper than the asked option."""
    workload.check()
    asked = workload.model
    base = asked[:-2] if asked.endswith("-c") else asked
    planned = [("as asked", asked),
               ("other billing mode", base if asked.endswith("-c") else base + "-c")]
    for group, name in candidate_models(models or {}, base, "chat", workload.input_tokens):
        planned += [(group, name), (group, name + "-c")]
    costs = _price(conn, workload, [name for _, name in planned])
    options = [Option(group, name, "request" if name.endswith("-c") else "token",
                      costs.get(name, (None, None))[0], None) for group, name in planned]
    for o in options:
        o.per_call = None if o.cost is None else o.cost / workload.calls
    options = options[:2] + _cheaper(options[2:], options[0].cost)
    token, request = costs.get(base, (None, None))[0], costs.get(base + "-c", (None, None))[0]
    out = Quote(workload, options,
                currency=next((cur for _, cur in costs.values() if cur), None))
    if token is not None and request is not None:
        out.break_even = break_even_row({
            "base_model": base, "calls": workload.calls,
            "input_tokens": workload.calls * workload.input_tokens,
            "cached_tokens": workload.cached_tokens,
            "cache_write_tokens": workload.cache_write_tokens,
            "output_tokens": workload.calls * workload.output_tokens,
            "token_cost": token, "request_cost": request})
    else:
        out.notes.append(f"{base} is not priced both per token and per request on this date: "
                         "no break-even")
    if models is not None and base not in models:
        out.notes.append(f"{base} is not in models.csv: no cheaper-model candidates")
    return out
