"""The OpenAI organization Usage and Costs API exports: time buckets of aggregated usage.

Read against openai-python (commit e43b422, 2026-08-21; the types last changed 2026-08-10):
``src/openai/types/admin/organization/usage_completions_response.py`` (the ``Data`` bucket and
every ``organization.*.result`` model) and ``usage_costs_response.py``.

A file holds one page (``{"object": "page", "data": [buckets]}``), a list of pages or buckets, or
JSON Lines of pages. Each ``results[]`` entry becomes one ledger row for its bucket and group, with
``requests`` = ``num_model_requests`` and ``started_at`` = the bucket's start. Completions,
embeddings, images, audio speech/transcription and moderation results are calls. The ``call_id``
hashes the bucket and **every group-by field** (project, user, API key, model, batch, service
tier, image source and size) — a result grouped by service tier is another row, not a copy —
and not its counts, so a later export of the same bucket adds nothing: export finished buckets.
Completions ``input_tokens`` include cached and cache-write tokens (so do ours); cache writes
(``input_cache_write_tokens``, the 12-hour part ``input_cache_write_12h_tokens``) fill the
ledger's cache-write columns, priced at the sheet's ``cache_write`` rates; audio tokens have no
column of their own and are not priced apart. Web search and file search
results count tool calls of requests the completions results already hold, and vector store
and code interpreter results are storage and sessions: all skipped. A Costs API result
(``organization.costs.result``) is money the usage does not tie to requests: it goes to the
``adjustments`` table as ``billed`` (its ``line_item`` the reason), so the report's net charge
is the invoice.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from .base import ImportOptions
from .fields import count_field, first_reason, number_field, text_field, time_field
from .jsonio import first_record, json_columns_sql

NAME = "openai-usage"

RESULT_PATHS = {
    "object": "$.object", "model": "$.model", "api_key_id": "$.api_key_id",
    "project_id": "$.project_id", "user_id": "$.user_id", "batch": "$.batch",
    "input_tokens": "$.input_tokens", "input_cached_tokens": "$.input_cached_tokens",
    "input_cache_write_tokens": "$.input_cache_write_tokens",
    "input_cache_write_12h_tokens": "$.input_cache_write_12h_tokens",
    "output_tokens": "$.output_tokens", "num_model_requests": "$.num_model_requests",
    "images": "$.images", "source": "$.source", "size": "$.size", "characters": "$.characters",
    "seconds": "$.seconds", "start_time": "$.start_time", "end_time": "$.end_time",
    "service_tier": "$.service_tier", "amount": "$.amount.value",
    "currency": "$.amount.currency", "line_item": "$.line_item",
}
ENDPOINTS = {"completions": "chat", "embeddings": "embeddings", "images": "images",
             "audio_speeches": "speech", "audio_transcriptions": "transcriptions",
             "moderations": "other"}
COSTS_OBJECT = "organization.costs.result"


def detect(path: Path, head: str) -> bool:
    return '"organization.usage.' in head or ('"bucket"' in head and '"results"' in head)


def _results_sql(conn: duckdb.DuckDBPyConnection, path: Path) -> str:
    """One JSON text per result, each carrying its bucket's start and end time."""
    from .base import head_text
    from .jsonio import document_items_sql, lines_sql

    head = head_text(path)
    rec = first_record(head)
    if rec is not None and ("data" in rec or "results" in rec) and "\n" in head.strip():
        records = lines_sql(path)  # JSON Lines of pages or buckets
    else:
        records = document_items_sql(conn, path, ("$.data", "$"))
    # a record is a bucket (has results) or a page (has data: a list of buckets)
    buckets = ("SELECT CASE WHEN json_type(_json, '$.results') = 'ARRAY' THEN [_json::JSON] "
               "ELSE json_extract(_json, '$.data[*]') END AS bs FROM (" + records + ") "
               "WHERE json_valid(_json)")
    return (
        "SELECT row_number() OVER () AS _line, CAST(NULL AS VARCHAR) AS _broken, "
        "json_merge_patch(r, json_object('start_time', b->'$.start_time', "
        "'end_time', b->'$.end_time'))::VARCHAR AS _json FROM ("
        "SELECT b, unnest(json_extract(b, '$.results[*]')) AS r FROM ("
        f"SELECT unnest(bs) AS b FROM ({buckets})))"
    )


def stage_sql(conn: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> str:
    from .base import stage_columns

    src = "SELECT _line, _json FROM (" + _results_sql(conn, path) + ")"
    raw = json_columns_sql(src, RESULT_PATHS)
    fields = [
        time_field("started_at", "start_time", options.timezone),
        text_field("model", "model"),
        count_field("input", "input_tokens"), count_field("cached", "input_cached_tokens"),
        count_field("write", "input_cache_write_tokens"),
        count_field("write_long", "input_cache_write_12h_tokens"),
        count_field("output", "output_tokens"), count_field("requests", "num_model_requests"),
        count_field("images", "images"), count_field("characters", "characters"),
        number_field("seconds", "seconds"),
    ]
    values = ", ".join(f"{f.value} AS p_{f.name}" for f in fields)
    kind = (f"CASE WHEN object = '{COSTS_OBJECT}' THEN 'costs' ELSE "
            "regexp_extract(object, 'organization\\.usage\\.([a-z_]+)\\.result', 1) END")
    endpoint = "CASE kind " + " ".join(
        f"WHEN '{k}' THEN '{v}'" for k, v in ENDPOINTS.items()) + " END"
    # every group-by field is part of the identity (ou1 lacked service_tier)
    call_id = ("'ou2:' || md5(concat_ws('|', object, start_time, end_time, model, api_key_id, "
               "project_id, user_id, batch, source, size, service_tier, line_item))")
    billed = "kind = 'costs'"
    amount = "try_cast(nullif(trim(amount), '') AS DECIMAL(38,12))"
    cols = {
        "call_id": call_id, "source": "'openai-usage'", "started_at": "p_started_at",
        "key_id": "api_key_id", "endpoint": endpoint, "model": "p_model",
        "requests": "p_requests", "input_tokens": "p_input", "cached_tokens": "p_cached",
        "cache_write_tokens": "p_write", "cache_write_long_tokens": "p_write_long",
        "output_tokens": "p_output", "images": "p_images", "characters": "p_characters",
        "audio_seconds": "p_seconds", "image_size": "size",
        "charged": f"CASE WHEN {billed} THEN {amount} END",
        "tags": ("map_from_entries(list_filter([{'key': 'project', 'value': project_id}, "
                 "{'key': 'user', 'value': user_id}, {'key': 'batch', 'value': batch}, "
                 "{'key': 'service_tier', 'value': service_tier}], e -> e.value IS NOT NULL))"),
    }
    skip = (f"CASE WHEN {billed} THEN NULL WHEN ({endpoint}) IS NULL "
            "THEN coalesce(kind, 'unknown') || ' result (not calls)' "
            "WHEN p_requests = 0 THEN 'bucket group with no requests' END")
    bad_cost = (f"CASE WHEN {amount} IS NULL THEN 'field amount.value: missing or not a number' "
                "WHEN lower(coalesce(currency, 'usd')) <> 'usd' THEN 'field amount.currency: ' "
                "|| currency || ' (the ledger keeps US dollars)' END")
    why = (f"CASE WHEN {billed} THEN {bad_cost} ELSE coalesce({first_reason(fields)}, "
           "CASE WHEN p_model IS NULL THEN "
           "'field model: missing (export the usage grouped by model)' END) END")
    return f"""
SELECT {stage_columns(cols)},
  _line, CAST(coalesce(_broken, {why}) AS VARCHAR) AS _reject,
  CAST({skip} AS VARCHAR) AS _skip, CAST(NULL AS VARCHAR) AS _raw_key,
  CAST(CASE WHEN {billed} THEN 'billed' END AS VARCHAR) AS _kind,
  CAST(NULL AS VARCHAR) AS _task_id, CAST(line_item AS VARCHAR) AS _reason
FROM (SELECT *, {values} FROM (SELECT *, {kind} AS kind FROM ({raw})))"""
