"""Per-token versus per-request: break-even tokens per call and the savings of switching.

Shared by the dashboard and ``callmeter recommend``. Both sum ``priced_calls``, so price
history, tiers and cached input are accounted for exactly as in the costs themselves; sums are
exact DECIMAL and the few divisions happen here in ``Decimal``.

Break-even reads the daily (or hourly) rollup instead of the calls when it is current and the
period is whole UTC days (hours): 3.2 s of the Billing page at 100M calls was this one scan.
It sums only the successful calls priced both ways, and a rollup row may mix those with calls
one variant has no price for (an image in a call billed per request, on a model whose
per-token row prices no images), so the rollup keeps their sums apart (``pricing.rollup``'s
``both_priced_*`` columns, migration ``m014``). That is one exact read of the rollup; the
alternative, rollup rows where every call is priced both ways plus the calls of the other
groups, gives the same answer from two reads, one of them over the calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import duckdb
import pandas as pd

from . import rollup
from .frames import decimal_frame, records
from .groups import GROUPS, KEY_REF_SQL
from .periods import Period, utc_bound
from .queries import BREAK_EVEN_ROLLUP_SQL, BREAK_EVEN_TOTALS_SQL, SWITCH_SAVINGS_SQL

_GROUPS = {False: GROUPS["base_model"], True: f"{KEY_REF_SQL} AS key_id, {GROUPS['base_model']}"}
MONEY_PLACES = Decimal("0.000000000001")  # averages are shown to 1e-12 of the currency

BREAK_EVEN_COLUMNS = (
    "key_id", "base_model", "calls", "tokens_per_call", "input_share", "cached_share",
    "cache_write_share",
    "token_cost", "request_cost", "token_cost_per_call", "request_price",
    "token_cost_per_1m", "break_even_tokens", "cheaper_mode", "saving",
)


def _period(since: Period, until: Period) -> dict[str, datetime | None]:
    return {"since": utc_bound(since), "until": utc_bound(until)}


def switch_savings(conn: duckdb.DuckDBPyConnection, since: Period = None,
                   until: Period = None) -> pd.DataFrame:
    """One row per key × base model over [since, until) (UTC): what was paid, what all calls
    would have cost per token and per request, the cheaper mode and the saving of using it.

    Columns: key_id, key_hint, key_label, base_model, calls, token_calls, request_calls,
    current_mode (token|request|mixed), actual_cost, cost_all_token, cost_all_request,
    cheaper_mode, cheaper_cost, saving, switchable. Money columns hold ``Decimal``; a total
    is NULL when any call in it is unpriced, and cheaper_mode/saving are NULL unless both
    variants are priced for every call (``switchable``). Largest saving first.
    """
    return decimal_frame(conn, SWITCH_SAVINGS_SQL, _period(since, until))


def _ratio(num: Decimal, den: Decimal) -> Decimal | None:
    return None if not den else num / den


def break_even_row(row: dict[str, Any]) -> dict[str, Any]:
    """Break-even and the cheaper mode from totals: ``calls``, ``input_tokens``,
    ``cached_tokens``, ``cache_write_tokens`` (optional), ``output_tokens``, ``token_cost`` and
    ``request_cost`` (both priced; cache writes are in ``token_cost`` at their own rates);
    BREAK_EVEN_COLUMNS out. Observed workloads (:func:`break_even_tokens`) and planned ones
    (``pricing.quote``) both go through here."""
    calls = Decimal(int(row["calls"]))
    inp, cached, out = (Decimal(int(row[c] or 0)) for c in
                        ("input_tokens", "cached_tokens", "output_tokens"))
    tokens = inp + out
    token_cost, request_cost = Decimal(row["token_cost"]), Decimal(row["request_cost"])
    per_token = _ratio(token_cost, tokens)
    request_price = request_cost / calls
    break_even = (None if not per_token else
                  (request_price / per_token).quantize(Decimal(1), ROUND_HALF_EVEN))
    cheaper = "token" if token_cost <= request_cost else "request"

    def money(v: Decimal | None) -> Decimal | None:
        return None if v is None else v.quantize(MONEY_PLACES, ROUND_HALF_EVEN)

    return {
        "key_id": row.get("key_id"),
        "base_model": row["base_model"],
        "calls": int(calls),
        "tokens_per_call": (tokens / calls).quantize(Decimal("0.1"), ROUND_HALF_EVEN),
        "input_share": _ratio(inp, tokens),
        "cached_share": _ratio(cached, inp),
        "cache_write_share": _ratio(Decimal(int(row.get("cache_write_tokens") or 0)), inp),
        "token_cost": token_cost,
        "request_cost": request_cost,
        "token_cost_per_call": money(token_cost / calls),
        "request_price": money(request_price),
        "token_cost_per_1m": money(None if per_token is None else per_token * 1_000_000),
        "break_even_tokens": break_even,
        "cheaper_mode": cheaper,
        "saving": abs(token_cost - request_cost),
    }


def break_even_tokens(conn: duckdb.DuckDBPyConnection, base_model: str | None = None, *,
                      by_key: bool = False, since: Period = None, until: Period = None,
                      key_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Tokens per call at which per-token and per-request billing cost the same, for the
    input/cached/output mix actually observed (overall, or per key with ``by_key``).

    Uses successful calls in [since, until) priced both ways. For the observed mix a call of
    T tokens costs T × token_cost_per_1m / 1M per token and request_price per request, so the
    break-even is T* = request_price / (token_cost / tokens): calls larger than T* are cheaper
    per request. Also gives the cheaper mode for the workload as it was and the saving (the
    absolute difference of the two totals). ``key_ids`` limits the calls to those keys (the
    dashboard's key filter and a key owner's scope), named as the sidebar names them: a
    fingerprint, or ``label:NAME`` for a label-only key. Columns: BREAK_EVEN_COLUMNS (key_id
    is that key reference with ``by_key``, else None; keyless calls are one None key); money
    in ``Decimal``.
    """
    period = _period(since, until)
    source = rollup.period_source(conn, period["since"], period["until"])
    sql = (BREAK_EVEN_TOTALS_SQL if source is None else
           BREAK_EVEN_ROLLUP_SQL.replace("{source}", source[0]).replace("{time}", source[1]))
    sql = sql.replace("{group}", _GROUPS[by_key])
    params = {**period, "base_model": base_model,
              "key_ids": None if key_ids is None else list(key_ids)}
    rows = records(decimal_frame(conn, sql, params))
    return pd.DataFrame([break_even_row(r) for r in rows], columns=list(BREAK_EVEN_COLUMNS))
