"""Every SQL statement of the pricing package, named, in one place. Values are always bound.

The cost formula lives here once (``PRICED_CALLS_VIEW_SQL``); ``tests/pricing`` checks it
against hand-computed figures and against genai-prices.
"""

from __future__ import annotations

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

INSERT_PRICE_SQL = """
INSERT INTO prices (model, effective_from, above_input_tokens, input, cached_input, output,
                    request, image, audio_minute, characters, currency, sheet_line)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

INSERT_PRICE_SHEET_SQL = """
INSERT INTO price_sheets (sheet, sha256, loaded_at, rows, models, currency)
VALUES (?, ?, ?, ?, ?, ?)
"""

LATEST_PRICE_SHEET_SQL = """
SELECT sheet, sha256, loaded_at, rows, models, currency
FROM price_sheets ORDER BY loaded_at DESC LIMIT 1
"""

# priced_calls: every calls column, then the costs.
#
# 1. the call's UTC day picks the price version (ASOF: latest effective_from <= day), once for
#    the per-token row (base_model) and once for the per-request row (base_model || '-c');
# 2. within that version the tier is chosen (ASOF: highest threshold below the call's input
#    tokens per request, rounded up, so aggregated rows use their average call);
# 3. costs are DECIMAL(38,15): per-1M prices are multiplied by 0.000001 (a DECIMAL division
#    would turn into DOUBLE), audio seconds are priced in integer units of 1e-15 and rounded
#    half up, because seconds x price-per-minute / 60 has no finite decimal in general.
# A usage count above zero whose unit has no price makes the cost NULL (unpriced, not 0).
# A failed call (status >= 400) costs 0 even for an unpriced model: nothing was charged;
# ``priced`` still says whether the sheet knows the model.
PRICED_CALLS_VIEW_SQL = """
CREATE OR REPLACE VIEW priced_calls AS
WITH price_rows AS (
    SELECT model, effective_from, currency,
        CASE WHEN coalesce(above_input_tokens, 0) = 0 THEN 0
             ELSE above_input_tokens + 1 END AS tier_start,
        input * 0.000001 AS input_pt,
        coalesce(cached_input, input) * 0.000001 AS cached_pt,
        output * 0.000001 AS output_pt,
        request,
        image,
        CAST(audio_minute * 1000000000 AS BIGINT) AS audio_minute_nano,
        characters * 0.000001 AS characters_pt
    FROM prices
),
price_versions AS (
    SELECT DISTINCT model, effective_from FROM prices
),
keyed AS (
    SELECT c.*,
        CAST(timezone('UTC', c.started_at) AS DATE) AS _day,
        CASE WHEN coalesce(c.requests, 1) > 1
             THEN (coalesce(c.input_tokens, 0) + c.requests - 1) // c.requests
             ELSE coalesce(c.input_tokens, 0) END AS _tier_tokens,
        c.base_model || '-c' AS _request_model
    FROM calls c
),
token_version AS (
    SELECT k.*, v.effective_from AS _token_from
    FROM keyed k ASOF LEFT JOIN price_versions v
      ON v.model = k.base_model AND k._day >= v.effective_from
),
both_versions AS (
    SELECT t.*, v.effective_from AS _request_from
    FROM token_version t ASOF LEFT JOIN price_versions v
      ON v.model = t._request_model AND t._day >= v.effective_from
),
token_priced AS (
    SELECT b.*, p.tier_start AS _t_tier, p.input_pt AS _t_input, p.cached_pt AS _t_cached,
        p.output_pt AS _t_output, p.image AS _t_image, p.audio_minute_nano AS _t_audio,
        p.characters_pt AS _t_chars, p.currency AS _t_currency
    FROM both_versions b ASOF LEFT JOIN price_rows p
      ON p.model = b.base_model AND p.effective_from = b._token_from
     AND b._tier_tokens >= p.tier_start
),
all_priced AS (
    SELECT t.*, p.request AS _r_request, p.currency AS _r_currency,
        p.effective_from IS NOT NULL AS _r_found
    FROM token_priced t ASOF LEFT JOIN price_rows p
      ON p.model = t._request_model AND p.effective_from = t._request_from
     AND t._tier_tokens >= p.tier_start
),
costed AS (
    SELECT *,
        CASE
          WHEN _t_tier IS NULL THEN NULL
          WHEN coalesce(status, 200) >= 400 THEN CAST(0 AS DECIMAL(38,15))
          ELSE CAST(
              (CASE WHEN greatest(input_tokens - cached_tokens, 0) = 0 THEN 0
                    ELSE greatest(input_tokens - cached_tokens, 0) * _t_input END)
            + (CASE WHEN least(cached_tokens, input_tokens) <= 0 THEN 0
                    ELSE least(cached_tokens, input_tokens) * _t_cached END)
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
          WHEN NOT _r_found OR _r_request IS NULL THEN NULL
          WHEN coalesce(status, 200) >= 400 THEN CAST(0 AS DECIMAL(38,15))
          ELSE CAST(CAST(coalesce(requests, 1) AS BIGINT) * _r_request AS DECIMAL(38,15))
        END AS cost_as_request
    FROM all_priced
)
SELECT * EXCLUDE (_day, _tier_tokens, _request_model, _token_from, _request_from, _t_tier,
                  _t_input, _t_cached, _t_output, _t_image, _t_audio, _t_chars, _t_currency,
                  _r_request, _r_currency, _r_found),
    CASE
      WHEN coalesce(status, 200) >= 400 THEN CAST(0 AS DECIMAL(38,15))
      WHEN billing_mode = 'request' THEN cost_as_request
      ELSE cost_as_token
    END AS cost,
    CASE WHEN billing_mode = 'request' THEN _r_found ELSE _t_tier IS NOT NULL END AS priced,
    CASE WHEN billing_mode = 'request' THEN _request_from ELSE _token_from END
        AS price_effective_from,
    coalesce(CASE WHEN billing_mode = 'request' THEN _r_currency ELSE _t_currency END,
             _t_currency, _r_currency) AS currency
FROM costed
"""

# Column order of priced_calls after the calls columns (the contract names come first).
PRICED_COLUMNS = ("cost_as_token", "cost_as_request", "cost", "priced",
                  "price_effective_from", "currency")

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
CALL_DAYS_SQL = """
SELECT model, base_model, billing_mode,
    CAST(timezone('UTC', started_at) AS DATE) AS day,
    sum(coalesce(requests, 1)) AS calls
FROM calls
GROUP BY ALL
"""

# Restricts priced_calls to [since, until) in UTC; both bounds optional (NULL).
_PERIOD = """
    ($since IS NULL OR started_at >= timezone('UTC', CAST($since AS TIMESTAMP)))
    AND ($until IS NULL OR started_at < timezone('UTC', CAST($until AS TIMESTAMP)))
"""

# A total over calls where one cost is NULL is unknown, never a partial sum.
_KNOWN_SUM = "CASE WHEN count(*) FILTER (WHERE {c} IS NULL) > 0 THEN NULL ELSE sum({c}) END"

SWITCH_SAVINGS_SQL = f"""
WITH per_workload AS (
    SELECT key_id,
        any_value(key_hint) AS key_hint,
        any_value(key_label) AS key_label,
        base_model,
        sum(coalesce(requests, 1)) AS calls,
        coalesce(sum(coalesce(requests, 1)) FILTER (WHERE billing_mode = 'token'), 0)
            AS token_calls,
        coalesce(sum(coalesce(requests, 1)) FILTER (WHERE billing_mode = 'request'), 0)
            AS request_calls,
        {_KNOWN_SUM.format(c='cost')} AS actual_cost,
        {_KNOWN_SUM.format(c='cost_as_token')} AS cost_all_token,
        {_KNOWN_SUM.format(c='cost_as_request')} AS cost_all_request
    FROM priced_calls
    WHERE {_PERIOD}
    GROUP BY key_id, base_model
),
final AS (
    SELECT *,
        CASE WHEN request_calls = 0 THEN 'token' WHEN token_calls = 0 THEN 'request'
             ELSE 'mixed' END AS current_mode,
        CASE WHEN cost_all_token IS NULL OR cost_all_request IS NULL THEN NULL
             WHEN cost_all_token <= cost_all_request THEN 'token'
             ELSE 'request' END AS cheaper_mode,
        least(cost_all_token, cost_all_request) AS cheaper_cost
    FROM per_workload
)
SELECT key_id, key_hint, key_label, base_model, calls, token_calls, request_calls,
    current_mode, actual_cost, cost_all_token, cost_all_request, cheaper_mode,
    CASE WHEN cheaper_mode IS NULL THEN NULL ELSE cheaper_cost END AS cheaper_cost,
    CASE WHEN cheaper_mode IS NULL OR actual_cost IS NULL THEN NULL
         ELSE actual_cost - cheaper_cost END AS saving,
    cheaper_mode IS NOT NULL AS switchable
FROM final
ORDER BY saving DESC NULLS LAST, actual_cost DESC NULLS LAST, key_id, base_model
"""

# Totals behind break-even: successful calls priced both ways, in the period.
# {group} comes from an allowlist in compare.py, never from user input.
BREAK_EVEN_TOTALS_SQL = """
SELECT {group},
    sum(coalesce(requests, 1)) AS calls,
    sum(input_tokens) AS input_tokens,
    sum(cached_tokens) AS cached_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cost_as_token) AS token_cost,
    sum(cost_as_request) AS request_cost
FROM priced_calls
WHERE coalesce(status, 200) < 400
  AND cost_as_token IS NOT NULL AND cost_as_request IS NOT NULL
  AND ($base_model IS NULL OR base_model = $base_model)
  AND {period}
GROUP BY {group}
ORDER BY {group}
""".replace("{period}", _PERIOD)
