"""LiteLLM proxy spend logs: ``/spend/logs`` JSON (a list, ``{"data": [...]}`` or JSON Lines) or
a CSV export of the ``LiteLLM_SpendLogs`` table.

Read against LiteLLM 1.110.2 (the PyPI wheel, latest when read on 2026-12-04),
``litellm/proxy/spend_tracking/spend_tracking_utils.py`` ``get_logging_payload`` and
``get_spend_logs_id``. ``request_id`` is the ``call_id``; ``api_key`` is already LiteLLM's hash
of the virtual key and is kept as ``key_id``; ``spend`` becomes ``charged`` (parsed from its
text, never through a float in Python); ``model_group`` (the name the client called) is the
model. ``prompt_tokens`` includes cache reads and writes (LiteLLM's Anthropic transformation
adds them in). Cached and reasoning tokens come from ``metadata.usage_object`` when LiteLLM
stored one, else from ``metadata.additional_usage_values`` (every usage field but the three
counts; the only place on rows written before ``usage_object`` existed, and when it is null).

A response served from LiteLLM's cache (``cache_hit`` "True"; ``request_id`` ending in
``_cache_hit<time>``; spend 0) reached no provider: it is a call with no tokens, flagged
``response_cache_hit`` and billed per token, so it is never priced as a full call. A batch's cost
row (``request_id`` ending ``_batch_cost``) stands for the batch's requests
(``metadata.batch_successful_requests`` + ``batch_failed_requests``).
"""

from __future__ import annotations

import csv as _csv
import io
from pathlib import Path

import duckdb

from .base import ImportOptions
from .fields import count_field, first_reason, number_field, text_field, time_field
from .jsonio import (
    csv_delimiter,
    csv_rows_sql,
    first_line,
    json_columns_sql,
    looks_like_json,
    reader_sql,
)

NAME = "litellm"

RAW_COLUMNS = ("request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens",
               "completion_tokens", "startTime", "endTime", "completionStartTime", "model",
               "model_group", "user", "metadata", "request_tags", "status", "team_id",
               "end_user", "cache_hit")
META_KEYS = {"alias": "$.user_api_key_alias", "team": "$.user_api_key_team_alias",
             "u_cached": "$.usage_object.prompt_tokens_details.cached_tokens",
             "u_reasoning": "$.usage_object.completion_tokens_details.reasoning_tokens",
             "a_cached": "$.additional_usage_values.prompt_tokens_details.cached_tokens",
             "a_cache_read": "$.additional_usage_values.cache_read_input_tokens",
             "a_reasoning":
                 "$.additional_usage_values.completion_tokens_details.reasoning_tokens",
             "batch_ok": "$.batch_successful_requests", "batch_failed": "$.batch_failed_requests",
             "m_status": "$.status", "error_code": "$.error_information.error_code"}
# spend_tracking_utils.get_logging_payload: id = f"{id}_cache_hit{time.time()}" on a cache hit
CACHE_HIT_SQL = ("(lower(trim(cache_hit)) = 'true' OR contains(request_id, '_cache_hit'))")
BATCH_REQUESTS_SQL = ("CASE WHEN ends_with(trim(request_id), '_batch_cost') THEN greatest(1, "
                      "coalesce(try_cast(batch_ok AS INTEGER), 0) "
                      "+ coalesce(try_cast(batch_failed AS INTEGER), 0)) END")
ENDPOINT_SQL = """CASE
  WHEN call_type LIKE '%embedding%' THEN 'embeddings'
  WHEN call_type LIKE '%image_generation%' OR call_type LIKE '%image_edit%' THEN 'images'
  WHEN call_type LIKE '%transcription%' THEN 'transcriptions'
  WHEN call_type LIKE '%speech%' THEN 'speech'
  WHEN call_type LIKE '%rerank%' THEN 'rerank'
  WHEN call_type LIKE '%completion%' OR call_type LIKE '%responses%'
    OR call_type LIKE '%messages%' OR call_type IS NULL THEN 'chat'
  ELSE 'other' END"""


def _csv_header(head: str) -> set[str]:
    line = first_line(head)
    return {c.strip() for c in next(_csv.reader(io.StringIO(line), delimiter=csv_delimiter(line)),
                                    [])}


def detect(path: Path, head: str) -> bool:
    keys = ("request_id", "call_type", "spend", "startTime")
    if looks_like_json(head):
        return all(f'"{k}"' in head for k in keys)
    return set(keys) <= _csv_header(head)


def _raw_sql(conn: duckdb.DuckDBPyConnection, path: Path) -> str:
    from .base import head_text

    head = head_text(path)
    if looks_like_json(head):
        src = reader_sql(conn, path, head, {"request_id", "spend"}, ("$.data", "$"))
        return json_columns_sql(src, {c: f"$.{c}" for c in RAW_COLUMNS})
    return csv_rows_sql(conn, path, RAW_COLUMNS, _csv_header(head),
                        csv_delimiter(first_line(head)))


def _tags_sql() -> str:
    """Team, user and request tags (``team:search`` / ``app=bot`` / ``urgent``) as a MAP."""
    tags = ("list_transform(CASE WHEN json_valid(request_tags) THEN "
            "CAST(request_tags AS JSON)->>'$[*]' END, t -> {'key': "
            "regexp_extract(t, '^([^:=]+)', 1), 'value': regexp_extract(t, '[:=](.*)$', 1)})")
    fixed = ("[{'key': 'team', 'value': coalesce(team, nullif(team_id, ''))}, "
             "{'key': 'user', 'value': nullif(\"user\", '')}, "
             "{'key': 'end_user', 'value': nullif(end_user, '')}]")
    return (f"map_from_entries(list_distinct(list_filter(list_concat({fixed}, {tags}), "
            "e -> e.value IS NOT NULL AND e.key <> '')))")


def stage_sql(conn: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> str:
    from .base import stage_columns

    meta = "[" + ", ".join(f"'{p}'" for p in META_KEYS.values()) + "]"
    m_cols = ", ".join(f"_m[{i + 1}] AS {k}" for i, k in enumerate(META_KEYS))
    fields = [
        time_field("started_at", '"startTime"', options.timezone),
        time_field("ended_at", '"endTime"', options.timezone, required=False),
        time_field("first_at", '"completionStartTime"', options.timezone, required=False),
        text_field("model", "coalesce(nullif(trim(model_group), ''), model)"),
        count_field("prompt", "prompt_tokens"), count_field("completion", "completion_tokens"),
        count_field("total", "total_tokens"),
        count_field("cached", "coalesce(u_cached, a_cached, a_cache_read)"),
        count_field("reasoning", "coalesce(u_reasoning, a_reasoning)"),
        number_field("spend", "spend", "DECIMAL(38,12)"),
    ]
    values = ", ".join(f"{f.value} AS p_{f.name}" for f in fields)
    failed = "coalesce(lower(status), lower(m_status)) = 'failure'"
    code = "try_cast(error_code AS INTEGER)"
    ms = "epoch_ms({b}) - epoch_ms({a})"
    cols = {
        "call_id": "nullif(trim(request_id), '')", "source": "'litellm'",
        "started_at": "p_started_at",
        "latency_ms": ms.format(a="p_started_at", b="p_ended_at"),
        "ttft_ms": (f"CASE WHEN p_first_at < p_ended_at THEN "
                    f"{ms.format(a='p_started_at', b='p_first_at')} END"),
        "key_id": "nullif(trim(api_key), '')", "key_label": "nullif(trim(alias), '')",
        "endpoint": ENDPOINT_SQL, "model": "p_model",
        "stream": "CASE WHEN p_first_at < p_ended_at THEN true END",
        "requests": BATCH_REQUESTS_SQL,
        "status": (f"CASE WHEN {failed} THEN CASE WHEN {code} BETWEEN 400 AND 599 THEN {code} "
                   "ELSE 500 END ELSE 200 END"),
        # a cache hit reached no provider: no tokens, and never a per-call price
        "billing_mode": f"CASE WHEN {CACHE_HIT_SQL} THEN 'token' END",
        "input_tokens": f"CASE WHEN {CACHE_HIT_SQL} THEN 0 ELSE p_prompt END",
        "cached_tokens": f"CASE WHEN {CACHE_HIT_SQL} THEN 0 ELSE p_cached END",
        "output_tokens": f"CASE WHEN {CACHE_HIT_SQL} THEN 0 ELSE p_completion END",
        "reasoning_tokens": f"CASE WHEN {CACHE_HIT_SQL} THEN 0 ELSE p_reasoning END",
        "usage_source": f"CASE WHEN {CACHE_HIT_SQL} THEN 'none' END",
        "charged": "p_spend",
        "usage_flag": (f"CASE WHEN {CACHE_HIT_SQL} THEN 'response_cache_hit' "
                       "WHEN p_total IS NOT NULL AND p_total > 0 AND p_total <> "
                       "coalesce(p_prompt, 0) + coalesce(p_completion, 0) "
                       "THEN 'total_mismatch' END"),
        "tags": _tags_sql(),
    }
    return f"""
SELECT {stage_columns(cols)},
  _line, CAST(coalesce(_broken, {first_reason(fields)}) AS VARCHAR) AS _reject,
  CAST(NULL AS VARCHAR) AS _skip, CAST(NULL AS VARCHAR) AS _raw_key
FROM (SELECT *, {values} FROM (SELECT *, {m_cols} FROM (
  SELECT *, CASE WHEN json_valid(metadata) THEN json_extract_string(metadata, {meta}) END AS _m
  FROM ({_raw_sql(conn, path)}))))"""
