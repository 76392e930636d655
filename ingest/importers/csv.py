"""Generic CSV: a header of contract column names (or mapped to them with ``--map``).

Only ``started_at`` and ``model`` are required; everything else takes the ledger's defaults.
The catch-all format, so detection tries it last.
"""

from __future__ import annotations

import csv as _csv
import io
from pathlib import Path

import duckdb

from ledger import CALL_COLUMNS, ENDPOINTS, USAGE_SOURCES, fetch_one, sql_literal

from .base import ImportOptions
from .fields import (
    Field,
    bool_field,
    choice_field,
    count_field,
    first_reason,
    number_field,
    status_field,
    text_field,
    time_field,
)
from .jsonio import ragged_lines

NAME = "csv"


def _header(head: str) -> list[str]:
    first = head.splitlines()[0] if head else ""
    return [c.strip() for c in next(_csv.reader(io.StringIO(first)), [])]


def detect(path: Path, head: str) -> bool:
    cols = set(_header(head))
    return {"started_at", "model"} <= cols


def _fields(present: set[str], timezone: str) -> list[Field]:
    def col(name: str) -> str:
        return f'"{name}"' if name in present else "NULL"

    fields = [time_field("started_at", col("started_at"), timezone)]
    for name in ("call_id", "source", "key_hint", "key_label", "model", "base_model",
                 "image_size", "usage_flag", "key_id"):
        fields.append(text_field(name, col(name)))
    for name in ("input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "images",
                 "characters", "requests", "latency_ms", "ttft_ms", "cache_write_tokens",
                 "cache_write_long_tokens"):
        fields.append(count_field(name, col(name)))
    fields += [
        number_field("audio_seconds", col("audio_seconds")),
        number_field("charged", col("charged"), "DECIMAL(38,12)"),
        bool_field("stream", col("stream")),
        status_field("status", col("status")),
        choice_field("endpoint", col("endpoint"), ENDPOINTS),
        choice_field("billing_mode", col("billing_mode"), ("token", "request")),
        choice_field("usage_source", col("usage_source"), USAGE_SOURCES),
    ]
    return fields


def _tags_sql(present: set[str]) -> str:
    """``team=search,app=bot`` → MAP."""
    if "tags" not in present:
        return "NULL"
    pairs = "list_filter(string_split(nullif(trim(\"tags\"), ''), ','), x -> x LIKE '%=%')"
    return (f"map_from_entries(list_transform({pairs}, "
            "x -> {'key': trim(split_part(x, '=', 1)), 'value': trim(split_part(x, '=', 2))}))")


def _ragged_rows(conn: duckdb.DuckDBPyConnection, path: Path, width: int) -> list[int]:
    """Row numbers (as ``_line``) whose field count differs from the header's; the lenient
    reader would pad or cut them silently. Checked only when DuckDB's strict reader refuses."""
    file = sql_literal(path)
    try:
        fetch_one(conn.execute(f"SELECT count(*) FROM read_csv({file}, header=true, "
                     "all_varchar=true, delim=',', quote='\"', escape='\"')"))
        return []
    except duckdb.Error:
        pass
    return ragged_lines(path)[1]  # shared with every CSV-reading format (jsonio)


def stage_sql(conn: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> str:
    from .base import stage_columns

    header = _header(path.open(encoding="utf-8-sig", errors="replace").readline())
    mapping = options.column_map
    renamed = {c: mapping.get(c, c) for c in header}
    present = {v for v in renamed.values() if v in CALL_COLUMNS}
    fields = _fields(present, options.timezone)
    select_cols = {f.name: f.value for f in fields}
    select_cols["tags"] = _tags_sql(present)
    select_cols["source"] = "coalesce(" + select_cols["source"] + ", 'csv')"
    aliases = ", ".join(f'"{src}" AS "{dst}"' for src, dst in renamed.items()
                        if dst in CALL_COLUMNS)
    file = sql_literal(path)
    raw = (f"SELECT row_number() OVER () + 1 AS _line, {aliases or 'NULL AS _none'} "
           f"FROM read_csv({file}, header=true, all_varchar=true, "
           f"strict_mode=false, null_padding=true, ignore_errors=false)")
    reason = first_reason(fields)
    ragged = _ragged_rows(conn, path, len(header))
    if ragged:
        lines = ", ".join(map(str, ragged))
        reason = (f"coalesce(CASE WHEN _line IN ({lines}) THEN 'the row does not have the "
                  f"header''s {len(header)} fields' END, {reason})")
    return (f"SELECT {stage_columns(select_cols)},\n  _line, "
            f"CAST({reason} AS VARCHAR) AS _reject, "
            f"CAST(NULL AS VARCHAR) AS _skip, CAST(NULL AS VARCHAR) AS _raw_key "
            f"FROM ({raw})")
