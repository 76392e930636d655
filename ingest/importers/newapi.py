"""new-api / one-api consumption logs: the console's usage log as JSON (API pages) or CSV.

Read against new-api ``model/log.go`` (``RecordConsumeLog``, ``RecordErrorLog``,
``RecordTaskBillingLog``, ``formatUserLogs``), ``service/text_quota.go``
(``PostTextConsumeQuota``), ``service/task_billing.go`` (``RefundTaskQuota``,
``RecalculateTaskQuota``) and ``relay/image_handler.go`` (piexian/new-api, which merges
QuantumNous/new-api, commit 77fdac2 of 2026-08-18), and one-api ``model/log.go`` (songquanpeng/
one-api, 2025-01-31). What each row becomes:

- type 2 (consume) and 5 (error, new-api) are calls; one-api's type 5 is a channel test and a
  new-api type 2 written by a channel test (token "模型测试", no token id) is charged to nobody:
  both skipped. 0 unknown, 1 top-up, 3 manage, 4 system and 7 login are skipped by type.
- type 6 (refund of an async task or a Midjourney job) and type 2 rows carrying
  ``other.task_id`` (a task's settlement when its final cost was higher, or a task's violation
  fee) or ``other.violation_fee`` are money adjustments, not calls: they go to the
  ``adjustments`` table with a signed amount (a refund is negative).
- ``call_id``: the user routes send no real id (old builds ``id % 1024``, builds since
  2026-02 the row's position on the page, 1..N, which shifts as calls arrive), so the id is
  never used. A consume row is ``na2:2:<request_id>``; another row with a request id adds its
  second (an error row per failed attempt shares the request's id); a row without one hashes
  its content (type, time, user, token name, model, tokens, quota). Rows identical in all of
  that (two equal calls in one second) are told apart by their id in the export, which is
  distinct within one answer on every route (see base ``_repeat_rank``).
- ``quota`` ÷ quota_per_unit = ``charged`` (exact DECIMAL); quota_per_unit comes from
  ``--quota-per-unit`` / the platform's ``/api/status``, else new-api's default 500,000 with a
  note saying so.
- ``sync`` feeds single API pages (``{"data": {"items": [...]}}``) through :func:`stage_sql`.
"""

from __future__ import annotations

import csv as _csv
import io
from decimal import Decimal
from pathlib import Path

import duckdb

from ledger import DEFAULT_QUOTA_PER_UNIT, fetch_one, sql_literal

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
from .newapi_rules import (
    ENDPOINT_SQL,
    IMAGE_SIZE_SQL,
    IMAGES_SQL,
    billing_mode_sql,
    call_id_sql,
    input_tokens_sql,
    kind_sql,
    skip_sql,
)

NAME = "newapi"

RAW_COLUMNS = ("id", "created_at", "type", "username", "token_name", "token_id", "model_name",
               "quota", "prompt_tokens", "completion_tokens", "use_time", "elapsed_time",
               "is_stream", "channel", "group", "request_id", "content", "other")
ITEM_PATHS = ("$.data.items", "$.data", "$")
# `other` keys we read (path, column); the whole object is parsed once per row.
OTHER_KEYS = {
    "model_price": "$.model_price", "cache_tokens": "$.cache_tokens",
    "cache_creation_tokens": "$.cache_creation_tokens",
    "cache_write_tokens": "$.cache_write_tokens", "frt": "$.frt",
    "cache_creation_tokens_1h": "$.cache_creation_tokens_1h",
    "status_code": "$.status_code", "request_path": "$.request_path",
    "billing_mode": "$.billing_mode", "usage_semantic": "$.usage_semantic",
    "claude": "$.claude", "image_n": "$.image_request.n", "image_size": "$.image_request.size",
    "task_id": "$.task_id", "violation_fee": "$.violation_fee", "reason": "$.reason",
    "billing_source": "$.billing_source",
}


def _csv_header(head: str) -> set[str]:
    line = first_line(head)
    return {c.strip() for c in next(_csv.reader(io.StringIO(line), delimiter=csv_delimiter(line)),
                                    [])}


def detect(path: Path, head: str) -> bool:
    if looks_like_json(head):
        return all(f'"{k}"' in head for k in ("created_at", "model_name", "quota"))
    return {"created_at", "model_name", "quota"} <= _csv_header(head)


def _raw_sql(conn: duckdb.DuckDBPyConnection, path: Path, numbered: bool = True) -> str:
    """One row per log record with every RAW_COLUMNS value as text, plus _line and _broken."""
    from .base import head_text

    head = head_text(path)
    if looks_like_json(head):
        src = reader_sql(conn, path, head, {"created_at", "model_name"}, ITEM_PATHS, numbered)
        return json_columns_sql(src, {c: f"$.{c}" for c in RAW_COLUMNS})
    return csv_rows_sql(conn, path, RAW_COLUMNS, _csv_header(head),
                        csv_delimiter(first_line(head)), numbered)


def charged_sql(quota: str, quota_per_unit: Decimal | int) -> str:
    """``quota / quota_per_unit`` as exact DECIMAL (DuckDB's DECIMAL ÷ DECIMAL is a DOUBLE)."""
    qpu = Decimal(quota_per_unit)
    if not qpu.is_finite() or qpu <= 0:
        raise ValueError("quota_per_unit must be positive")
    num, den = qpu.as_integer_ratio()          # quota / (num/den) = quota * den / num
    if den == 1 and 10**12 % num == 0:  # 1/q has at most 12 decimals: multiply by it exactly
        # typed at its own scale: a DECIMAL(38,18) factor makes the result DECIMAL(38,18), whose
        # rescale to the ledger's 12 decimals is a 128-bit division per row (~1.3 µs of 13)
        per_unit = Decimal(1) / Decimal(num)
        scale = max(0, -int(per_unit.as_tuple().exponent))
        return f"CAST({quota} AS DECIMAL(38,0)) * CAST('{per_unit:f}' AS DECIMAL(18,{scale}))"
    if den == 1 and 10**18 % num == 0:  # 1/q has at most 18 decimals: multiply by it exactly
        per_unit = Decimal(1) / Decimal(num)
        return f"CAST({quota} AS DECIMAL(38,0)) * CAST('{per_unit:f}' AS DECIMAL(38,18))"
    # otherwise round quota * den * 10^12 / num to a whole number of 10^-12 dollars, in integers
    scaled = f"(CAST({quota} AS HUGEINT) * {2 * den * 10**12} + {num})"
    return (f"CAST(({scaled} // {2 * num}) AS DECIMAL(38,0)) "
            "* CAST('0.000000000001' AS DECIMAL(38,12))")


def effective_quota_per_unit(options: ImportOptions) -> Decimal:
    return DEFAULT_QUOTA_PER_UNIT if options.quota_per_unit is None else options.quota_per_unit


def _parsed_sql(raw: str, options: ImportOptions) -> str:
    """Typed values and reasons (one parse per field), still in the log's own terms."""
    other = "[" + ", ".join(f"'{p}'" for p in OTHER_KEYS.values()) + "]"
    o_cols = ", ".join(f"_o[{i + 1}] AS o_{k}" for i, k in enumerate(OTHER_KEYS))
    fields = [
        time_field("started_at", "created_at", options.timezone),
        text_field("model", "model_name"),
        count_field("quota", "quota"),
        count_field("prompt", "prompt_tokens"),
        count_field("completion", "completion_tokens"),
        count_field("cache", "o_cache_tokens"),
        count_field("cache_creation", "o_cache_creation_tokens"),
        count_field("cache_write", "o_cache_write_tokens"),
        count_field("cache_write_1h", "o_cache_creation_tokens_1h"),
        number_field("use_time", "use_time"),
        number_field("elapsed_time", "elapsed_time"),
        count_field("type", "type"),
    ]
    values = ", ".join(f"{f.value} AS p_{f.name}" for f in fields)
    return f"""
SELECT _line, _broken, {values},
  CAST({first_reason(fields)} AS VARCHAR) AS _why,
  try_cast(nullif(trim(type), '') AS DOUBLE) AS raw_type,
  nullif(trim(token_name), '') AS token_name, nullif(trim(token_id), '') AS token_id,
  nullif(trim(username), '') AS username, nullif(trim("group"), '') AS grp,
  nullif(trim(channel), '') AS channel, nullif(trim(request_id), '') AS request_id,
  nullif(trim(content), '') AS content, nullif(trim(other), '') AS other_text,
  nullif(trim(elapsed_time), '') AS elapsed_text,
  try_cast(trim(id) AS BIGINT) AS id, lower(trim(is_stream)) AS is_stream,
  try_cast(o_model_price AS DOUBLE) AS o_model_price, try_cast(o_frt AS DOUBLE) AS o_frt,
  try_cast(o_status_code AS INTEGER) AS o_status_code, o_request_path, o_billing_mode,
  lower(o_usage_semantic) AS o_usage_semantic, lower(o_claude) AS o_claude,
  try_cast(try_cast(o_image_n AS DOUBLE) AS INTEGER) AS o_image_n, o_image_size,
  nullif(o_task_id, '') AS o_task_id, lower(o_violation_fee) AS o_violation_fee, o_reason,
  o_billing_source, lower(model_name) AS m
FROM (SELECT *, {o_cols} FROM (
  SELECT *, CASE WHEN json_valid(other) THEN json_extract_string(other, {other}) END AS _o
  FROM ({raw})))"""


def stage_sql(conn: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> str:
    from .base import stage_columns

    parsed = _parsed_sql(_raw_sql(conn, path, options.line_numbers), options)
    is_call = "_kind IS NULL"
    image_row = f"(endpoint_ = 'images' AND p_type = 2 AND {is_call})"
    charged = charged_sql("coalesce(p_quota, 0)", effective_quota_per_unit(options))
    tokens = input_tokens_sql(image_row)
    cols = {
        "call_id": "call_id_",
        "source": "'newapi'",
        "started_at": "p_started_at",
        "latency_ms": "round(coalesce(p_use_time * 1000, p_elapsed_time))",
        "ttft_ms": "CASE WHEN o_frt >= 0 THEN round(o_frt) END",  # new-api writes -1000: unknown
        "key_label": "token_name",
        "endpoint": "endpoint_",
        "model": "p_model",
        "billing_mode": billing_mode_sql(),
        "stream": "CASE WHEN is_stream IN ('true', '1') THEN true "
                  "WHEN is_stream IN ('false', '0') THEN false END",
        "status": ("CASE WHEN p_type = 5 THEN CASE WHEN o_status_code BETWEEN 400 AND 599 "
                   "THEN o_status_code ELSE 500 END ELSE 200 END"),
        "input_tokens": tokens.value,
        "cached_tokens": f"CASE WHEN {tokens.placeholder} THEN 0 ELSE p_cache END",
        "output_tokens": "p_completion",
        "cache_write_tokens": f"CASE WHEN {tokens.placeholder} THEN 0 "
                              "ELSE coalesce(p_cache_write, p_cache_creation, 0) END",
        "cache_write_long_tokens": f"CASE WHEN {tokens.placeholder} THEN 0 "
                                   "ELSE coalesce(p_cache_write_1h, 0) END",
        "images": f"CASE WHEN {image_row} THEN coalesce(images_n_, 1) END",
        "image_size": f"CASE WHEN {image_row} THEN {IMAGE_SIZE_SQL} END",
        "usage_source": tokens.usage_source,
        "usage_flag": tokens.flag,
        # an adjustment's amount is signed: a refund gives money back
        "charged": f"CASE WHEN _kind = 'refund' THEN -({charged}) ELSE {charged} END",
        # tags (user, group, channel, billing source) come from _tags, built once per value
    }
    raw_key = ("CASE WHEN token_id IS NOT NULL AND token_id <> '0' "
               "THEN 'newapi-token:' || token_id END")
    return f"""
SELECT {stage_columns(cols)},
  _line, CAST(coalesce(_broken, _why) AS VARCHAR) AS _reject,
  CAST(CASE WHEN _broken IS NULL THEN _skip END AS VARCHAR) AS _skip,
  CAST({raw_key} AS VARCHAR) AS _raw_key,
  {{'user': username, 'group': grp, 'channel': channel,
    'billing_source': o_billing_source}} AS _tags,
  CAST(_kind AS VARCHAR) AS _kind,
  CAST(CASE WHEN _kind IS NOT NULL THEN o_task_id END AS VARCHAR) AS _task_id,
  CAST(CASE WHEN _kind IS NOT NULL THEN coalesce(o_reason, content) END AS VARCHAR) AS _reason,
  id AS _repeat_rank
FROM (SELECT *, {call_id_sql()} AS call_id_,
  CASE WHEN endpoint_ = 'images' THEN {IMAGES_SQL} END AS images_n_ FROM (
  SELECT *, {skip_sql()} AS _skip, {kind_sql()} AS _kind, {ENDPOINT_SQL} AS endpoint_
  FROM ({parsed})))"""


# Rows imported before this version carry ``na1:`` ids (a hash that included the row's id, which
# current new-api builds no longer send). A staged row that is one of them — same second, key
# label, model, output tokens, charge and status, matched one to one — takes its old id, so the
# first sync or import after an upgrade adds nothing twice (a row read twice, one id, one rank).
_LEGACY_KEY = ("started_at", "key_label", "model", "coalesce(output_tokens, 0)", "charged",
               "coalesce(status, 200)")
_GOOD_CALL = "_reject IS NULL AND _skip IS NULL AND _kind IS NULL"
ADOPT_LEGACY_SQL = """
CREATE OR REPLACE TEMP TABLE {stage} AS
WITH legacy AS (
  SELECT call_id AS old_id, {cols},
    row_number() OVER (PARTITION BY {key} ORDER BY call_id) AS _n
  FROM calls WHERE source = 'newapi' AND call_id LIKE 'na1:%'
    AND started_at BETWEEN (SELECT min(started_at) FROM {stage})
                       AND (SELECT max(started_at) FROM {stage})),
staged AS (
  SELECT *, {cols}, CASE WHEN {good} THEN dense_rank() OVER (PARTITION BY {key}, {good}
    ORDER BY call_id) END AS _n
  FROM {stage})
SELECT s.* EXCLUDE (_n, {names}) REPLACE (coalesce(l.old_id, s.call_id) AS call_id)
FROM staged s LEFT JOIN legacy l ON s._n = l._n AND {on}
"""


def adopt_earlier_ids(conn: duckdb.DuckDBPyConnection, stage: str) -> None:
    """Staged rows that a callmeter before ``na2`` ids imported keep their ``na1:`` id."""
    if fetch_one(conn.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'calls' "
                    "AND NOT temporary"))[0] == 0:
        return
    if fetch_one(conn.execute("SELECT count(*) FROM (SELECT 1 FROM calls WHERE source = 'newapi' "
                    "AND call_id LIKE 'na1:%' LIMIT 1)"))[0]:
        names = [f"_k{i}" for i in range(len(_LEGACY_KEY))]
        conn.execute(ADOPT_LEGACY_SQL.format(
            stage=stage, good=_GOOD_CALL, key=", ".join(_LEGACY_KEY), names=", ".join(names),
            cols=", ".join(f"{e} AS {n}" for e, n in zip(_LEGACY_KEY, names, strict=True)),
            on=" AND ".join(f"s.{n} IS NOT DISTINCT FROM l.{n}" for n in names)))


def notes(conn: duckdb.DuckDBPyConnection, stage: str, options: ImportOptions) -> list[str]:
    """Say which quota_per_unit priced the rows when nothing told us the platform's."""
    if options.quota_per_unit is not None:
        return []
    charged, = fetch_one(conn.execute(
        f"SELECT count(*) FROM {stage} WHERE source = {sql_literal(NAME)} "
        "AND _reject IS NULL AND _skip IS NULL AND charged <> 0"))
    if not charged:
        return []
    return [f"charged = quota ÷ {DEFAULT_QUOTA_PER_UNIT:,} (new-api's default quota per US$1; "
            "this file does not say the platform's): if the platform's GET /api/status shows "
            "another quota_per_unit, import again into a fresh ledger with --quota-per-unit N"]


__all__ = ["NAME", "adopt_earlier_ids", "charged_sql", "detect", "notes", "stage_sql"]
