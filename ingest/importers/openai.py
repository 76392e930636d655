"""OpenAI-format responses as applications log them: JSON Lines, one object per line.

A line is a chat completion, the final usage chunk of a stream, an embeddings list, a Responses
API object, an Anthropic-style message passed through a gateway, an images or transcription
result, or a ``{"request": ..., "response": ...}`` pair (whose top level may add ``timestamp``,
``latency_ms``, ``status``, ``key_label``). Usage is normalised to the OpenAI meaning (cached ⊆
input, reasoning ⊆ output); ``total_tokens`` is checked and rows that don't add up are flagged.
The response ``id`` is the ``call_id``, so a completion logged twice (or its stream chunk) is one
call; objects without an id get the ledger's content hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from .base import ImportOptions
from .fields import count_field, first_reason, number_field, text_field, time_field
from .jsonio import first_record, json_columns_sql, reader_sql

NAME = "openai"

OBJECTS = ("chat.completion", "chat.completion.chunk", "response", "text_completion", "list")
RESPONSE_PATHS = {
    "id": "$.id", "object": "$.object", "type": "$.type", "created": "$.created",
    "created_at": "$.created_at", "model": "$.model", "error": "$.error", "status_": "$.status",
    "usage": "$.usage", "prompt": "$.usage.prompt_tokens",
    "completion": "$.usage.completion_tokens",
    "total": "$.usage.total_tokens", "cached_p": "$.usage.prompt_tokens_details.cached_tokens",
    "reasoning_c": "$.usage.completion_tokens_details.reasoning_tokens",
    "input": "$.usage.input_tokens", "output": "$.usage.output_tokens",
    "cached_i": "$.usage.input_tokens_details.cached_tokens",
    "reasoning_o": "$.usage.output_tokens_details.reasoning_tokens",
    "cache_read": "$.usage.cache_read_input_tokens",
    "cache_write": "$.usage.cache_creation_input_tokens",
    "write_1h": "$.usage.cache_creation.ephemeral_1h_input_tokens",
    "write_p": "$.usage.prompt_tokens_details.cache_write_tokens",
    "write_i": "$.usage.input_tokens_details.cache_write_tokens",
    "write_12h": "$.usage.input_tokens_details.cache_write_tokens_details.ttl_12h_tokens",
    "usage_type": "$.usage.type", "seconds": "$.usage.seconds",
    "data0_object": "$.data[0].object", "data0_url": "$.data[0].url",
    "data0_b64": "$.data[0].b64_json", "text": "$.text", "size": "$.size", "data": "$.data",
}
OUTER_PATHS = {"req_model": "$.request.model", "req_stream": "$.request.stream",
               "req_size": "$.request.size", "timestamp": "$.timestamp",
               "started": "$.started_at", "latency": "$.latency_ms", "status": "$.status",
               "status_code": "$.status_code", "key_label": "$.key_label",
               "endpoint_": "$.endpoint"}


def detect(path: Path, head: str) -> bool:
    rec = first_record(head)
    if rec is None:
        return False
    if isinstance(rec.get("response"), dict):
        rec = rec["response"]
    return rec.get("object") in OBJECTS or ("usage" in rec and "model" in rec)


def _raw_sql(conn: duckdb.DuckDBPyConnection, path: Path) -> str:
    from .base import head_text

    src = reader_sql(conn, path, head_text(path), {"object", "usage", "response", "model"},
                     ("$.data", "$"))
    # a pair's response is the object; otherwise the line itself
    paths = {**OUTER_PATHS, "pair": "$.response",
             **{"q_" + k: "$.response" + v[1:] for k, v in RESPONSE_PATHS.items()},
             **{"r_" + k: v for k, v in RESPONSE_PATHS.items()}}
    pick = ", ".join(f'CASE WHEN pair IS NOT NULL THEN "q_{k}" ELSE "r_{k}" END AS "{k}"'
                     for k in RESPONSE_PATHS)
    return (f"SELECT _line, _broken, {', '.join(OUTER_PATHS)}, {pick} "
            f"FROM ({json_columns_sql(src, paths)})")


def _usage_fields() -> list[Any]:
    return [
        count_field("prompt", "coalesce(prompt, input)"),
        count_field("completion", "coalesce(completion, output)"),
        count_field("total", "total"),
        count_field("cached", "coalesce(cached_p, cached_i)"),
        count_field("reasoning", "coalesce(reasoning_c, reasoning_o)"),
        count_field("cache_read", "cache_read"),
        count_field("cache_write", "cache_write"),
        count_field("write", "coalesce(write_p, write_i)"),
        count_field("write_long", "coalesce(write_1h, write_12h)"),
        number_field("seconds", "seconds"),
        count_field("latency", "latency"),
    ]


def stage_sql(conn: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> str:
    from .base import stage_columns

    fields = [time_field("started_at", "coalesce(timestamp, started, created, created_at)",
                         options.timezone),
              text_field("model", "coalesce(model, req_model)")] + _usage_fields()
    values = ", ".join(f"{f.value} AS p_{f.name}" for f in fields)
    anth = ("(p_cache_read IS NOT NULL OR p_cache_write IS NOT NULL "
            "OR coalesce(type = 'message', false))")
    inp = (f"CASE WHEN {anth} THEN coalesce(p_prompt, 0) + coalesce(p_cache_read, 0) "
           "+ coalesce(p_cache_write, 0) ELSE p_prompt END")
    separate = ("(p_total IS NOT NULL AND p_reasoning > 0 AND "
                "p_total = coalesce(p_prompt, 0) + coalesce(p_completion, 0) + p_reasoning)")
    mismatch = ("(p_total IS NOT NULL AND "
                "p_total <> coalesce(p_prompt, 0) + coalesce(p_completion, 0))")
    endpoint = """CASE
      WHEN endpoint_ IS NOT NULL THEN lower(endpoint_)
      WHEN data0_object = 'embedding' THEN 'embeddings'
      WHEN usage_type = 'duration' OR (text IS NOT NULL AND object IS NULL) THEN 'transcriptions'
      WHEN data0_url IS NOT NULL OR data0_b64 IS NOT NULL THEN 'images'
      WHEN type = 'message' THEN 'messages'
      WHEN object = 'response' THEN 'responses'
      ELSE 'chat' END"""
    status = ("CASE WHEN try_cast(coalesce(status_code, status) AS INTEGER) BETWEEN 100 AND 599 "
              "THEN try_cast(coalesce(status_code, status) AS INTEGER) "
              "WHEN (error IS NOT NULL AND error <> 'null') OR status_ = 'failed' THEN 500 "
              "ELSE 200 END")
    cols = {
        "call_id": "nullif(trim(id), '')",
        "source": "'openai'",
        "started_at": "p_started_at",
        "latency_ms": "p_latency",
        "key_label": "nullif(trim(key_label), '')",
        "endpoint": "endpoint_x",
        "model": "p_model",
        "stream": ("CASE WHEN object = 'chat.completion.chunk' OR lower(req_stream) = 'true' "
                   "THEN true ELSE false END"),
        "status": status,
        "input_tokens": inp,
        "cached_tokens": f"CASE WHEN {anth} THEN p_cache_read ELSE p_cached END",
        "output_tokens": f"CASE WHEN {separate} THEN p_completion + p_reasoning "
                         "ELSE p_completion END",
        "reasoning_tokens": "p_reasoning",
        "cache_write_tokens": f"CASE WHEN {anth} THEN p_cache_write ELSE p_write END",
        "cache_write_long_tokens": "p_write_long",
        "images": ("CASE WHEN endpoint_x = 'images' THEN "
                   "json_array_length(CAST(data AS JSON)) END"),
        "image_size": "CASE WHEN endpoint_x = 'images' THEN coalesce(size, req_size) END",
        "audio_seconds": "p_seconds",
        "usage_source": "CASE WHEN usage IS NULL OR usage = 'null' THEN 'none' END",
        "usage_flag": (f"CASE WHEN {separate} THEN 'reasoning_separate' "
                       f"WHEN NOT {anth} AND {mismatch} THEN 'total_mismatch' "
                       f"WHEN {anth} THEN 'anthropic_usage_normalised' END"),
    }
    return f"""
SELECT {stage_columns(cols)},
  _line, CAST(coalesce(_broken, {first_reason(fields)}) AS VARCHAR) AS _reject,
  CAST(NULL AS VARCHAR) AS _skip, CAST(NULL AS VARCHAR) AS _raw_key
FROM (SELECT *, {endpoint} AS endpoint_x, {values} FROM ({_raw_sql(conn, path)}))"""
