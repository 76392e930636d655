"""OTLP trace export requests built with opentelemetry-proto's own classes, for tests that need
exact control over the spans (the instrumented-app tests use the real SDK instead)."""

from __future__ import annotations

import base64
import os

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns


def value(v: object) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=str(v))


def attrs(d: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=value(v)) for k, v in d.items()]


def span(attributes: dict, *, start: int = T0, ms: int = 250, error: bool = False,
         name: str = "chat", trace_id: bytes | None = None,
         span_id: bytes | None = None) -> Span:
    return Span(trace_id=trace_id or os.urandom(16), span_id=span_id or os.urandom(8),
                name=name, kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start,
                end_time_unix_nano=start + ms * 1_000_000, attributes=attrs(attributes),
                status=Status(code=Status.STATUS_CODE_ERROR if error
                              else Status.STATUS_CODE_UNSET))


def request(spans: list[Span], resource: dict | None = None,
            scope: str = "opentelemetry.instrumentation.openai_v2") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(attrs(resource or {"service.name": "test-app"}))
    ss = rs.scope_spans.add()
    ss.scope.name = scope
    ss.spans.extend(spans)
    return req


def chat(model: str = "gpt-4o", inp: int = 100, out: int = 20, **more: object) -> dict:
    """Attributes of a semantic-conventions chat span."""
    return {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model, "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": inp, "gen_ai.usage.output_tokens": out, **more}


def otlp_json(req: ExportTraceServiceRequest) -> dict:
    """OTLP/JSON as the specification writes it: camelCase, trace and span ids as hex."""
    doc = json_format.MessageToDict(req)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in sp:
                        sp[key] = base64.b64decode(sp[key]).hex()
    return doc
