"""OTLP trace payloads, binary protobuf or JSON, plain or gzip, into the protobuf message.

Decoding is ``opentelemetry-proto``'s generated classes and protobuf's own JSON parser. The one
thing the JSON parser does not know is OTLP/JSON's rule that trace and span ids are hex strings,
not base64 (OTLP specification, "JSON Protobuf Encoding"): ids are re-encoded before parsing.
Unknown fields are ignored, as the specification asks of receivers.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from .errors import OtlpDecodeError, OtlpTooLarge

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def media_type(content_type: str | None) -> str | None:
    """``application/json; charset=utf-8`` → ``application/json``; None for anything else."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if kind == JSON:
        return JSON
    return None


# Content-Encoding → zlib window bits: gzip is OTLP's; the Python exporters also offer deflate.
ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """Expand a gzip or deflate body, refusing to grow past ``limit`` bytes (a small bomb
    stays small)."""
    inflater = zlib.decompressobj(ENCODINGS[encoding])
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise OtlpDecodeError(f"body is not valid {encoding}: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise OtlpTooLarge(f"{encoding} body expands past the limit of {limit} bytes")
    return out


def _hex_ids_to_base64(node: object) -> None:
    """Rewrite OTLP/JSON hex ids in place to the base64 protobuf's JSON mapping expects."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str) and value:
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise OtlpDecodeError(f"{key} {value!r} is not a hex id") from None
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def request_from_json(doc: object) -> ExportTraceServiceRequest:
    """An OTLP/JSON document (already parsed) as an ExportTraceServiceRequest."""
    if not isinstance(doc, dict):
        raise OtlpDecodeError("an OTLP/JSON export is a JSON object with resourceSpans")
    _hex_ids_to_base64(doc)
    try:
        return json_format.ParseDict(doc, ExportTraceServiceRequest(),
                                     ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, ValueError) as exc:
        raise OtlpDecodeError(f"not an OTLP/JSON trace export: {exc}") from None


def decode_request(body: bytes, kind: str) -> ExportTraceServiceRequest:
    """Parse an (already gunzipped) body of media type ``kind`` (PROTOBUF or JSON)."""
    if kind == JSON:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise OtlpDecodeError(f"body is not JSON: {exc}") from None
        return request_from_json(doc)
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise OtlpDecodeError(f"body is not an OTLP protobuf trace export: {exc}") from None
    return request


def encode_response(kind: str, rejected: int = 0, message: str = "") -> bytes:
    """The ExportTraceServiceResponse, in the request's encoding (partial success when any
    span was rejected)."""
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if kind == JSON:
        return json.dumps(json_format.MessageToDict(response)).encode()
    return response.SerializeToString()


def read_gzip_file(raw: bytes) -> bytes:
    """A whole file that may be gzipped (the Collector's file exporter can compress)."""
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
