"""Recommendations: the money a user can act on, each with the saving, the evidence and a caveat.

1. Billing-variant switch: per workload (key × base model, optionally × tag), what was paid
   against what the other variant costs for the same calls, summed per call from
   ``priced_calls`` (the real token distribution, not an average), with the share of calls on
   each side of break-even and week-to-week stability as the confidence.
2. Cheaper model (see :mod:`pricing.models`-style data in ``data/models.csv``): simple calls on an
   expensive model, re-priced at a priced model of the same family one tier down or another
   family at the same tier.
3. Other money: prompt-cache economics, 429 storms, spend resting on estimated usage.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ledger import TEXT_ENDPOINTS, data_file, fetch_one, variant_name

from .frames import decimal_frame, records
from .groups import KEY_REF_SQL
from .periods import UTC_DAY_SQL, Bound, utc_start
from .recommend_scan import RECOMMENDED_SQL, WEEK_OF_DAY_SQL, PeriodScan, period_scan
from .variants import summed, variant_choice_sql, variant_totals_sql

__all__ = ["Thresholds", "Recommendation", "variant_workloads", "variant_switches",
           "cache_economics", "failed_call_waste", "estimated_usage_share", "recommend"]


@dataclass(frozen=True)
class Thresholds:
    """What counts as worth saying. Money in the sheet's currency, over the period asked."""

    min_saving: Decimal = Decimal("5")           # absolute saving over the period
    min_saving_share: Decimal = Decimal("0.05")  # saving ÷ paid
    min_calls: int = 20                          # calls in the workload
    simple_max_input: int = 2000                 # p90 input tokens per call for "simple"
    simple_max_output: int = 500                 # p90 output tokens per call
    storm_min_calls: int = 20                    # 429s from one key before it is a storm
    estimated_share_warn: Decimal = Decimal("0.05")  # share of spend on estimated usage
    cache_min_input: int = 1_000_000             # input tokens before cache advice is given


@dataclass
class Recommendation:
    """One action. ``saving`` is exact over the period (None when not a money figure)."""

    # switch_variant | cheaper_model | prompt_cache | rate_limits | estimated_usage
    kind: str
    action: str
    saving: Decimal | None
    evidence: str
    caveat: str
    confidence: str = "medium"   # high | medium | low
    key_id: str | None = None
    key_hint: str | None = None
    model: str | None = None
    key_label: str | None = None  # the labels seen on the workload's calls (label-only keys)
    tag: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # a NULL key read through pandas arrives as NaN: keyless and label-only calls are None
        for name in ("key_id", "key_hint", "key_label", "model", "tag"):
            value = getattr(self, name)
            if value is not None and value != value:
                setattr(self, name, None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["saving"] = None if self.saving is None else str(self.saving)
        return d


# Label-only keys (imports without a key) are told apart by their labels on a card
KEY_LABELS_SQL = "string_agg(DISTINCT key_label, ', ' ORDER BY key_label) AS key_label"


def _period(since: Bound, until: Bound) -> list[Any]:
    return [utc_start(since), utc_start(until)]


# ---- 1. billing-variant switch -------------------------------------------------------------

# A workload's modes, variant totals and per-call sides, over the period scan's fine table
# (pricing.recommend_scan: sums per key x model x UTC day x mode x ok x ..., with the calls
# each variant prices lower; sums of its sums are exact).
_VARIANT_SUMS = """
    array_to_string(list_sort(list_distinct(list(key_label))), ', ') AS key_label,
    string_agg(DISTINCT billing_mode, '+' ORDER BY billing_mode) AS modes,
    """ + variant_totals_sql(summed) + """,
    coalesce(sum(request_cheaper_calls) FILTER (WHERE ok), 0) AS calls_request_cheaper,
    coalesce(sum(token_cheaper_calls) FILTER (WHERE ok), 0) AS calls_token_cheaper,
    coalesce(sum(calls) FILTER (WHERE ok), 0) AS ok_calls"""

# Workloads (allowlist) -> the relation of fine rows, with a ``tag`` column. Per tag: one row
# per tag name=value of each row's tags, as pricing.groups.TAG_PAIRS_JOIN gives (untagged
# calls have none), unnested in the SELECT list (3x faster than the LATERAL join).
_TAG_ROWS = "(SELECT *, _tag.key || '=' || _tag.value AS tag FROM " \
            "(SELECT *, unnest(map_entries(tags)) AS _tag FROM {rows}))"
_WORKLOAD_ROWS = {
    "key_model": "(SELECT *, NULL::VARCHAR AS tag FROM {rows})",
    "key_model_tag": _TAG_ROWS,
}

# Per workload: the variant totals and choice (pricing.variants, the rule the Billing page and
# switch_savings use) from the fine sums, and the median tokens per call from the calls.
VARIANT_SCAN_SQL = """
WITH a AS (
  SELECT key_id, any_value(key_hint) AS key_hint, base_model, tag, """ + _VARIANT_SUMS + """
  FROM {workload_rows} GROUP BY key_id, base_model, tag
)
SELECT a.*, """ + variant_choice_sql("a.") + """, m.median_tokens_per_call FROM a
LEFT JOIN {medians} m ON m.key_id IS NOT DISTINCT FROM a.key_id
  AND m.base_model IS NOT DISTINCT FROM a.base_model AND m.tag IS NOT DISTINCT FROM a.tag
"""
# The period scan's medians per key x base model; per tag they need the calls and their tags.
_MEDIANS = {
    "key_model": "(SELECT key_id, base_model, NULL::VARCHAR AS tag, median_tokens_per_call "
                 "FROM {quantiles} WHERE all_endpoints)",
    "key_model_tag": """(
  SELECT key_id, base_model, tag, quantile_disc(tokens, 0.5) AS median_tokens_per_call
  FROM """ + _TAG_ROWS.format(rows="""(
    SELECT """ + KEY_REF_SQL + """ AS key_id, base_model, tags,
      (input_tokens + output_tokens) // greatest(requests, 1) AS tokens
    FROM calls WHERE started_at >= ? AND started_at < ?)""") + """
  GROUP BY key_id, base_model, tag)""",
}
WEEKLY_SCAN_SQL = """
SELECT key_id, base_model, tag, """ + WEEK_OF_DAY_SQL + """ AS week, sum(cost) AS paid,
       sum(cost_as_token) AS as_token, sum(cost_as_request) AS as_request
FROM {workload_rows} GROUP BY ALL
"""

Weeks = dict[tuple[Any, Any], list[dict[str, Any]]]


def variant_workloads(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound, *,
                      by_tag: bool = False, scan: PeriodScan | None = None) -> pd.DataFrame:
    """Every workload with paid, both variants' cost, the better variant and the saving.

    Columns: key_id, key_hint, base_model, tag, modes, calls, paid, as_token, as_request,
    best_mode, alternative, saving, saving_share, share_request_cheaper, weeks,
    weeks_favourable, confidence, priced (False when paid or the alternative has a NULL).
    ``scan``: the period's :func:`~pricing.recommend_scan.period_scan` (made when omitted;
    per tag, it must be one that kept the tags).
    """
    if scan is None or (by_tag and not scan.tagged):
        with period_scan(conn, since, until, tags=by_tag) as own:
            return variant_workloads(conn, since, until, by_tag=by_tag, scan=own)
    workload = "key_model_tag" if by_tag else "key_model"
    rows = _WORKLOAD_ROWS[workload].format(rows=scan.fine)
    medians = _MEDIANS[workload].format(quantiles=scan.quantiles)
    df = decimal_frame(conn, VARIANT_SCAN_SQL.format(workload_rows=rows, medians=medians),
                       scan.period if by_tag else [])
    weekly = _weeks(conn, WEEKLY_SCAN_SQL.format(workload_rows=rows))
    if df.empty:
        return df.assign(best_mode=[], alternative=[], saving=[], saving_share=[],
                         share_request_cheaper=[], weeks=[], weeks_favourable=[],
                         confidence=[], priced=[])
    rows_judged = [_judge(r, weekly) for r in records(df)]
    return pd.DataFrame(rows_judged).sort_values("saving", ascending=False, key=_nulls_last)


def _weeks(conn: duckdb.DuckDBPyConnection, sql: str) -> Weeks:
    """Weekly sums by (key, base model). A workload without a key or a model finds no weeks
    (as the pandas filter ``key_id == None`` found none before): its confidence stays low."""
    cur = conn.execute(sql)
    names = [d[0] for d in cur.description or ()]
    out: Weeks = defaultdict(list)
    for row in cur.fetchall():
        w = dict(zip(names, row, strict=True))
        out[(w["key_id"], w["base_model"])].append(w)
    return out


def _nulls_last(s: pd.Series) -> pd.Series:
    return s.map(lambda v: Decimal("-1e30") if v is None else v)


def _judge(r: dict[str, Any], weekly: Weeks) -> dict[str, Any]:
    """One workload's cheaper variant (decided in SQL by pricing.variants) and how steady that
    choice was week by week."""
    paid, as_token, as_request = r["actual_cost"], r["cost_all_token"], r["cost_all_request"]
    best_mode, best_value, saving = r["cheaper_mode"], r["cheaper_cost"], r["saving"]
    ok = r["ok_calls"] or 0
    same = [] if r["key_id"] is None or r["base_model"] is None else \
        weekly.get((r["key_id"], r["base_model"]), [])
    if r["tag"] is not None:
        same = [w for w in same if w["tag"] == r["tag"]]
    fav = 0
    if best_mode:
        alt_col = "as_token" if best_mode == "token" else "as_request"
        fav = sum(1 for w in same
                  if w["paid"] is not None and w[alt_col] is not None and w[alt_col] < w["paid"])
    weeks = len(same)
    confidence = ("high" if weeks >= 3 and fav == weeks else
                  "medium" if weeks >= 2 and fav >= 0.75 * weeks else "low")
    return {**r, "paid": paid, "as_token": as_token, "as_request": as_request,
            "best_mode": best_mode, "alternative": best_value, "saving": saving,
            "saving_share": (saving / paid) if saving is not None and paid else None,
            "share_request_cheaper": (r["calls_request_cheaper"] / ok) if ok else None,
            "weeks": weeks, "weeks_favourable": fav, "confidence": confidence,
            "priced": paid is not None and as_token is not None and as_request is not None}


def _current(base_model: str, modes: str) -> str:
    names = [variant_name(base_model, m) for m in modes.split("+")]
    return names[0] if len(names) == 1 else "a mix of " + " and ".join(names)


def variant_switches(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound,
                     thresholds: Thresholds = Thresholds(), *, by_tag: bool = False,
                     scan: PeriodScan | None = None) -> list[Recommendation]:
    """Workloads where the other billing variant would have saved a material amount."""
    out = []
    for r in records(variant_workloads(conn, since, until, by_tag=by_tag, scan=scan)):
        if not r["priced"] or r["saving"] is None or r["calls"] < thresholds.min_calls:
            continue
        if r["modes"] == r["best_mode"]:
            continue  # already on the cheaper variant
        if r["saving"] < thresholds.min_saving or r["saving_share"] < thresholds.min_saving_share:
            continue
        target = variant_name(r["base_model"], r["best_mode"])
        side = r["share_request_cheaper"] if r["best_mode"] == "request" else (
            1 - r["share_request_cheaper"] if r["share_request_cheaper"] is not None else None)
        share_txt = f"{side:.0%} of calls" if side is not None else "the calls"
        out.append(Recommendation(
            kind="switch_variant",
            action=f"call {target} instead of {_current(r['base_model'], r['modes'])}",
            saving=r["saving"],
            evidence=(f"{r['calls']} calls: paid {r['paid']:.2f}, {target} would have cost "
                      f"{r['alternative']:.2f} ({r['saving_share']:.0%} less); {share_txt} are "
                      f"cheaper under {target} (median {r['median_tokens_per_call']} tokens per "
                      f"call); cheaper in {r['weeks_favourable']} of {r['weeks']} weeks"),
            caveat="based on this period's token mix; if calls get longer or shorter the "
                   "break-even moves. Same model, so quality is unchanged.",
            confidence=r["confidence"], key_id=r["key_id"], key_hint=r["key_hint"],
            key_label=r["key_label"] or None,
            model=r["base_model"], tag=r["tag"],
            details={k: r[k] for k in ("calls", "paid", "alternative", "best_mode",
                                       "share_request_cheaper", "weeks", "weeks_favourable")}))
    return out


# ---- 2. cheaper model ----------------------------------------------------------------------

MODELS_CSV = "data/models.csv"
NEEDED_MODALITY = {**{e: "text" for e in TEXT_ENDPOINTS}, "embeddings": "embedding"}

# The workload's successful calls re-priced at another model's sheet rows, per UTC day so each
# day gets the price in force then. This mirrors the per-token rule of ``priced_calls`` (a test
# checks the two agree); tiers above a threshold are left out because simple calls are short.
# The period's successful chat/embeddings calls are summed once per workload x UTC day into a
# TEMP table (a few thousand rows); every candidate reads its workload's days from it instead
# of scanning ``calls`` again (sums of sums: the same figures).
WORKLOAD_DAYS_SQL = """
CREATE TEMP TABLE {name} AS
SELECT """ + KEY_REF_SQL + """ AS key_id, base_model, endpoint, {day} AS day,
  sum(input_tokens - cached_tokens - coalesce(cache_write_tokens, 0)) AS uncached,
  sum(cached_tokens) AS cached,
  sum(coalesce(cache_write_tokens, 0) - coalesce(cache_write_long_tokens, 0)) AS writes,
  sum(coalesce(cache_write_long_tokens, 0)) AS writes_long,
  sum(output_tokens) AS output, sum(requests) AS requests
FROM calls
WHERE started_at >= ? AND started_at < ? AND status < 400 {endpoint_filter}
GROUP BY ALL
"""
_WORKLOAD_DAYS_CTE = """
WITH w AS (
  SELECT day, sum(uncached) AS uncached, sum(cached) AS cached, sum(writes) AS writes,
    sum(writes_long) AS writes_long, sum(output) AS output, sum(requests) AS requests
  FROM {days}
  WHERE key_id IS NOT DISTINCT FROM CAST(? AS VARCHAR) AND base_model = ? AND endpoint = ?
  GROUP BY day
), p AS (SELECT * FROM prices WHERE model = ? {tier_filter})
"""
CANDIDATE_TOKEN_COST_SQL = _WORKLOAD_DAYS_CTE + """
SELECT count(*) FILTER (WHERE p.input IS NULL AND p.output IS NULL) AS unpriced_days,
  sum(w.uncached * p.input * 0.000001
      + w.cached * coalesce(p.cached_input, p.input) * 0.000001
      + w.writes * coalesce(p.cache_write, p.input) * 0.000001
      + w.writes_long * coalesce(p.cache_write_long, p.cache_write, p.input) * 0.000001
      + w.output * coalesce(p.output, 0) * 0.000001) AS cost
FROM w ASOF LEFT JOIN p ON w.day >= p.effective_from
"""
CANDIDATE_REQUEST_COST_SQL = _WORKLOAD_DAYS_CTE + """
SELECT count(*) FILTER (WHERE p.request IS NULL) AS unpriced_days,
  sum(w.requests * p.request) AS cost
FROM w ASOF LEFT JOIN p ON w.day >= p.effective_from
"""
PRICE_COLUMNS_SQL = "SELECT column_name FROM information_schema.columns WHERE table_name = 'prices'"

# The shapes from the period scan: sums from its fine table, tokens per call from its quantiles.
SHAPE_SCAN_SQL = """
SELECT f.key_id, any_value(key_hint) AS key_hint, """ + KEY_LABELS_SQL + """,
  f.base_model, f.endpoint,
  string_agg(DISTINCT billing_mode, '+' ORDER BY billing_mode) AS modes,
  sum(f.requests) AS calls, sum(f.unpriced_rows) AS unpriced_rows, sum(f.cost) AS paid,
  any_value(q.p90_input) AS p90_input, any_value(q.p90_output) AS p90_output,
  any_value(q.max_input) AS max_input, sum(f.reasoning_tokens) AS reasoning_tokens
FROM {fine} f LEFT JOIN {quantiles} q ON NOT q.all_endpoints
  AND q.key_id IS NOT DISTINCT FROM f.key_id AND q.base_model IS NOT DISTINCT FROM f.base_model
  AND q.endpoint IS NOT DISTINCT FROM f.endpoint
WHERE f.endpoint IN """ + RECOMMENDED_SQL + """
GROUP BY f.key_id, f.base_model, f.endpoint
"""

# Every candidate of every workload priced in one query (it was one query per candidate): the
# candidates arrive as parallel lists (index, key, base model, endpoint, price row's model);
# each workload's days are its successful calls summed per UTC day from the fine table, and
# each day meets the candidate's price in force then. Both variants' sums are returned; the
# caller takes the one of the workload's mode.
CANDIDATE_COSTS_SQL = """
WITH c AS (
  SELECT unnest(?::INTEGER[]) AS i, unnest(?::VARCHAR[]) AS key_id,
    unnest(?::VARCHAR[]) AS base_model, unnest(?::VARCHAR[]) AS endpoint,
    unnest(?::VARCHAR[]) AS price_model
), d AS (
  SELECT key_id, base_model, endpoint, day, sum(uncached) AS uncached,
    sum(cached_tokens) AS cached, sum(writes) AS writes, sum(writes_long) AS writes_long,
    sum(output_tokens) AS output, sum(requests) AS requests
  FROM {fine} WHERE ok AND endpoint IN """ + RECOMMENDED_SQL + """
  GROUP BY ALL
), w AS (
  SELECT c.i, c.price_model, d.day, sum(d.uncached) AS uncached, sum(d.cached) AS cached,
    sum(d.writes) AS writes, sum(d.writes_long) AS writes_long, sum(d.output) AS output,
    sum(d.requests) AS requests
  FROM c JOIN d ON d.key_id IS NOT DISTINCT FROM c.key_id AND d.base_model = c.base_model
    AND d.endpoint = c.endpoint
  GROUP BY c.i, c.price_model, d.day
), p AS (SELECT * FROM prices WHERE true {tier_filter})
SELECT w.i,
  count(*) FILTER (WHERE p.input IS NULL AND p.output IS NULL) AS unpriced_token_days,
  sum(w.uncached * p.input * 0.000001
      + w.cached * coalesce(p.cached_input, p.input) * 0.000001
      + w.writes * coalesce(p.cache_write, p.input) * 0.000001
      + w.writes_long * coalesce(p.cache_write_long, p.cache_write, p.input) * 0.000001
      + w.output * coalesce(p.output, 0) * 0.000001) AS token_cost,
  count(*) FILTER (WHERE p.request IS NULL) AS unpriced_request_days,
  sum(w.requests * p.request) AS request_cost
FROM w ASOF LEFT JOIN p ON p.model = w.price_model AND w.day >= p.effective_from
GROUP BY w.i
"""


def load_models(path: str | Path = MODELS_CSV) -> dict[str, dict[str, Any]]:
    """``data/models.csv`` by model name: provider, family, tier (1 = strongest), modalities...

    The default (or any ``data/…`` path that does not exist here) is the shipped copy, found
    wherever callmeter is installed."""
    import csv

    with open(data_file(path), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["tier"] = int(r["tier"])
        r["context_window"] = int(r["context_window"] or 0)
        r["modalities"] = set(filter(None, r["modalities"].split(";")))
        r["reasoning"] = r["reasoning"].strip().lower() == "true"
    return {r["model"]: r for r in rows}


def _tier_filter(conn: duckdb.DuckDBPyConnection) -> str:
    cols = {r[0] for r in conn.execute(PRICE_COLUMNS_SQL).fetchall()}
    return "AND above_input_tokens IS NULL" if "above_input_tokens" in cols else ""


@contextmanager
def workload_days(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound,
                  endpoint: str | None = None) -> Iterator[str]:
    """The period's successful calls summed per workload x UTC day (TEMP table, dropped after);
    text and embeddings calls, or one ``endpoint``'s."""
    name = f"_rec_workload_days_{uuid.uuid4().hex[:12]}"
    params = [*_period(since, until)]
    if endpoint is None:
        endpoint_filter = f"AND endpoint IN {RECOMMENDED_SQL}"
    else:
        endpoint_filter, params = "AND endpoint = ?", [*params, endpoint]
    conn.execute(WORKLOAD_DAYS_SQL.format(name=name, day=UTC_DAY_SQL.format(col="started_at"),
                                          endpoint_filter=endpoint_filter), params)
    try:
        yield name
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def workload_cost_at(conn: duckdb.DuckDBPyConnection, key_id: str | None, base_model: str,
                     endpoint: str, since: Bound, until: Bound, model: str, mode: str = "token", *,
                     days: str | None = None, tier_filter: str | None = None
                     ) -> Decimal | None:
    """What the workload's successful calls would have cost on ``model`` (None when unpriced).

    ``days``: a :func:`workload_days` table for the same period (one is made when omitted).
    """
    if days is None:
        with workload_days(conn, since, until, endpoint) as days:
            return workload_cost_at(conn, key_id, base_model, endpoint, since, until, model,
                                    mode, days=days, tier_filter=tier_filter)
    if mode == "request":
        sql, price_model = CANDIDATE_REQUEST_COST_SQL, model + "-c"
    else:
        sql, price_model = CANDIDATE_TOKEN_COST_SQL, model
    if tier_filter is None:
        tier_filter = _tier_filter(conn)
    # a keyless workload's key arrives from a DataFrame as NaN: bind NULL, not a DOUBLE
    key = key_id if isinstance(key_id, str) else None
    unpriced, cost = fetch_one(conn.execute(sql.format(tier_filter=tier_filter, days=days),
                                  [key, base_model, endpoint, price_model]))
    return None if unpriced or cost is None else Decimal(cost)


def _candidates(models: dict[str, dict[str, Any]], current: dict[str, Any], endpoint: str,
                max_input: int) -> list[tuple[str, str]]:
    """(group, model) pairs: same family one tier down, other families at the same tier."""
    need = NEEDED_MODALITY[endpoint]
    out = []
    for name, m in models.items():
        if name == current["model"] or need not in m["modalities"]:
            continue
        if m["context_window"] and max_input > m["context_window"]:
            continue
        if m["family"] == current["family"] and m["tier"] == current["tier"] + 1:
            out.append(("same family, one tier down", name))
        elif m["family"] != current["family"] and m["tier"] == current["tier"]:
            out.append(("other family, same tier", name))
    return out


def candidate_models(models: dict[str, dict[str, Any]], model: str, endpoint: str = "chat",
                     max_input: int = 0) -> list[tuple[str, str]]:
    """(group, model) cheaper-model candidates for ``model`` (a base model of models.csv);
    empty when models.csv does not know it. Recommendations and quotes use the same rule."""
    current = models.get(model)
    return [] if current is None else _candidates(models, current, endpoint, max_input)


def cheaper_models(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound,
                   thresholds: Thresholds = Thresholds(), models_path: str = MODELS_CSV, *,
                   scan: PeriodScan | None = None) -> list[Recommendation]:
    """Simple workloads on an expensive model, with the cheapest priced alternative per group.
    ``scan``: the period's :func:`~pricing.recommend_scan.period_scan` (made when omitted)."""
    if scan is None:
        with period_scan(conn, since, until) as own:
            return cheaper_models(conn, since, until, thresholds, models_path, scan=own)
    models = load_models(models_path)
    shapes = decimal_frame(conn, SHAPE_SCAN_SQL.format(fine=scan.fine,
                                                       quantiles=scan.quantiles))
    simple: list[tuple[dict[str, Any], dict[str, Any], list[tuple[str, str]]]] = []
    for w in records(shapes):
        current = models.get(w["base_model"])
        if current is None or w["unpriced_rows"] or w["paid"] is None or \
                w["calls"] < thresholds.min_calls or "+" in w["modes"]:
            continue
        if w["p90_input"] > thresholds.simple_max_input or \
                w["p90_output"] > thresholds.simple_max_output or w["reasoning_tokens"]:
            continue
        simple.append((w, current, _candidates(models, current, w["endpoint"], w["max_input"])))
    costs = _candidate_costs(conn, scan, [(w, name) for w, _, cands in simple
                                          for _, name in cands])
    out, i = [], 0
    for w, current, cands in simple:
        best: dict[str, tuple[Decimal, str]] = {}
        for group, name in cands:
            cost, i = costs.get(i), i + 1
            if cost is not None and (group not in best or cost < best[group][0]):
                best[group] = (cost, name)
        out.extend(_cheaper_recommendations(w, best, current, models, thresholds))
    return out


def _candidate_costs(conn: duckdb.DuckDBPyConnection, scan: PeriodScan,
                     pairs: list[tuple[dict[str, Any], str]]) -> dict[int, Decimal]:
    """What each (workload, candidate model) pair's successful calls would have cost on the
    candidate, by the pair's index; a pair whose candidate is unpriced on any day is left out
    (as :func:`workload_cost_at` gives None)."""
    if not pairs:
        return {}
    modes = [w["modes"] for w, _ in pairs]
    lists = [list(range(len(pairs))),
             # a keyless workload's key may arrive from a DataFrame as NaN: bind NULL
             [w["key_id"] if isinstance(w["key_id"], str) else None for w, _ in pairs],
             [w["base_model"] for w, _ in pairs], [w["endpoint"] for w, _ in pairs],
             [name + "-c" if mode == "request" else name
              for (_, name), mode in zip(pairs, modes, strict=True)]]
    sql = CANDIDATE_COSTS_SQL.format(fine=scan.fine, tier_filter=_tier_filter(conn))
    out = {}
    for i, unpriced_token, token, unpriced_request, request in conn.execute(sql,
                                                                            lists).fetchall():
        unpriced, cost = ((unpriced_request, request) if modes[i] == "request"
                          else (unpriced_token, token))
        if not unpriced and cost is not None:
            out[i] = Decimal(cost)
    return out


def _cheaper_recommendations(w: dict[str, Any], best: dict[str, tuple[Decimal, str]],
                             current: dict[str, Any], models: dict[str, dict[str, Any]],
                             thresholds: Thresholds) -> list[Recommendation]:
    out = []
    for group, (cost, name) in sorted(best.items()):
        saving = w["paid"] - cost
        if saving < thresholds.min_saving or saving < thresholds.min_saving_share * w["paid"]:
            continue
        target = variant_name(name, w["modes"])
        out.append(Recommendation(
            kind="cheaper_model",
            action=f"try {target} ({group}) instead of "
                   f"{variant_name(w['base_model'], w['modes'])}",
            saving=saving,
            evidence=(f"{w['calls']} simple calls (90% under {w['p90_input']} input and "
                      f"{w['p90_output']} output tokens, no reasoning): paid "
                      f"{w['paid']:.2f}, {target} at its sheet price: {cost:.2f}; tier "
                      f"{models[name]['tier']} vs {current['tier']} "
                      f"({models[name]['tier_source'] or 'models.csv'})"),
            caveat="a different model: check answer quality on a sample of this "
                   "workload's real prompts before switching.",
            confidence="low", key_id=w["key_id"], key_hint=w["key_hint"],
            key_label=w["key_label"] or None,
            model=w["base_model"], details={"candidate": name, "group": group,
                                            "candidate_cost": cost, "paid": w["paid"]}))
    return out


# ---- 3. other money ------------------------------------------------------------------------

# Cache: cached share of input and the money it saved at the sheet's cached-input price, less
# what writing the cache cost above the input price (Anthropic: 1.25x for 5 minutes, 2x for 1h).
# Token sums per key x model x UTC day meet the price in force that day (exact: the price is
# constant within the day, and the products are DECIMAL).
CACHE_SQL = """
WITH c AS (
  SELECT key_id, any_value(key_hint) AS key_hint, list(DISTINCT key_label) AS key_labels,
         base_model, sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
         sum(writes) AS writes, sum(writes_long) AS writes_long, day
  FROM {fine} WHERE ok AND billing_mode = 'token' AND has_input
  GROUP BY key_id, base_model, day
), p AS (SELECT * FROM prices WHERE input IS NOT NULL {tier_filter})
SELECT c.key_id, any_value(c.key_hint) AS key_hint,
  array_to_string(list_sort(list_distinct(flatten(list(c.key_labels)))), ', ') AS key_label,
  c.base_model,
  sum(c.input_tokens) AS input_tokens, sum(c.cached_tokens) AS cached_tokens,
  sum(c.cached_tokens) / sum(c.input_tokens) AS cached_share,
  sum(c.cached_tokens * (p.input - coalesce(p.cached_input, p.input)) * 0.000001
      - c.writes * (coalesce(p.cache_write, p.input) - p.input) * 0.000001
      - c.writes_long * (coalesce(p.cache_write_long, p.cache_write, p.input) - p.input)
        * 0.000001)
    AS saving_realised,
  sum(c.input_tokens * (p.input - coalesce(p.cached_input, p.input)) * 0.000001) * 0.1
    AS saving_per_10pct_more_cached
FROM c ASOF JOIN p ON p.model = c.base_model AND c.day >= p.effective_from
GROUP BY c.key_id, c.base_model ORDER BY saving_per_10pct_more_cached DESC
"""

# Peak 429s in one minute per key: counted over the 429 rows only (a window over every call
# of the period cost seconds); a key without a 429 has a peak of 0. Minutes by epoch
# arithmetic (the same minutes as date_trunc in any zone of whole-minute offset, 4x cheaper).
FAILED_SQL = """
WITH per_key AS (
  SELECT key_id, any_value(key_hint) AS key_hint,
    """ + KEY_LABELS_SQL + """, sum(requests) AS calls,
    coalesce(sum(requests) FILTER (WHERE rate_limited), 0) AS rate_limited,
    coalesce(sum(requests) FILTER (WHERE NOT ok), 0) AS failed,
    coalesce(sum(latency_ms) FILTER (WHERE NOT ok), 0) / 1000.0 AS seconds_wasted
  FROM {fine}
  GROUP BY key_id
), per_minute AS (
  SELECT """ + KEY_REF_SQL + """ AS key_id, count(*) AS n FROM calls
  WHERE started_at >= ? AND started_at < ? AND status = 429
  GROUP BY 1, epoch_us(started_at) // 60000000
), peak AS (SELECT key_id, max(n) AS peak FROM per_minute GROUP BY key_id)
SELECT p.*, coalesce(peak.peak, 0) AS peak_429_per_minute
FROM per_key p LEFT JOIN peak ON peak.key_id IS NOT DISTINCT FROM p.key_id
ORDER BY rate_limited DESC, key_id
"""

ESTIMATED_SQL = """
SELECT key_id, any_value(key_hint) AS key_hint,
  """ + KEY_LABELS_SQL + """, coalesce(sum(cost), 0) AS spend,
  coalesce(sum(cost) FILTER (WHERE estimated), 0) AS estimated_spend,
  coalesce(sum(requests) FILTER (WHERE estimated), 0) AS estimated_calls
FROM {fine}
GROUP BY key_id ORDER BY estimated_spend DESC, key_id
"""


def cache_economics(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound, *,
                    scan: PeriodScan | None = None) -> pd.DataFrame:
    """Per key and model (per-token billing): cached share and the money caching saved."""
    if scan is None:
        with period_scan(conn, since, until) as own:
            return cache_economics(conn, since, until, scan=own)
    return decimal_frame(conn, CACHE_SQL.format(tier_filter=_tier_filter(conn), fine=scan.fine))


def failed_call_waste(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound, *,
                      scan: PeriodScan | None = None) -> pd.DataFrame:
    """Per key: calls, 429s, all failures, seconds spent waiting on failures, peak 429/minute."""
    if scan is None:
        with period_scan(conn, since, until) as own:
            return failed_call_waste(conn, since, until, scan=own)
    return decimal_frame(conn, FAILED_SQL.format(fine=scan.fine), scan.period)


def estimated_usage_share(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound, *,
                          scan: PeriodScan | None = None) -> pd.DataFrame:
    """Per key: spend, and the part of it resting on locally counted (estimated) tokens."""
    if scan is None:
        with period_scan(conn, since, until) as own:
            return estimated_usage_share(conn, since, until, scan=own)
    df = decimal_frame(conn, ESTIMATED_SQL.format(fine=scan.fine))
    df["estimated_share"] = [e / s if s else None
                             for e, s in zip(df["estimated_spend"], df["spend"], strict=True)]
    return df


def _other_money(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound, t: Thresholds,
                 scan: PeriodScan) -> list[Recommendation]:
    out = []
    for r in records(cache_economics(conn, since, until, scan=scan)):
        gain = r["saving_per_10pct_more_cached"]
        if r["input_tokens"] >= t.cache_min_input and gain and gain >= t.min_saving \
                and r["cached_share"] < 0.5:
            out.append(Recommendation(
                kind="prompt_cache", key_id=r["key_id"], key_hint=r["key_hint"],
            key_label=r["key_label"] or None,
                model=r["base_model"], saving=gain, confidence="low",
                action=f"raise the prompt-cache hit rate on {r['base_model']} "
                       "(stable system prompt and tools first, variable text last)",
                evidence=f"{r['cached_share']:.0%} of {r['input_tokens']:,} input tokens were "
                         f"cached, saving {r['saving_realised']:.2f}; each further 10% cached "
                         f"would save {gain:.2f}",
                caveat="the saving shown is per 10 points of cached share; what is reachable "
                       "depends on how much of each prompt repeats."))
    for r in records(failed_call_waste(conn, since, until, scan=scan)):
        if r["rate_limited"] >= t.storm_min_calls:
            out.append(Recommendation(
                kind="rate_limits", key_id=r["key_id"], key_hint=r["key_hint"],
            key_label=r["key_label"] or None, saving=None,
                action="add client back-off (honour Retry-After) or ask for a higher rate limit",
                evidence=f"{r['rate_limited']} of {r['calls']} calls got 429 (peak "
                         f"{r['peak_429_per_minute']} in one minute); {r['failed']} failures "
                         f"wasted {r['seconds_wasted']:.0f} s of waiting",
                caveat="failed calls cost 0 in the ledger; check whether the platform bills "
                       "them (see the report's reconciliation)."))
    for r in records(estimated_usage_share(conn, since, until, scan=scan)):
        share = r["estimated_share"]
        if share is not None and share >= t.estimated_share_warn and r["estimated_spend"]:
            out.append(Recommendation(
                kind="estimated_usage", key_id=r["key_id"], key_hint=r["key_hint"],
            key_label=r["key_label"] or None,
                saving=None,
                action="send stream_options.include_usage (or let streams finish) so the "
                       "platform reports usage",
                evidence=f"{share:.0%} of this key's spend ({r['estimated_spend']:.2f} of "
                         f"{r['spend']:.2f}, {r['estimated_calls']} calls) rests on tokens "
                         "counted locally",
                caveat="estimated tokens can differ from what the platform bills, mostly "
                       "for non-OpenAI models."))
    return out


def recommend(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound,
              thresholds: Thresholds = Thresholds(), *, models_path: str = MODELS_CSV,
              by_tag: bool = False) -> list[Recommendation]:
    """All recommendations for [since, until), money first (largest saving first)."""
    with period_scan(conn, since, until, tags=by_tag) as scan:
        recs = variant_switches(conn, since, until, thresholds, by_tag=by_tag, scan=scan)
        recs += cheaper_models(conn, since, until, thresholds, models_path, scan=scan)
        recs += _other_money(conn, since, until, thresholds, scan)
    return sorted(recs, key=lambda r: (r.saving is None, -(r.saving or 0)))
