"""LiteLLM proxy spend logs: ``/spend/logs`` JSON (a list, ``{"data": [...]}`` or JSON Lines) or
a CSV export of the ``LiteLLM_SpendLogs`` table.

``request_id`` is the ``call_id``; ``api_key`` is already LiteLLM's hash of the virtual key and is
kept as ``key_id``; ``spend`` becomes ``charged`` (parsed from its text, never through a float in
Python); ``model_group`` (the name the client called) is the model. Usage details (cached,
reasoning) come from ``metadata.usage_object`` when LiteLLM stored it; ``total_tokens`` is checked.
"""

from __future__ import annotations

import csv as _csv
import io
from pathlib import Path

import duckdb

from .fields import count_field, first_reason, number_field, text_field, time_field
from .jsonio import csv_delimiter, csv_rows_sql, first_line, json_columns_sql, reader_sql

NAME = "litellm"

RAW_COLUMNS = ("request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens",
               "completion_tokens", "startTime", "endTime", "completionStartTime", "model",
               "model_group", "user", "metadata", "request_tags", "status", "team_id",
               "end_user")
META_KEYS = {"alias": "$.user_api_key_alias", "team": "$.user_api_key_team_alias",
             "cached": "$.usage_object.prompt_tokens_details.cached_tokens",
             "reasoning": "$.usage_object.completion_tokens_details.reasoning_tokens",
             "m_status": "$.status", "error_code": "$.error_information.error_code"}
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
    if head.lstrip()[:1] in ("{", "["):
        return all(f'"{k}"' in head for k in keys)
    return set(keys) <= _csv_header(head)


def _raw_sql(conn: duckdb.DuckDBPyConnection, path: Path) -> str:
    from .base import head_text

    head = head_text(path)
    if head.lstrip()[:1] in ("{", "["):
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


def stage_sql(conn: duckdb.DuckDBPyConnection, path: Path, options) -> str:
    from .base import stage_columns

    meta = "[" + ", ".join(f"'{p}'" for p in META_KEYS.values()) + "]"
    m_cols = ", ".join(f"_m[{i + 1}] AS {k}" for i, k in enumerate(META_KEYS))
    fields = [
        time_field("started_at", '"startTime"', options.timezone),
        time_field("ended_at", '"endTime"', options.timezone, required=False),
        time_field("first_at", '"completionStartTime"', options.timezone, required=False),
        text_field("model", "coalesce(nullif(trim(model_group), ''), model)"),
        count_field("prompt", "prompt_tokens"), count_field("completion", "completion_tokens"),
        count_field("total", "total_tokens"), count_field("cached", "cached"),
        count_field("reasoning", "reasoning"),
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
        "status": (f"CASE WHEN {failed} THEN CASE WHEN {code} BETWEEN 400 AND 599 THEN {code} "
                   "ELSE 500 END ELSE 200 END"),
        "input_tokens": "p_prompt", "cached_tokens": "p_cached", "output_tokens": "p_completion",
        "reasoning_tokens": "p_reasoning", "charged": "p_spend",
        "usage_flag": ("CASE WHEN p_total IS NOT NULL AND p_total > 0 AND p_total <> "
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
