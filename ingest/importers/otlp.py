"""OTLP/JSON trace files, as the OpenTelemetry Collector's file exporter (and the Python SDK's
``opentelemetry-exporter-otlp-json-file``) write them: one ExportTraceServiceRequest per line,
optionally gzipped; a single pretty-printed request is read too.

Spans become calls exactly as ``callmeter otel`` records them (:mod:`ingest.otel.spans`), with the
same ``call_id`` (trace id + span id), so a file of spans the receiver already took adds nothing.
Non-GenAI spans are skipped and counted; a line that is not an OTLP trace export, or a GenAI span
without a model, is rejected by line. Metrics and logs lines are skipped.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from ledger import CALL_COLUMNS, KeyFingerprinter, duckdb_columns_struct, encode_record

from ..otel import OtlpDecodeError, convert, request_from_json
from ..otel.decode import read_gzip_file
from .base import ImportOptions
from .jsonio import first_record, opens_document

NAME = "otlp"
TABLE = "_otlp_records"
SIGNALS = ("resourceSpans", "resource_spans")
OTHER_SIGNALS = ("resourceMetrics", "resourceLogs", "resource_metrics", "resource_logs")


def detect(path: Path, head: str) -> bool:
    with open(path, "rb") as fh:
        start = fh.read(2)
    if start == b"\x1f\x8b":  # gzip: look inside
        head = read_gzip_file(Path(path).read_bytes())[:65536].decode("utf-8", "replace")
    first = head.lstrip()[:2000]
    record = first_record(head)   # past torn leading lines, whose keys may be broken
    return any(f'"{key}"' in first or (record is not None and key in record) for key in SIGNALS)


def _documents(raw: bytes) -> Iterator[tuple[int, object]]:
    """(line, parsed JSON or the error text) per non-blank line; one document when the file is
    a single pretty-printed request (its first line opens it)."""
    text = raw.decode("utf-8", errors="replace")
    lines = text.splitlines()
    filled = [line for line in lines if line.strip()][:2]
    if not filled:
        return
    try:
        json.loads(filled[0])
    except ValueError:
        try:
            yield 1, json.loads(text)
            return
        except ValueError as exc:
            if opens_document(filled[0].strip(), filled[1] if len(filled) > 1 else ""):
                yield 1, f"not JSON: {exc}"
                return
            # JSON Lines whose leading lines are torn: each line is its own record
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except ValueError as exc:
                yield number, f"not JSON: {exc}"


def _rows(path: Path, fingerprinter: KeyFingerprinter | None) -> Iterator[dict[str, Any]]:
    """Stage rows: one per call, per skipped span and per rejected span or line."""
    for line, doc in _documents(read_gzip_file(Path(path).read_bytes())):
        if isinstance(doc, dict) and any(k in doc for k in OTHER_SIGNALS) \
                and not any(k in doc for k in SIGNALS):
            yield {"_line": line, "_skip": "metrics or logs record"}
            continue
        try:
            if isinstance(doc, str):
                raise OtlpDecodeError(doc)
            done = convert(request_from_json(doc), fingerprinter)
        except OtlpDecodeError as exc:
            yield {"_line": line, "_reject": str(exc)}
            continue
        for call in done.calls:
            yield {**call, "_line": line}
        for reason, n in done.skipped.items():
            for _ in range(n):
                yield {"_line": line, "_skip": reason}
        for ref, reason in done.rejected:
            yield {"_line": line, "_reject": f"span {ref}: {reason}"}


def stage_sql(conn: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> str:
    """Decode the file into a TEMP table (through the spool's JSON form) and select from it."""
    from .base import stage_columns

    fd, tmp = tempfile.mkstemp(suffix=".jsonl", prefix="callmeter-otlp-")
    try:
        with os.fdopen(fd, "wb") as out:
            for row in _rows(path, options.fingerprinter):
                out.write(encode_record(row))
        columns = duckdb_columns_struct()[:-1] + (
            ", '_line': 'BIGINT', '_reject': 'VARCHAR', '_skip': 'VARCHAR'}")
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {TABLE} AS SELECT * FROM read_json(?, "
                     f"format='newline_delimited', columns={columns})", [tmp])
    finally:
        os.unlink(tmp)
    cols = stage_columns({name: name for name in CALL_COLUMNS})
    return (f"SELECT {cols}, _line, _reject, _skip, CAST(NULL AS VARCHAR) AS _raw_key "
            f"FROM {TABLE}")
