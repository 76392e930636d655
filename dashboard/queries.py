"""Every read the dashboard makes, as parameterised SQL, cached on (filters, ledger marker).

Each query runs on the daily rollup when the period's bounds fall on whole UTC days (periods in
UTC), on the hourly rollup when they fall on whole UTC hours (every whole-hour timezone), else
on ``priced_calls``; all give the same numbers (tested). Per-call shapes (tokens per call,
break-even bins, latency percentiles) read the distribution rollup on whole UTC days, else the
same bins computed from ``priced_calls``. Values are always bound, never formatted in; group-by
columns come from ``pricing.groups``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pricing.loader import LoadedSheet
    from pricing.quote import Quote, Workload
    from pricing.report import FinanceReport
    from pricing.sheet import PriceSheet
    from pricing.whatif import SheetImpact

from datetime import UTC, date, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from ledger import TEXT_ENDPOINTS, fetch_one, split_model, sql_literal
from pricing import break_even_tokens, rollup, variants
from pricing.frames import decimal_frame, records
from pricing.groups import KEY_REF_SQL, group_column, key_ref_label, tag_value_sql
from pricing.memo import priced_source
from pricing.periods import AsOf
from pricing.spikes import spikes
from pricing.variants import variant_choice_sql, variant_totals_sql

from .connection import Ledger
from .filters import Filters

RAW, ROLLUP, DAILY, DIST = "priced_calls", rollup.TABLE, rollup.DAILY, rollup.DIST
TIME_COL = {RAW: "started_at", ROLLUP: "hour", DAILY: "day", DIST: "day"}
_cached = st.cache_data(ttl=3600, max_entries=1024, show_spinner=False)

MAIN_MEASURES = ("cost", "calls", "input_tokens", "cached_tokens", "cache_write_tokens",
                 "output_tokens", "reasoning_tokens", "unpriced_calls", "errors")
STATUS_MIX = {"e401": "status = 401", "e403": "status = 403", "e429": "status = 429",
              "e5xx": "status >= 500", "errors": "status >= 400"}


def source_for(f: Filters, hours: bool = False) -> str:
    """The daily rollup when the period is whole UTC days (and no hourly buckets are needed),
    the hourly rollup when it is whole UTC hours, else the raw calls."""
    utc = [b.astimezone(UTC) for b in f.bounds()]
    if not all(b.minute == 0 and b.second == 0 for b in utc):
        return RAW
    return ROLLUP if hours or any(b.hour for b in utc) else DAILY


def measure(name: str, src: str) -> str:
    """One aggregate, written for the chosen source."""
    if name in STATUS_MIX:
        calls = "requests" if src == RAW else "calls"
        return f"sum({calls}) FILTER (WHERE {STATUS_MIX[name]})"
    if name in ("token_cost", "request_cost"):
        mode = name.split("_")[0]
        return f"{measure('cost', src)} FILTER (WHERE billing_mode = '{mode}')"
    if name == "streamed":
        return f"sum({'requests' if src == RAW else 'calls'}) FILTER (WHERE stream)"
    if src == RAW:
        return rollup.MEASURES[name]
    return {"first_seen": "min", "last_seen": "max"}.get(name, "sum") + f"({name})"


def measures(names: Iterable[str], src: str) -> str:
    return ", ".join(f"{measure(n, src)} AS {n}" for n in names)


def where(f: Filters, src: str, p: dict[str, Any]) -> str:
    """The WHERE clause for ``f``; fills ``p`` with the bound values."""
    time_col = TIME_COL[src]
    p["t0"], p["t1"] = f.bounds()
    clauses = [f"{time_col} >= $t0", f"{time_col} < $t1"]
    key = key_ref(src)
    for col, values in ((key, f.keys), ("model", f.models), ("endpoint", f.endpoints),
                        ("billing_mode", f.modes)):
        if values:
            clauses.append(_in(col, values, p))
    if f.scope_keys is not None:
        clauses.append(_in(key, f.scope_keys, p))
    by_tag: dict[str, list[str]] = {}
    for pair in f.tags:
        k, _, v = pair.partition("=")
        by_tag.setdefault(k, []).append(v)
    for k, vals in by_tag.items():
        name = f"v{len(p)}"
        p[name] = k
        clauses.append(_in(f"tags[${name}]", vals, p))
    return " AND ".join(clauses)


def key_ref(src: str) -> str:
    """The key as pages name it (``pricing.groups.KEY_REF_SQL``: fingerprint, else
    ``label:NAME``), in every source (the distribution rollup keeps the label too, since m013)."""
    return KEY_REF_SQL


def _in(col: str, values: Iterable[object], p: dict[str, Any]) -> str:
    if not values:
        return "FALSE"  # a key owner with no keys sees nothing
    names = []
    for v in values:
        names.append(f"$v{len(p)}")
        p[names[-1][1:]] = v
    return f"{col} IN ({', '.join(names)})"


def group_expr(by: str, p: dict[str, Any], src: str = RAW) -> str:
    """SQL for an allow-listed group (pricing.groups), ``day`` (the UTC day, as the finance
    report counts it), the key as pages name it, or ``tag:NAME`` (the name bound)."""
    if by == "day":
        return f"CAST(timezone('UTC', {TIME_COL[src]}) AS DATE)"
    if by.startswith("tag:"):
        name = f"tag{len(p)}"  # each tag grouping its own parameter
        p[name] = by[4:]
        return f"coalesce({tag_value_sql('$' + name)}, '(untagged)')"
    if by == "key":
        return KEY_REF_SQL
    return group_column(by)


def _df(ledger: Ledger, sql: str, p: dict[str, Any]) -> pd.DataFrame:
    """Rows as a DataFrame with money kept as Decimal (pricing.frames), on a fresh cursor."""
    return decimal_frame(ledger.cursor(), sql, p)


def bucket_expr(grain: str, src: str) -> str:
    col = TIME_COL[src]
    return f"date_trunc('{'hour' if grain == 'hour' else 'day'}', timezone($tz, {col}))"


# --- ledger-wide -------------------------------------------------------------------------

@_cached
def ledger_summary(_ledger: Ledger, marker: str) -> dict[str, Any]:
    row = fetch_one(_ledger.cursor().execute(
        f"SELECT coalesce(sum(call_rows), 0), coalesce(sum(calls), 0), min(first_seen), "
        f"max(last_seen) FROM {DAILY}"))
    return {"rows": row[0], "calls": row[1], "first": row[2], "last": row[3]}


@_cached
def filter_options(_ledger: Ledger, marker: str) -> dict[str, dict[str, str]]:
    """Choices for the sidebar: value -> label."""
    cur = _ledger.cursor()
    keys = cur.execute(
        f"SELECT {KEY_REF_SQL} AS ref, coalesce(max(key_label), max(key_hint), ref), "
        f"max(key_hint) FROM {DAILY} WHERE ref IS NOT NULL GROUP BY ref ORDER BY 2").fetchall()
    out = {"keys": {k: label for k, label, _ in keys},
           "key_hints": {k: hint for k, _, hint in keys if hint}}
    for name, col in (("models", "model"), ("endpoints", "endpoint"), ("modes", "billing_mode")):
        vals = cur.execute(f"SELECT DISTINCT {col} FROM {DAILY} WHERE {col} IS NOT NULL "
                           f"ORDER BY 1").fetchall()
        out[name] = {v: v for (v,) in vals}
    tags = cur.execute(f"SELECT DISTINCT e.key || '=' || e.value FROM (SELECT unnest("
                       f"map_entries(tags)) AS e FROM (SELECT DISTINCT tags FROM {DAILY})) "
                       f"ORDER BY 1").fetchall()
    out["tags"] = {t: t for (t,) in tags}
    return out


@_cached
def sheet_currency(_ledger: Ledger, marker: str) -> str:
    row = fetch_one(_ledger.cursor().execute(
        "SELECT coalesce(any_value(currency), 'USD') FROM prices"))
    return str(row[0])


# --- totals, time series, breakdowns -----------------------------------------------------

@_cached
def totals(_ledger: Ledger, marker: str, f: Filters) -> dict[str, Any]:
    """Headline numbers for the period (money as Decimal, None when nothing is priced)."""
    src = source_for(f)
    p: dict[str, Any] = {}
    names = (*MAIN_MEASURES, "charged", "charged_calls", "cost_where_charged",
             "unpriced_tokens", "streamed")
    sql = f"SELECT {measures(names, src)} FROM {src} WHERE {where(f, src, p)}"
    row = fetch_one(_ledger.cursor().execute(sql, p))
    out = dict(zip(names, row, strict=True))
    for n in names:
        if n not in ("cost", "charged", "cost_where_charged") and out[n] is None:
            out[n] = 0
    return out


@_cached
def over_time(_ledger: Ledger, marker: str, f: Filters, by: str, grain: str = "day"
              ) -> pd.DataFrame:
    """Spend and calls per bucket (local time of ``f.tz``) and group."""
    src = source_for(f, hours=grain == "hour")
    p: dict[str, Any] = {"tz": f.tz}
    g = group_expr(by, p)
    label = (f"coalesce(max(key_label), max(key_hint), {g}, '(no key)')" if by == "key" else g)
    sql = (f"SELECT {bucket_expr(grain, src)} AS bucket, {g} AS grp, {label} AS name, "
           f"{measures(('cost', 'calls', 'unpriced_calls'), src)} FROM {src} "
           f"WHERE {where(f, src, p)} GROUP BY 1, 2 ORDER BY 1, 2")
    return _df(_ledger, sql, p)


@_cached
def breakdown(_ledger: Ledger, marker: str, f: Filters, by: tuple[str, ...],
              extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Main measures (plus ``extra``) per combination of the ``by`` groups, by spend."""
    src = source_for(f)
    p: dict[str, Any] = {}
    cols = [f"{group_expr(b, p, src)} AS {b.replace(':', '_')}" for b in by]
    if "key" in by:
        cols += ["max(key_label) AS key_label", "max(key_hint) AS key_hint"]
    names = (*MAIN_MEASURES, *extra)
    sql = (f"SELECT {', '.join(cols)}, {measures(names, src)} FROM {src} "
           f"WHERE {where(f, src, p)} GROUP BY {', '.join(str(i + 1) for i in range(len(by)))} "
           f"ORDER BY cost DESC NULLS LAST, calls DESC")
    return _df(_ledger, sql, p)


@_cached
def daily_cost(_ledger: Ledger, marker: str, f: Filters) -> pd.DataFrame:
    """Spend per local day, every day of the period present (0 when no calls)."""
    src = source_for(f)
    p: dict[str, Any] = {"tz": f.tz, "d0": f.start, "d1": f.end}
    sql = (f"WITH days AS (SELECT CAST(d AS DATE) AS day FROM range($d0::DATE, "
           f"$d1::DATE + INTERVAL 1 DAY, INTERVAL 1 DAY) t(d)), agg AS ("
           f"SELECT CAST({bucket_expr('day', src)} AS DATE) AS day, "
           f"{measures(('cost', 'calls'), src)} FROM {src} WHERE {where(f, src, p)} "
           f"GROUP BY 1) SELECT day, coalesce(cost, 0) AS cost, coalesce(calls, 0) AS calls "
           f"FROM days LEFT JOIN agg USING (day) ORDER BY day")
    return _df(_ledger, sql, p)


# --- keys --------------------------------------------------------------------------------

@_cached
def keys_table(_ledger: Ledger, marker: str, f: Filters) -> pd.DataFrame:
    """One row per key: spend, calls, error mix, last seen, daily spend for a sparkline."""
    src = source_for(f)
    p: dict[str, Any] = {"tz": f.tz, "d0": f.start, "d1": f.end}
    names = ("cost", "calls", "unpriced_calls", "e401", "e403", "e429", "e5xx", "errors",
             "last_seen")
    sql = f"""
        WITH base AS (SELECT * REPLACE ({KEY_REF_SQL} AS key_id) FROM {src}
                      WHERE {where(f, src, p)}),
        days AS (SELECT CAST(d AS DATE) AS day FROM range($d0::DATE, $d1::DATE + INTERVAL 1 DAY,
                 INTERVAL 1 DAY) t(d)),
        per_day AS (SELECT key_id, CAST({bucket_expr('day', src)} AS DATE) AS day,
                    {measure('cost', src)} AS cost FROM base GROUP BY ALL),
        spark AS (SELECT k.key_id, list(coalesce(CAST(pd.cost AS DOUBLE), 0) ORDER BY days.day)
                    AS daily FROM (SELECT DISTINCT key_id FROM base) k CROSS JOIN days
                  LEFT JOIN per_day pd ON pd.key_id IS NOT DISTINCT FROM k.key_id
                    AND pd.day = days.day GROUP BY k.key_id),
        final AS (SELECT key_id, max(key_label) AS key_label, max(key_hint) AS key_hint,
                  {measures(names, src)} FROM base GROUP BY key_id)
        SELECT final.*, spark.daily FROM final LEFT JOIN spark
          ON spark.key_id IS NOT DISTINCT FROM final.key_id
        ORDER BY cost DESC NULLS LAST, calls DESC
    """
    return _df(_ledger, sql, p)


@_cached
def key_spikes(_ledger: Ledger, marker: str, f: Filters, baseline_days: int = 28
               ) -> pd.DataFrame:
    """``pricing.spikes`` on the period's last day (UTC), for the keys in view, from the daily
    rollup: the statistic ``callmeter recommend --alerts`` uses."""
    return spikes(_ledger.cursor(), f.end, baseline_days=baseline_days, key_ids=f.keys_in_view(),
                  rollup_table=DAILY)


@_cached
def recent_calls(_ledger: Ledger, marker: str, f: Filters, limit: int = 200) -> pd.DataFrame:
    """The newest calls matching ``f`` (a capped detail table; never the key itself), each
    with its cost as billed and as per-token and per-request (NULL where unpriced).

    Read from the cost memo when every memo in the period is current (``priced_source``: the
    same rows): the newest 200 of a 30-day period at 100M calls took 2.8-4.3 s through the
    ``priced_calls`` view (its union and version join defeat the top-N) and 14 ms from the memo.
    """
    p: dict[str, Any] = {"limit": int(limit)}
    source = priced_source(_ledger.cursor(), *f.bounds())
    sql = (f"SELECT started_at, key_label, key_hint, model, endpoint, status, billing_mode, "
           f"cost AS cost_as_billed, cost_as_token, cost_as_request, input_tokens, "
           f"output_tokens, latency_ms, "
           f"stream, usage_source FROM {source} AS c WHERE {where(f, RAW, p)} "
           f"ORDER BY started_at DESC LIMIT $limit")
    return _df(_ledger, sql, p)


# --- models: per-call shapes from the distribution rollup ----------------------------------

def dist_source(f: Filters, p: dict[str, Any]) -> str:
    """``rollup_dist`` rows matching ``f`` — from the table on whole UTC days, else the same bins
    computed from ``priced_calls`` — as a FROM item with columns day, the filter dimensions,
    ok, kind, bin and the bin's sums."""
    if source_for(f) == DAILY:
        return f"(SELECT * FROM {DIST} WHERE {where(f, DIST, p)})"
    raw = rollup.dist_select(f"WHERE {where(f, RAW, p)}")
    return f"({raw})"


# calls whose size is their tokens: text generation in every provider's format, embeddings
_TOKEN_ENDPOINTS = "(" + ", ".join(map(sql_literal, (*TEXT_ENDPOINTS, "embeddings"))) + ")"


@_cached
def tokens_per_call(_ledger: Ledger, marker: str, f: Filters) -> pd.DataFrame:
    """Histogram of tokens per call (input + output), one bin per octave, per model."""
    p: dict[str, Any] = {}
    per_octave = rollup.TOKEN_BINS_PER_OCTAVE
    sql = (f"SELECT model, CAST(pow(2, bin // {per_octave}) AS BIGINT) AS tokens_from, "
           f"sum(calls) AS calls FROM {dist_source(f, p)} WHERE kind = 'tokens' "
           f"AND endpoint IN {_TOKEN_ENDPOINTS} GROUP BY ALL ORDER BY model, tokens_from")
    return _df(_ledger, sql, p)


QUANTILES = (0.5, 0.9, 0.99)


@_cached
def latency_percentiles(_ledger: Ledger, marker: str, f: Filters) -> pd.DataFrame:
    """Approximate p50 / p90 / p99 of latency and time to first token (streams) per model, over
    successful calls: the centre of the eighth-octave bin holding the quantile (within ±4.5 %)."""
    p: dict[str, Any] = {}
    per_octave = rollup.TIME_BINS_PER_OCTAVE
    qs = ", ".join(f"({q}::DOUBLE)" for q in QUANTILES)
    sql = f"""
        WITH d AS (SELECT * FROM {dist_source(f, p)} WHERE ok),
        bins AS (SELECT model, kind, bin, sum(call_rows) AS n FROM d
                 WHERE kind IN ('latency', 'ttft') GROUP BY ALL),
        cum AS (SELECT *, sum(n) OVER (PARTITION BY model, kind ORDER BY bin) AS upto,
                sum(n) OVER (PARTITION BY model, kind) AS total FROM bins),
        picked AS (SELECT model, kind, q, min(bin) FILTER (WHERE upto >= q * total) AS bin
                   FROM cum, (VALUES {qs}) t(q) GROUP BY ALL),
        calls AS (SELECT model, sum(calls) AS calls FROM d WHERE kind = 'tokens' GROUP BY 1),
        final AS (SELECT calls.model, calls.calls, picked.kind, picked.q,
                  round(pow(2, (picked.bin + 0.5) / {per_octave}) - 1) AS ms
                  FROM calls LEFT JOIN picked USING (model))
        SELECT * FROM final
    """
    long = _df(_ledger, sql, p)
    out = pd.DataFrame(long.groupby("model", as_index=False)["calls"].max())
    for kind in ("latency", "ttft"):
        for q in QUANTILES:
            sel = long[(long["kind"] == kind) & (long["q"] == q)].set_index("model")["ms"]
            out[f"{kind}_p{round(q * 100)}"] = out["model"].map(sel)
    ranked: pd.DataFrame = out.sort_values(by="calls", ascending=False, ignore_index=True)
    return ranked


# --- billing modes -----------------------------------------------------------------------

@_cached
def billing_comparison(_ledger: Ledger, marker: str, f: Filters,
                       by: tuple[str, ...] = ("base_model",)) -> pd.DataFrame:
    """Per group (base model, key, ...): what was paid, what every call would cost per token and
    per request, the cheaper variant and the saving: ``pricing.variants``, the rule
    ``callmeter recommend`` uses, summed over the fastest source for ``f``."""
    src = source_for(f)
    p: dict[str, Any] = {}
    cols = [f"{group_expr(b, p)} AS {b.replace(':', '_')}" for b in by]
    if "key" in by:
        cols += ["max(key_label) AS key_label", "max(key_hint) AS key_hint"]
    groups = ", ".join(str(i + 1) for i in range(len(by)))
    totals = variant_totals_sql(variants.raw if src == RAW else variants.summed)
    sql = f"""
        WITH totals AS (SELECT {', '.join(cols)}, {totals}
                        FROM {src} WHERE {where(f, src, p)} GROUP BY {groups})
        SELECT *, {variant_choice_sql()} FROM totals
        ORDER BY actual_cost DESC NULLS LAST, calls DESC
    """
    return _df(_ledger, sql, p)


@_cached
def break_even(_ledger: Ledger, marker: str, f: Filters, base_model: str) -> dict[str, Any] | None:
    """``pricing.break_even_tokens`` for ``base_model`` over the period and the keys in view
    (cached-input prices, tiers and price history counted as in the costs), or None when no
    successful call of it has both prices."""
    start, end = f.bounds()
    df = break_even_tokens(_ledger.cursor(), base_model, since=start, until=end,
                           key_ids=f.keys_in_view())
    return records(df)[0] if len(df) else None


@_cached
def break_even_points(_ledger: Ledger, marker: str, f: Filters, base_model: str
                      ) -> pd.DataFrame:
    """This workload's successful calls of ``base_model`` binned by tokens per call (quarter
    octaves; ``tokens`` is the bin's centre), with the mean cost per call under each variant
    and the share of input tokens (for the per-token line)."""
    p: dict[str, Any] = {"bm": base_model}
    per_octave = rollup.TOKEN_BINS_PER_OCTAVE
    sql = f"""
        WITH final AS (
          SELECT CAST(round(pow(2, (bin + 0.5) / {per_octave}) - 1) AS BIGINT) AS tokens,
                 sum(calls) AS calls,
                 sum(cost_as_token) / sum(token_priced_calls) AS per_token_cost,
                 sum(cost_as_request) / sum(request_priced_calls) AS per_request_cost,
                 sum(input_tokens) / nullif(sum(tokens), 0) AS input_share,
                 sum(input_tokens) AS input_tokens, sum(tokens) AS tokens_sum
          FROM {dist_source(f, p)} WHERE kind = 'tokens' AND ok AND base_model = $bm
          GROUP BY bin)
        SELECT * FROM final ORDER BY tokens
    """
    return _df(_ledger, sql, p)


# --- finance, prices, data ---------------------------------------------------------------

FINANCE_EXTRA = ("token_cost", "request_cost", "charged", "charged_calls", "cost_where_charged",
                 "unpriced_tokens")


def month_filters(month: date, scope_keys: tuple[str, ...] | None = None) -> Filters:
    """A calendar month in UTC, as ``callmeter report --month`` counts it."""
    first = month.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return Filters(start=first, end=nxt - timedelta(days=1), tz="UTC", scope_keys=scope_keys)


@_cached
def months(_ledger: Ledger, marker: str) -> list[date]:
    rows = _ledger.cursor().execute(
        f"SELECT DISTINCT CAST(date_trunc('month', timezone('UTC', day)) AS DATE) "
        f"FROM (SELECT DISTINCT day FROM {DAILY}) ORDER BY 1 DESC").fetchall()
    return [r[0] for r in rows]


@_cached
def prices_table(_ledger: Ledger, marker: str) -> pd.DataFrame:
    return _df(_ledger, "SELECT * FROM prices ORDER BY model, effective_from", {})


@_cached
def ledger_cost(_ledger: Ledger, marker: str) -> dict[str, Any]:
    """Priced total and unpriced calls over the whole ledger (the Prices page's before/after)."""
    row = fetch_one(_ledger.cursor().execute(
        f"SELECT sum(cost), coalesce(sum(unpriced_calls), 0) FROM {DAILY}"))
    return {"cost": row[0], "unpriced_calls": row[1]}


@_cached
def unpriced_models(_ledger: Ledger, marker: str) -> pd.DataFrame:
    """Models called without a price, over the whole ledger."""
    sql = (f"SELECT model, sum(unpriced_calls) AS unpriced_calls, sum(unpriced_tokens) AS "
           f"tokens, max(last_seen) AS last_seen FROM {DAILY} GROUP BY model "
           f"HAVING sum(unpriced_calls) > 0 ORDER BY unpriced_calls DESC")
    return _df(_ledger, sql, {})


@_cached
def import_log(_ledger: Ledger, marker: str, limit: int = 50) -> pd.DataFrame:
    sql = ("SELECT started_at, file, format, read_rows, imported, duplicates, skipped, rejected "
           "FROM imports ORDER BY started_at DESC LIMIT $n")
    return _df(_ledger, sql, {"n": int(limit)})


def last_proxy_call(ledger: Ledger) -> object:
    """Newest call recorded by the proxy (not cached: the Data page shows it live)."""
    return fetch_one(ledger.cursor().execute(
        "SELECT max(started_at) FROM calls WHERE source = 'proxy'"))[0]


# --- pricing's engines (issue 7), cached here ---------------------------------------------

@_cached
def month_forecast(_ledger: Ledger, marker: str, when: AsOf, key: str | None = None,
                   tag: str | None = None) -> dict[str, Any]:
    """``pricing.forecast.month_forecast`` for ``when.month`` as of ``when.day`` (the as-of the
    budgets share); ``key`` is a fingerprint, hint, label or a page's ``label:NAME``."""
    from pricing.forecast import month_forecast as forecast

    key = (key_ref_label(key) or key) if key else None
    fc = forecast(_ledger.cursor(), when.month, as_of=when.day, key=key, tag=tag)
    return {"as_of": fc.as_of, "spent": fc.spent, "total": fc.total, "low": fc.low,
            "high": fc.high, "method": fc.method, "daily": fc.daily}


@_cached
def finance_pack(_ledger: Ledger, marker: str, month: date, by: str) -> FinanceReport:
    """``pricing.report.finance_report``: the same pack `callmeter report` writes."""
    from pricing.report import finance_report

    return finance_report(_ledger.cursor(), month, by, all_dimensions=True)


@_cached
def recommendations(_ledger: Ledger, marker: str, since: date, until: date) -> list[dict[str, Any]]:
    """``pricing.recommend.recommend`` over [since, until): every kind (billing-variant switch,
    cheaper model, prompt cache, rate limits, estimated usage), largest saving first."""
    from pricing.recommend import recommend

    return [r.to_dict() for r in recommend(_ledger.cursor(), since, until)]


def _rec_in_view(r: dict[str, Any], f: Filters, keys: tuple[str, ...] | None) -> bool:
    """A recommendation concerns the sidebar's view: its key (a fingerprint or ``label:NAME``,
    as the sidebar names keys; keyless calls only when no key is chosen) is in view and its
    (base) model one of the chosen models."""
    if keys is not None and r.get("key_id") not in keys:
        return False
    if f.models and r.get("model") is not None:
        return r["model"] in {split_model(m)[0] for m in f.models}
    return True


def recommendations_in_view(ledger: Ledger, marker: str, f: Filters,
                            key_labels: dict[str, str]) -> list[dict[str, Any]]:
    """``pricing.recommend.recommend`` over the sidebar's period (in its timezone), kept to the
    keys and models in view; each gains ``key_name`` (the sidebar's label for its key, else
    the calls' label or hint; None for keyless calls) and ``monthly_saving`` (the period's
    saving scaled to 30 days)."""
    since, until = f.bounds()
    out = []
    for r in _recommendations_between(ledger, marker, since, until):
        if not _rec_in_view(r, f, f.keys_in_view()):
            continue
        saving = None if r["saving"] is None else Decimal(r["saving"])
        key = r.get("key_id")
        name = (key_labels.get(key) or key_ref_label(key) or r.get("key_label")
                or r.get("key_hint")) if key else None
        out.append({**r, "saving": saving, "key_name": name,
                    "monthly_saving": None if saving is None else saving * 30 / f.days})
    return out


def monthly_saving(recs: list[dict[str, Any]]) -> Decimal:
    """What acting on ``recs`` saves a month: alternatives for one workload (key × model ×
    tag: a variant switch, two cheaper models) do not add up, so each counts its largest."""
    best: dict[tuple[Any, ...], Decimal] = {}
    for r in recs:
        if r["monthly_saving"] is not None:
            k = (r.get("key_id"), r.get("model"), r.get("tag"))
            best[k] = max(best.get(k, r["monthly_saving"]), r["monthly_saving"])
    return sum(best.values(), Decimal(0))


@_cached
def _recommendations_between(_ledger: Ledger, marker: str, since: Any, until: Any
                             ) -> list[dict[str, Any]]:
    from pricing.recommend import recommend

    return [r.to_dict() for r in recommend(_ledger.cursor(), since, until)]


@_cached
def quote(_ledger: Ledger, marker: str, workload: Workload) -> Quote:
    """``pricing.quote.quote`` (what ``callmeter quote`` prints) on the ledger's price sheet,
    with the cheaper-model candidates of the shipped data/models.csv."""
    from pricing.quote import quote as price_workload
    from pricing.recommend import MODELS_CSV, load_models

    return price_workload(_ledger.cursor(), workload, load_models(MODELS_CSV))


def priced_models(ledger: Ledger, marker: str) -> list[str]:
    """Base models the sheet prices (per token or per request), for the quote's model list."""
    models = prices_table(ledger, marker)["model"].dropna().astype(str)
    return sorted({split_model(m)[0] for m in models})


@_cached
def sheet_impact(_ledger: Ledger, marker: str, sha256: str, _sheet: PriceSheet) -> SheetImpact:
    """``pricing.whatif.sheet_impact`` of a candidate sheet (cached by its content hash)."""
    from pricing.whatif import sheet_impact as impact

    return impact(_ledger.cursor(), _sheet)


def previous_sheet(ledger: Ledger) -> tuple[LoadedSheet, PriceSheet] | None:
    """The sheet loaded before the current one, for an undo (read live: loads change it)."""
    from pricing.whatif import previous_sheet as previous

    return previous(ledger.cursor())


def key_budgets(ledger: Ledger, key: str, names: tuple[str | None, ...]) -> tuple[Any, ...]:
    """The budgets set on ``key`` (scope key, target its fingerprint, hint or label), read live:
    budgets change without new calls, so they key the cached status below."""
    from pricing.budgets import list_budgets

    wanted = {key, *(n for n in names if n)}
    return tuple((b.target, str(b.monthly)) for b in list_budgets(ledger.cursor())
                 if b.scope == "key" and b.target in wanted)


@_cached
def key_budget(_ledger: Ledger, marker: str, budgets: tuple[Any, ...], when: AsOf
               ) -> list[dict[str, Any]]:
    """``pricing.budgets.budget_status`` rows for ``budgets`` (from :func:`key_budgets`) as of
    ``when``: monthly, spent, share used, burn per day, projection, run-out date."""
    if not budgets:
        return []
    from pricing.budgets import budget_status

    status = budget_status(_ledger.cursor(), when=when)
    targets = {t for t, _ in budgets}
    rows = status[(status["scope"] == "key") & status["target"].isin(targets)]
    return records(rows)
