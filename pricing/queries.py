"""Every SQL statement of the pricing package, named, in one place. Values are always bound.

The cost formula lives here once (``PRICED_CALLS_VIEW_SQL``); ``tests/pricing`` checks it
against hand-computed figures and against genai-prices.
"""

from __future__ import annotations

from ledger import NON_BILLABLE_ENDPOINTS, sql_literal

from .groups import KEY_REF_SQL
from .periods import utc_day_sql
from .variants import VARIANT_COLUMNS, raw, variant_choice_sql, variant_totals_sql

# endpoint IN (...) of the calls a platform never bills
NON_BILLABLE_SQL = "(" + ", ".join(map(sql_literal, NON_BILLABLE_ENDPOINTS)) + ")"
# A call the platform never bills: a non-billable endpoint, or no model at all (GET /models,
# new-api's /api/status and other calls that name no model through the proxy): cost 0, priced.
NOT_BILLED_SQL = (f"(coalesce(endpoint IN {NON_BILLABLE_SQL}, false) "
                  "OR nullif(trim(model), '') IS NULL)")
# A dated snapshot or alias of a model (gpt-4o-2024-08-06, gpt-4-0613, claude-sonnet-4-5-20250929,
# gemini-2.0-flash-001, claude-3-5-sonnet-latest) is priced from its base model's row when the
# sheet has no row of its own; ``price_model`` says which row priced a call.
SNAPSHOT_SUFFIX_RE = r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|\d{3}|latest)$"

PRICES_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS prices (
    model VARCHAR,
    effective_from DATE,
    above_input_tokens BIGINT,
    input DECIMAL(18,9),
    cached_input DECIMAL(18,9),
    output DECIMAL(18,9),
    request DECIMAL(18,9),
    image DECIMAL(18,9),
    audio_minute DECIMAL(18,9),
    characters DECIMAL(18,9),
    currency VARCHAR,
    sheet_line INTEGER
)
"""

PRICE_SHEETS_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS price_sheets (
    sheet VARCHAR,
    sha256 VARCHAR,
    loaded_at TIMESTAMPTZ,
    rows INTEGER,
    models INTEGER,
    currency VARCHAR
)
"""

DELETE_PRICES_SQL = "DELETE FROM prices"

# m008: prompt-cache write prices (blank: cache_write = input, cache_write_long = cache_write)
ADD_CACHE_WRITE_PRICE_COLUMNS_SQL = [
    f"ALTER TABLE prices ADD COLUMN IF NOT EXISTS {name} DECIMAL(18,9)"
    for name in ("cache_write", "cache_write_long")]

INSERT_PRICE_SQL = """
INSERT INTO prices (model, effective_from, above_input_tokens, input, cached_input, output,
                    request, image, audio_minute, characters, currency, sheet_line, cache_write,
                    cache_write_long)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

INSERT_PRICE_SHEET_SQL = """
INSERT INTO price_sheets (sheet, sha256, loaded_at, rows, models, currency)
VALUES (?, ?, ?, ?, ?, ?)
"""

LATEST_PRICE_SHEET_SQL = """
SELECT sheet, sha256, loaded_at, rows, models, currency
FROM price_sheets ORDER BY loaded_at DESC LIMIT 1
"""

# m010: every loaded sheet's rows by its sha256, so the dashboard can undo to the sheet before
# (price_sheets alone records which sheet was loaded when, not its rows)
PRICE_SHEET_ROWS_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS price_sheet_rows AS
SELECT CAST(NULL AS VARCHAR) AS sha256, * FROM prices LIMIT 0
"""
KEEP_SHEET_ROWS_SQL = """
INSERT INTO price_sheet_rows BY NAME
SELECT CAST(? AS VARCHAR) AS sha256, * FROM prices
WHERE NOT EXISTS (SELECT 1 FROM price_sheet_rows WHERE sha256 = ?)
"""
PREVIOUS_SHEET_SQL = """
SELECT sheet, sha256, loaded_at, rows, models, currency FROM price_sheets
WHERE sha256 IS DISTINCT FROM (SELECT sha256 FROM price_sheets ORDER BY loaded_at DESC LIMIT 1)
  AND sha256 IN (SELECT sha256 FROM price_sheet_rows)
ORDER BY loaded_at DESC LIMIT 1
"""
SHEET_ROWS_SQL = """
SELECT sheet_line, model, effective_from, input, cached_input, output, request, image,
  audio_minute, characters, cache_write, cache_write_long, coalesce(above_input_tokens, 0),
  currency
FROM price_sheet_rows WHERE sha256 = ? ORDER BY sheet_line, model, effective_from
"""

# priced_calls: every calls column, then the costs.
#
# 1. prices become validity periods, computed from the small prices table alone: each version of
#    a model is valid from its effective_from (00:00 UTC) until the next version's; the version's
#    tiers are laid side by side (t0 base, t1, t2). Per-request rows are keyed by their base model.
#    Calls meet those periods in a hash join on the model with the time range as a filter, so
#    the view never scans calls twice and never converts a timestamp to a calendar date;
# 2. each call takes the highest tier its input tokens per request (rounded up, so aggregated
#    rows use their average call) exceed;
# 3. costs are DECIMAL(38,15): per-1M prices are multiplied by 0.000001 (a DECIMAL division
#    would turn into DOUBLE), audio seconds are priced in integer units of 1e-15 and rounded
#    half up, because seconds x price-per-minute / 60 has no finite decimal in general.
# A usage count above zero whose unit has no price makes the cost NULL (unpriced, not 0).
# A failed call (status >= 400) costs 0 even for an unpriced model: nothing was charged;
# ``priced`` still says whether the sheet knows the model. A call the platform never bills
# (NON_BILLABLE_ENDPOINTS: count_tokens, models, probe) costs 0 and counts as priced.
# Input tokens split four ways (cached ⊆ input, cache writes ⊆ input, long writes ⊆ writes):
# cache reads at cached_input, writes at cache_write (long ones at cache_write_long), the rest
# at input.
MAX_TIERS = 3  # base row + 2 tier rows per model and day (the sheet checks this)

_TIER_PRICES = ("input_pt", "cached_pt", "output_pt", "image", "audio_minute_nano",
                "characters_pt", "cache_write_pt", "cache_write_long_pt")


def _tier_pick(col: str) -> str:
    """The price of ``col`` in the highest tier whose start the call's tokens reach."""
    whens = " ".join(f"WHEN _tier_tokens >= tp.t{i}_start THEN tp.t{i}_{col}"
                     for i in range(MAX_TIERS - 1, 0, -1))
    return f"CASE {whens} ELSE tp.t0_{col} END"


def _tier_joins() -> str:
    return "\n".join(
        f"    LEFT JOIN price_rows t{i} ON t{i}.model = v.model "
        f"AND t{i}.effective_from = v.effective_from AND t{i}.tier_rank = {i}"
        for i in range(MAX_TIERS))


def _tier_columns() -> str:
    cols = []
    for i in range(MAX_TIERS):
        cols.append(f"t{i}.tier_start AS t{i}_start")
        cols += [f"t{i}.{c} AS t{i}_{c}" for c in _TIER_PRICES]
    return ",\n        ".join(cols)


_PRICED_HEAD_SQL = f"""
WITH sheet_models AS (
    SELECT DISTINCT regexp_replace(model, '-c$', '') AS model FROM prices
),
price_rows AS (
    SELECT model, effective_from, currency,
        CASE WHEN coalesce(above_input_tokens, 0) = 0 THEN 0
             ELSE above_input_tokens + 1 END AS tier_start,
        row_number() OVER (PARTITION BY model, effective_from
                           ORDER BY coalesce(above_input_tokens, 0)) - 1 AS tier_rank,
        input * 0.000001 AS input_pt,
        coalesce(cached_input, input) * 0.000001 AS cached_pt,
        output * 0.000001 AS output_pt,
        request,
        image,
        CAST(audio_minute * 1000000000 AS BIGINT) AS audio_minute_nano,
        characters * 0.000001 AS characters_pt,
        coalesce(cache_write, input) * 0.000001 AS cache_write_pt,
        coalesce(cache_write_long, cache_write, input) * 0.000001 AS cache_write_long_pt
    FROM prices
),
versions AS (
    SELECT model, effective_from,
        timezone('UTC', CAST(effective_from AS TIMESTAMP)) AS valid_from,
        coalesce(timezone('UTC', CAST(lead(effective_from) OVER (
            PARTITION BY model ORDER BY effective_from) AS TIMESTAMP)),
            TIMESTAMPTZ '9999-12-31 00:00:00+00') AS valid_to
    FROM (SELECT DISTINCT model, effective_from FROM prices)
),
token_periods AS (
    SELECT v.model, v.effective_from, v.valid_from, v.valid_to,
        {_tier_columns()},
        t0.currency AS currency
    FROM versions v
{_tier_joins()}
),
request_periods AS (
    SELECT regexp_replace(v.model, '-c$', '') AS base_model, v.effective_from, v.valid_from,
        v.valid_to, r.request, r.currency
    FROM versions v JOIN price_rows r
      ON r.model = v.model AND r.effective_from = v.effective_from AND r.tier_rank = 0
    WHERE v.model LIKE '%-c'
),
keyed AS (
    SELECT c.*,
        CASE WHEN coalesce(c.requests, 1) > 1
             THEN (coalesce(c.input_tokens, 0) + c.requests - 1) // c.requests
             ELSE coalesce(c.input_tokens, 0) END AS _tier_tokens,
        tp.effective_from AS _token_from, rp.effective_from AS _request_from,
        tp.t0_start IS NOT NULL AS _t_found, rp.request IS NOT NULL AS _r_found,
        {_tier_pick('input_pt')} AS _t_input,
        {_tier_pick('cached_pt')} AS _t_cached,
        {_tier_pick('output_pt')} AS _t_output,
        {_tier_pick('image')} AS _t_image,
        {_tier_pick('audio_minute_nano')} AS _t_audio,
        {_tier_pick('characters_pt')} AS _t_chars,
        {_tier_pick('cache_write_pt')} AS _t_write,
        {_tier_pick('cache_write_long_pt')} AS _t_write_long,
        least(coalesce(c.cache_write_tokens, 0),
              greatest(coalesce(c.input_tokens, 0) - coalesce(c.cached_tokens, 0), 0))
            AS _n_write,
        least(coalesce(c.cache_write_long_tokens, 0), coalesce(c.cache_write_tokens, 0),
              greatest(coalesce(c.input_tokens, 0) - coalesce(c.cached_tokens, 0), 0))
            AS _n_write_long,
        rp.request AS _r_request, tp.currency AS _t_currency, rp.currency AS _r_currency
    FROM (SELECT c0.*, CASE WHEN sm.model IS NULL
                 THEN regexp_replace(c0.base_model, '{SNAPSHOT_SUFFIX_RE}', '')
                 ELSE c0.base_model END AS _price_key
          FROM {{source}} c0 LEFT JOIN sheet_models sm ON sm.model = c0.base_model) c
    LEFT JOIN token_periods tp ON tp.model = c._price_key
      AND c.started_at >= tp.valid_from AND c.started_at < tp.valid_to
    LEFT JOIN request_periods rp ON rp.base_model = c._price_key
      AND c.started_at >= rp.valid_from AND c.started_at < rp.valid_to
),
"""

_PRICED_TAIL_SQL = """
costed AS (
    SELECT *,
        CASE
          WHEN {not_billed} THEN CAST(0 AS DECIMAL(38,15))
          WHEN NOT _t_found THEN NULL
          WHEN coalesce(status, 200) >= 400 THEN CAST(0 AS DECIMAL(38,15))
          ELSE CAST(
              (CASE WHEN greatest(input_tokens - cached_tokens - _n_write, 0) = 0 THEN 0
                    ELSE greatest(input_tokens - cached_tokens - _n_write, 0) * _t_input END)
            + (CASE WHEN least(cached_tokens, input_tokens) <= 0 THEN 0
                    ELSE least(cached_tokens, input_tokens) * _t_cached END)
            + (CASE WHEN _n_write - _n_write_long = 0 THEN 0
                    ELSE (_n_write - _n_write_long) * _t_write END)
            + (CASE WHEN _n_write_long = 0 THEN 0 ELSE _n_write_long * _t_write_long END)
            + (CASE WHEN output_tokens = 0 THEN 0 ELSE output_tokens * _t_output END)
            + (CASE WHEN images = 0 THEN 0 ELSE CAST(images AS BIGINT) * _t_image END)
            + (CASE WHEN characters = 0 THEN 0
                    ELSE CAST(characters AS BIGINT) * _t_chars END)
            + (CASE WHEN coalesce(audio_seconds, 0) = 0 THEN 0
                    ELSE CAST(CAST(
                        (CAST(round(audio_seconds * 1000) AS HUGEINT) * _t_audio * 1000 + 30)
                        // 60 AS DECIMAL(38,0)) * CAST('0.000000000000001' AS DECIMAL(16,15))
                      AS DECIMAL(38,15)) END)
            AS DECIMAL(38,15))
        END AS cost_as_token,
        CASE
          WHEN {not_billed} THEN CAST(0 AS DECIMAL(38,15))
          WHEN NOT _r_found THEN NULL
          WHEN coalesce(status, 200) >= 400 THEN CAST(0 AS DECIMAL(38,15))
          ELSE CAST(CAST(coalesce(requests, 1) AS BIGINT) * _r_request AS DECIMAL(38,15))
        END AS cost_as_request
    FROM keyed
)
SELECT * EXCLUDE (_price_key, _tier_tokens, _token_from, _request_from, _t_found, _r_found,
                  _t_input, _t_cached, _t_output, _t_image, _t_audio, _t_chars, _t_currency,
                  _t_write, _t_write_long, _n_write, _n_write_long, _r_request, _r_currency),
    CASE
      WHEN {not_billed} THEN CAST(0 AS DECIMAL(38,15))
      WHEN coalesce(status, 200) >= 400 THEN CAST(0 AS DECIMAL(38,15))
      WHEN billing_mode = 'request' THEN cost_as_request
      ELSE cost_as_token
    END AS cost,
    CASE WHEN {not_billed} THEN true
         WHEN billing_mode = 'request' THEN _r_found ELSE _t_found END AS priced,
    CASE WHEN billing_mode = 'request' THEN _request_from ELSE _token_from END
        AS price_effective_from,
    coalesce(CASE WHEN billing_mode = 'request' THEN _r_currency ELSE _t_currency END,
             _t_currency, _r_currency) AS currency,
    CASE WHEN {not_billed} THEN NULL
         WHEN CASE WHEN billing_mode = 'request' THEN _r_found ELSE _t_found END
         THEN _price_key END AS price_model
FROM costed
""".replace("{not_billed}", NOT_BILLED_SQL)

# Costs are memoised in the calls table (memo_* columns), computed on insert and on every
# prices change, and tagged with the version (a hash of the prices table) they were computed
# under. priced_calls reads the memo where it is current and prices the rest live, so it is
# always right, and fast once `insert` / `prices load` have refreshed the memo.
PRICED_COLUMNS_MEMO = {
    "cost_as_token": "memo_cost_as_token",
    "cost_as_request": "memo_cost_as_request",
    "cost": "memo_cost",
    "priced": "memo_priced",
    "price_effective_from": "memo_price_effective_from",
    "currency": "memo_currency",
    "price_model": "memo_price_model",
}
MEMO_COLUMNS_SQL = {
    "memo_cost_as_token": "DECIMAL(38,15)",
    "memo_cost_as_request": "DECIMAL(38,15)",
    "memo_cost": "DECIMAL(38,15)",
    "memo_priced": "BOOLEAN",
    "memo_price_effective_from": "DATE",
    "memo_currency": "VARCHAR",
    "memo_price_model": "VARCHAR",
    "memo_prices_version": "VARCHAR",
}
ADD_MEMO_COLUMNS_SQL = [f"ALTER TABLE calls ADD COLUMN IF NOT EXISTS {name} {typ}"
                        for name, typ in MEMO_COLUMNS_SQL.items()]

# A change of the cost formula itself (a migration) makes every memo stale.
FORGET_MEMO_SQL = ("UPDATE calls SET memo_prices_version = NULL "
                   "WHERE memo_prices_version IS NOT NULL")

PRICES_VERSION_SQL = """
SELECT md5(coalesce(string_agg(CAST(p AS VARCHAR), '|' ORDER BY CAST(p AS VARCHAR)), ''))
FROM prices p
"""


def priced_select(source: str) -> str:
    """Price every row of ``source`` (a relation with the calls columns) live."""
    return _PRICED_HEAD_SQL.replace("{source}", source) + _PRICED_TAIL_SQL


def calls_columns_sql() -> str:
    """Every calls column but the memo."""
    return "* EXCLUDE (" + ", ".join(MEMO_COLUMNS_SQL) + ")"


_CURRENT = f"({PRICES_VERSION_SQL.strip()})"

# m003: every call priced live (kept as shipped; m005 replaces it with the memo-backed view).
PRICED_CALLS_LIVE_VIEW_SQL = f"""
CREATE OR REPLACE VIEW priced_calls AS
SELECT * FROM ({priced_select("calls")})
"""

def priced_calls_sql(where: str = "") -> str:
    """``priced_calls``' rows: the memo where it was priced under today's sheet, else priced
    live. ``where`` (a condition on ``calls``, ``rowid`` included) narrows both halves before
    anything is priced: the rollup append reads only the new rows this way."""
    also = f" AND ({where})" if where else ""
    return f"""SELECT {calls_columns_sql()},
    {", ".join(f"{memo} AS {col}" for col, memo in PRICED_COLUMNS_MEMO.items())}
FROM calls WHERE memo_prices_version = {_CURRENT}{also}
UNION ALL BY NAME
SELECT * FROM ({priced_select(f"(SELECT {calls_columns_sql()} FROM calls "
                              f"WHERE memo_prices_version IS DISTINCT FROM {_CURRENT}{also})")})
"""


PRICED_CALLS_VIEW_SQL = "\nCREATE OR REPLACE VIEW priced_calls AS\n" + priced_calls_sql()

# Refresh the memo of rows priced under another version (all rows after a prices change).
REFRESH_MEMO_SQL = f"""
UPDATE calls SET
    {", ".join(f"{memo} = live.{col}" for col, memo in PRICED_COLUMNS_MEMO.items())},
    memo_prices_version = v._version
FROM ({priced_select(f"(SELECT {calls_columns_sql()} FROM calls "
                     f"WHERE memo_prices_version IS DISTINCT FROM {_CURRENT})")}) live,
     (SELECT {_CURRENT} AS _version) v
WHERE calls.call_id = live.call_id
  AND calls.memo_prices_version IS DISTINCT FROM v._version
"""

# Column order of priced_calls after the calls columns (the contract names come first).
PRICED_COLUMNS = ("cost_as_token", "cost_as_request", "cost", "priced",
                  "price_effective_from", "currency", "price_model")

# Models with calls that the loaded prices do not price (no row for the model on the call's
# day, or a usage unit without a price), with call counts.
UNPRICED_MODELS_SQL = """
SELECT model, billing_mode,
    sum(coalesce(requests, 1)) AS calls,
    count(*) AS rows,
    min(started_at) AS first_call,
    max(started_at) AS last_call,
    CASE WHEN bool_and(NOT priced) THEN 'no price for the model on the call date'
         WHEN bool_and(priced) THEN 'a usage unit (images, audio, characters) has no price'
         ELSE 'no price on some call dates' END AS reason
FROM priced_calls
WHERE NOT priced OR cost IS NULL
GROUP BY model, billing_mode
ORDER BY calls DESC, model
"""

# Calls per model and UTC day: enough to tell, for a sheet not loaded yet, what it leaves
# unpriced (``prices check``).
CALL_DAYS_SQL = f"""
SELECT model, base_model, billing_mode,
    {utc_day_sql("started_at")} AS day,
    sum(coalesce(requests, 1)) AS calls
FROM calls
WHERE NOT {NOT_BILLED_SQL}
GROUP BY ALL
"""

# Restricts priced_calls to [since, until) in UTC; both bounds optional (NULL).
_PERIOD = """
    ($since IS NULL OR started_at >= timezone('UTC', CAST($since AS TIMESTAMP)))
    AND ($until IS NULL OR started_at < timezone('UTC', CAST($until AS TIMESTAMP)))
"""

SWITCH_SAVINGS_SQL = f"""
WITH per_workload AS (
    SELECT key_id,
        any_value(key_hint) AS key_hint,
        any_value(key_label) AS key_label,
        base_model,
        {variant_totals_sql(raw)}
    FROM priced_calls
    WHERE {_PERIOD}
    GROUP BY key_id, base_model
),
final AS (SELECT *, {variant_choice_sql()} FROM per_workload)
SELECT key_id, key_hint, key_label, base_model, {", ".join(VARIANT_COLUMNS)}
FROM final
ORDER BY saving DESC NULLS LAST, actual_cost DESC NULLS LAST, key_id, base_model
"""

# Totals behind break-even: successful calls priced both ways, in the period. Keys are key
# references (KEY_REF_SQL: a label-only key is ``label:NAME``, as the sidebar names it).
# {group} comes from an allowlist in compare.py, never from user input.
BREAK_EVEN_TOTALS_SQL = """
SELECT {group},
    sum(coalesce(requests, 1)) AS calls,
    sum(input_tokens) AS input_tokens,
    sum(cached_tokens) AS cached_tokens,
    sum(coalesce(cache_write_tokens, 0)) AS cache_write_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cost_as_token) AS token_cost,
    sum(cost_as_request) AS request_cost
FROM priced_calls
WHERE coalesce(status, 200) < 400
  AND cost_as_token IS NOT NULL AND cost_as_request IS NOT NULL
  AND ($base_model IS NULL OR base_model = $base_model)
  AND ($key_ids IS NULL OR list_contains(CAST($key_ids AS VARCHAR[]), {key_ref}))
  AND {period}
GROUP BY ALL
ORDER BY ALL
""".replace("{period}", _PERIOD).replace("{key_ref}", KEY_REF_SQL)

# The same totals from a rollup whose period is whole UTC days or hours (pricing.compare picks
# it; {source} and {time} name it and its time column): its ``both_priced_*`` columns sum only
# the calls priced both ways, and a rollup row none of whose calls were is no group's.
BREAK_EVEN_ROLLUP_SQL = """
SELECT {group},
    sum(both_priced_calls) AS calls,
    sum(both_priced_input_tokens) AS input_tokens,
    sum(both_priced_cached_tokens) AS cached_tokens,
    sum(both_priced_cache_write_tokens) AS cache_write_tokens,
    sum(both_priced_output_tokens) AS output_tokens,
    sum(both_priced_token_cost) AS token_cost,
    sum(both_priced_request_cost) AS request_cost
FROM {source}
WHERE coalesce(status, 200) < 400
  AND both_priced_rows > 0
  AND ($base_model IS NULL OR base_model = $base_model)
  AND ($key_ids IS NULL OR list_contains(CAST($key_ids AS VARCHAR[]), {key_ref}))
  AND {period}
GROUP BY ALL
ORDER BY ALL
""".replace("{period}", _PERIOD.replace("started_at", "{time}")).replace(
    "{key_ref}", KEY_REF_SQL)
