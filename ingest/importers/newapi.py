"""new-api / one-api consumption logs: the console's usage log as JSON (API pages) or CSV.

Only type 2 (consume) and 5 (error) rows are calls; 1 top-up, 3 manage, 4 system and 6 refund
are skipped and counted by type. The user log routes return ``id % 1024``, so ids are not
unique: ``call_id`` hashes the row's content instead (time, type, key, model, tokens, quota,
request id and ``id % 1024``, which is the same number whichever route exported the row).
``quota`` becomes ``charged`` (500,000 quota = US$1 unless ``--quota-per-usd`` says otherwise),
computed as exact DECIMAL. ``callmeter sync`` feeds single API pages (``{"data": {"items":
[...]}}``) through :func:`stage_sql` as well.
"""

from __future__ import annotations

import csv as _csv
import io
from decimal import Decimal
from pathlib import Path

import duckdb

from .fields import count_field, first_reason, number_field, text_field, time_field
from .jsonio import csv_delimiter, csv_rows_sql, first_line, json_columns_sql, reader_sql

NAME = "newapi"

RAW_COLUMNS = ("id", "created_at", "type", "username", "token_name", "token_id", "model_name",
               "quota", "prompt_tokens", "completion_tokens", "use_time", "elapsed_time",
               "is_stream", "channel", "group", "request_id", "other")
ITEM_PATHS = ("$.data.items", "$.data", "$")
# `other` keys we read; the whole object is parsed once per row.
OTHER_KEYS = ("model_price", "cache_tokens", "cache_creation_tokens", "frt", "status_code",
              "request_path", "quota_delta", "reasoning_effort")
SKIPPED_TYPES = {0: "unknown", 1: "top-up", 3: "manage", 4: "system", 6: "refund"}

# Where the request went, from other.request_path, else guessed from the model name.
ENDPOINT_SQL = """CASE
  WHEN o_request_path LIKE '%/embeddings%' THEN 'embeddings'
  WHEN o_request_path LIKE '%/images/%' THEN 'images'
  WHEN o_request_path LIKE '%/audio/speech%' THEN 'speech'
  WHEN o_request_path LIKE '%/audio/transcriptions%' OR o_request_path LIKE '%/audio/translations%'
    THEN 'transcriptions'
  WHEN o_request_path LIKE '%rerank%' THEN 'rerank'
  WHEN o_request_path IS NOT NULL THEN 'chat'
  WHEN m LIKE '%embedding%' THEN 'embeddings'
  WHEN m LIKE '%rerank%' THEN 'rerank'
  WHEN m LIKE 'whisper%' OR m LIKE '%transcribe%' THEN 'transcriptions'
  WHEN m LIKE 'tts-%' OR m LIKE '%-tts%' THEN 'speech'
  WHEN m LIKE 'dall-e%' OR m LIKE '%image%' OR m LIKE 'flux%' OR m LIKE 'midjourney%'
    OR m LIKE 'mj_%' THEN 'images'
  ELSE 'chat' END"""


def _csv_header(head: str) -> set[str]:
    line = first_line(head)
    return {c.strip() for c in next(_csv.reader(io.StringIO(line), delimiter=csv_delimiter(line)),
                                    [])}


def detect(path: Path, head: str) -> bool:
    start = head.lstrip()[:1]
    if start in ("{", "["):
        return all(f'"{k}"' in head for k in ("created_at", "model_name", "quota"))
    return {"created_at", "model_name", "quota"} <= _csv_header(head)


def _raw_sql(conn: duckdb.DuckDBPyConnection, path: Path, numbered: bool = True) -> str:
    """One row per log record with every RAW_COLUMNS value as text, plus _line and _broken."""
    from .base import head_text

    head = head_text(path)
    if head.lstrip()[:1] in ("{", "["):
        src = reader_sql(conn, path, head, {"created_at", "model_name"}, ITEM_PATHS, numbered)
        return json_columns_sql(src, {c: f"$.{c}" for c in RAW_COLUMNS})
    return csv_rows_sql(conn, path, RAW_COLUMNS, _csv_header(head),
                        csv_delimiter(first_line(head)), numbered)


def charged_sql(quota: str, quota_per_usd: int) -> str:
    """``quota / quota_per_usd`` as exact DECIMAL (DuckDB's DECIMAL ÷ DECIMAL is a DOUBLE)."""
    if quota_per_usd <= 0:
        raise ValueError("quota_per_usd must be positive")
    if 10**12 % quota_per_usd == 0:  # 1/q has at most 12 decimals: multiply by it exactly
        # typed at its own scale: a DECIMAL(38,18) factor makes the result DECIMAL(38,18), whose
        # rescale to the ledger's 12 decimals is a 128-bit division per row (~1.3 µs of 13)
        per_unit = Decimal(1) / Decimal(quota_per_usd)
        scale = max(0, -per_unit.as_tuple().exponent)
        return f"CAST({quota} AS DECIMAL(38,0)) * CAST('{per_unit:f}' AS DECIMAL(18,{scale}))"
    if 10**18 % quota_per_usd == 0:  # 1/q has at most 18 decimals: multiply by it exactly
        per_unit = Decimal(1) / Decimal(quota_per_usd)
        return f"CAST({quota} AS DECIMAL(38,0)) * CAST('{per_unit:f}' AS DECIMAL(38,18))"
    # otherwise round quota * 10^12 / q to a whole number of 10^-12 dollars, in integers
    num = f"(CAST({quota} AS HUGEINT) * 2000000000000 + {quota_per_usd})"
    return (f"CAST(({num} // {2 * quota_per_usd}) AS DECIMAL(38,0)) "
            "* CAST('0.000000000001' AS DECIMAL(38,12))")


def _parsed_sql(raw: str, options) -> str:
    """Typed values and reasons (one parse per field), still in the log's own terms."""
    other = "[" + ", ".join(f"'$.{k}'" for k in OTHER_KEYS) + "]"
    o_cols = ", ".join(f"_o[{i + 1}] AS o_{k}" for i, k in enumerate(OTHER_KEYS))
    fields = [
        time_field("started_at", "created_at", options.timezone),
        text_field("model", "model_name"),
        count_field("quota", "quota"),
        count_field("prompt", "prompt_tokens"),
        count_field("completion", "completion_tokens"),
        count_field("cache", "o_cache_tokens"),
        count_field("cache_creation", "o_cache_creation_tokens"),
        number_field("use_time", "use_time"),
        number_field("elapsed_time", "elapsed_time"),
        count_field("type", "type"),
    ]
    values = ", ".join(f"{f.value} AS p_{f.name}" for f in fields)
    raw_type = "try_cast(nullif(trim(type), '') AS DOUBLE)"
    return f"""
SELECT _line, _broken, {values},
  CAST({first_reason(fields)} AS VARCHAR) AS _why,
  CASE WHEN {raw_type} IS NULL OR {raw_type} IN (2, 5) THEN NULL
       ELSE 'type ' || CAST(CAST({raw_type} AS BIGINT) AS VARCHAR) END AS _type_skip,
  nullif(trim(token_name), '') AS token_name, nullif(trim(token_id), '') AS token_id,
  nullif(trim(username), '') AS username, nullif(trim("group"), '') AS grp,
  nullif(trim(channel), '') AS channel, nullif(trim(request_id), '') AS request_id,
  try_cast(trim(id) AS BIGINT) AS id, lower(trim(is_stream)) AS is_stream,
  try_cast(o_model_price AS DOUBLE) AS o_model_price, try_cast(o_frt AS DOUBLE) AS o_frt,
  try_cast(o_status_code AS INTEGER) AS o_status_code, o_request_path, o_quota_delta,
  lower(model_name) AS m
FROM (SELECT *, {o_cols} FROM (
  SELECT *, CASE WHEN json_valid(other) THEN json_extract_string(other, {other}) END AS _o
  FROM ({raw})))"""


def _skip_sql() -> str:
    labels = " ".join(f"WHEN '{k}' THEN 'type {k} {v}'" for k, v in SKIPPED_TYPES.items())
    return (f"CASE WHEN _type_skip IS NOT NULL THEN CASE substr(_type_skip, 6) {labels} "
            "ELSE _type_skip || ' (not a call)' END "
            "WHEN o_quota_delta IS NOT NULL THEN 'type 2 task re-charge (not a call)' END")


def stage_sql(conn: duckdb.DuckDBPyConnection, path: Path, options) -> str:
    from .base import stage_columns

    parsed = _parsed_sql(_raw_sql(conn, path, options.line_numbers), options)
    audio_quirk = ("(endpoint_ IN ('speech', 'transcriptions') AND p_prompt = p_quota "
                   "AND p_quota > 0 AND coalesce(p_completion, 0) = 0)")
    image_row = "(endpoint_ = 'images' AND coalesce(p_prompt, 0) + coalesce(p_completion, 0) = 0)"
    cache_outside = "(p_cache > coalesce(p_prompt, 0))"
    key_hash = ("'na1:' || md5(concat_ws('|', epoch(p_started_at), p_type, "
                "coalesce(token_id, 't:' || token_name), p_model, p_prompt, p_completion, p_quota, "
                "request_id, id % 1024))")
    cols = {
        "call_id": key_hash,
        "source": "'newapi'",
        "started_at": "p_started_at",
        "latency_ms": "round(coalesce(p_use_time * 1000, p_elapsed_time))",
        "ttft_ms": "CASE WHEN o_frt >= 0 THEN round(o_frt) END",  # new-api writes -1000: unknown
        "key_label": "token_name",
        "endpoint": "endpoint_",
        "model": "p_model",
        "billing_mode": ("CASE WHEN o_model_price >= 0 THEN 'request' "
                         "WHEN o_model_price < 0 THEN 'token' END"),
        "stream": "CASE WHEN is_stream IN ('true', '1') THEN true "
                  "WHEN is_stream IN ('false', '0') THEN false END",
        "status": ("CASE WHEN p_type = 5 THEN CASE WHEN o_status_code BETWEEN 400 AND 599 "
                   "THEN o_status_code ELSE 500 END ELSE 200 END"),
        "input_tokens": (f"CASE WHEN {audio_quirk} THEN 0 WHEN {cache_outside} "
                         "THEN coalesce(p_prompt, 0) + p_cache + coalesce(p_cache_creation, 0) "
                         "ELSE p_prompt END"),
        "cached_tokens": "p_cache",
        "output_tokens": "p_completion",
        "images": f"CASE WHEN {image_row} AND p_type = 2 THEN 1 END",
        "usage_source": f"CASE WHEN {audio_quirk} THEN 'none' WHEN {image_row} AND p_type = 2 "
                        "THEN 'estimated' END",
        "usage_flag": (f"CASE WHEN {audio_quirk} THEN 'audio_quota_in_tokens' "
                       f"WHEN {image_row} AND p_type = 2 THEN 'images_assumed_1' "
                       f"WHEN {cache_outside} THEN 'cache_added_to_input' END"),
        "charged": charged_sql("coalesce(p_quota, 0)", options.quota_per_usd),
        # tags (user, group, channel) come from _tags, built once per distinct value (base)
    }
    raw_key = ("CASE WHEN token_id IS NOT NULL AND token_id <> '0' "
               "THEN 'newapi-token:' || token_id END")
    return f"""
SELECT {stage_columns(cols)},
  _line, CAST(coalesce(_broken, _why) AS VARCHAR) AS _reject,
  CAST({_skip_sql()} AS VARCHAR) AS _skip, CAST({raw_key} AS VARCHAR) AS _raw_key,
  {{'user': username, 'group': grp, 'channel': channel}} AS _tags
FROM (SELECT *, {ENDPOINT_SQL} AS endpoint_ FROM ({parsed}))"""


__all__ = ["NAME", "charged_sql", "detect", "stage_sql"]
