"""GenAI spans into ledger call records: one span, one call; everything else counted and left.

A record carries the contract columns only (as the proxy's do): never a prompt, a completion, a
header or a key, whatever else the span holds. ``call_id`` is ``otel:<trace id>:<span id>``, so a
span exported twice (a retry after a lost acknowledgement, or the same spans received live and
imported from a file) is one call.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from ledger import KeyFingerprinter, key_hint

from ..normalise import split_model
from . import attributes as a
from .usage import has_usage, span_usage

SOURCE = "otel"
MAX_TAGS = 16
MAX_TAG_TEXT = 128

# gen_ai.operation.name → ledger endpoint; agent and tool operations are not model calls.
CALL_OPERATIONS = {"chat": "chat", "text_completion": "chat", "generate_content": "chat",
                   "embeddings": "embeddings"}
WRAPPER_OPERATIONS = ("invoke_agent", "create_agent", "execute_tool", "invoke_workflow")
# error.type values of the OpenAI and Anthropic SDKs → the HTTP status behind them (the proxy
# records a timeout as 504 and a refused connection as 502).
SDK_ERROR_STATUS = {"BadRequestError": 400, "AuthenticationError": 401,
                    "PermissionDeniedError": 403, "NotFoundError": 404, "ConflictError": 409,
                    "UnprocessableEntityError": 422, "RateLimitError": 429,
                    "InternalServerError": 500, "ServiceUnavailableError": 503,
                    "OverloadedError": 529, "APITimeoutError": 504, "Timeout": 504,
                    "APIConnectionError": 502}
_CLASS_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)'?>?\s*$")

SKIP_NOT_GENAI = "not a GenAI span"
SKIP_WRAPPER = "agent, tool or workflow span (its model calls are counted in their own spans)"


@dataclass
class Conversion:
    """What one export request became: call records, skipped spans by reason, rejections."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (trace/span, reason)

    @property
    def spans(self) -> int:
        return len(self.calls) + sum(self.skipped.values()) + len(self.rejected)


def iter_spans(request: ExportTraceServiceRequest
               ) -> Iterator[tuple[dict[str, object], str, Span]]:
    """(resource attributes, instrumentation scope name, span) for every span of a request."""
    for resource_spans in request.resource_spans:
        resource = a.attribute_map(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield resource, scope_spans.scope.name, span


def span_ref(span: Span) -> str:
    return f"{span.trace_id.hex()}/{span.span_id.hex()}"


def _utc(nanos: int) -> datetime:
    seconds, rest = divmod(nanos, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=rest // 1000)


def _status(span: Span, attrs: Mapping[str, object]) -> int:
    """HTTP status of the call: an HTTP attribute, else the SDK error type, else 200 / 500."""
    http = a.count(attrs, a.HTTP_STATUS)
    if http is not None and 100 <= http <= 599:
        return http
    if span.status.code != Status.STATUS_CODE_ERROR:
        return 200
    error = a.text(attrs, a.ERROR_TYPE) or ""
    if error.isdigit() and 400 <= int(error) <= 599:
        return int(error)
    match = _CLASS_NAME.search(error.rstrip("'>"))
    return SDK_ERROR_STATUS.get(match.group(1) if match else "", 500)


def _tags(resource: Mapping[str, object], attrs: Mapping[str, object]) -> dict[str, str] | None:
    tags: dict[str, str] = {}
    for name in a.RESOURCE_TAGS:
        text = a.text(resource, (name,))
        if text:
            tags[name] = text
    for source in (resource, attrs):
        for name, value in source.items():
            if name.startswith(a.TAG_PREFIX) and len(name) > len(a.TAG_PREFIX) \
                    and value not in (None, ""):
                tags[name[len(a.TAG_PREFIX):]] = str(value)
    for tag, names in (("user", a.USER_TAG), ("team", a.TEAM_TAG)):
        value = a.text(attrs, names) or a.text(resource, names)
        if value:
            tags.setdefault(tag, value)
    kept = list(tags.items())[:MAX_TAGS]
    return {k[:MAX_TAG_TEXT]: v[:MAX_TAG_TEXT] for k, v in kept} or None


def _key(attrs: Mapping[str, object], fingerprinter: KeyFingerprinter | None) -> dict[str, Any]:
    """key_id / key_hint / key_label from the attributes; a raw id never leaves this function."""
    out: dict[str, Any] = {}
    label = a.text(attrs, a.KEY_LABEL)
    if label:
        out["key_label"] = label[:MAX_TAG_TEXT]
    litellm_hash = a.text(attrs, a.LITELLM_KEY_HASH)
    if litellm_hash:
        out["key_id"] = litellm_hash
        return out
    raw = a.text(attrs, a.KEY_ID)
    if raw and fingerprinter is not None:
        out["key_id"] = fingerprinter.fingerprint(raw)
        if raw.startswith("sk-"):
            out["key_hint"] = key_hint(raw)
    return out


def _is_wrapper(attrs: Mapping[str, object], operation: str | None) -> bool:
    kind = a.text(attrs, (a.OPENINFERENCE_KIND,))
    if kind and kind.upper() not in a.OPENINFERENCE_CALL_KINDS:
        return True
    loop_kind = a.text(attrs, (a.TRACELOOP_KIND,))
    return bool(loop_kind and loop_kind.lower() in a.TRACELOOP_WRAPPER_KINDS) or \
        operation in WRAPPER_OPERATIONS


def _is_genai(attrs: Mapping[str, object]) -> bool:
    return bool(a.text(attrs, a.MODEL) or a.text(attrs, a.OPERATION)
                or a.text(attrs, a.PROVIDER) or has_usage(attrs))


def _endpoint(operation: str | None, span: Span) -> str:
    if operation:
        return CALL_OPERATIONS.get(operation, "other")
    return "embeddings" if "embedding" in span.name.lower() else "chat"


def call_record(span: Span, resource: Mapping[str, object], scope: str,
                fingerprinter: KeyFingerprinter | None) -> dict[str, Any] | str | None:
    """The call record of a GenAI span; a skip reason (str) for other spans; None: no model."""
    attrs = a.attribute_map(span.attributes)
    if not _is_genai(attrs):
        return SKIP_NOT_GENAI
    operation = a.text(attrs, a.OPERATION)
    if _is_wrapper(attrs, operation):
        return SKIP_WRAPPER
    model = a.text(attrs, a.MODEL)
    if model is None or not span.start_time_unix_nano:
        return None
    base_model, mode = split_model(model)
    usage = span_usage(attrs, a.text(attrs, a.PROVIDER), scope)
    ttft = a.first(attrs, a.TIME_TO_FIRST_CHUNK)
    stream = a.first(attrs, a.STREAM)
    record: dict[str, Any] = {
        "call_id": f"{SOURCE}:{span.trace_id.hex()}:{span.span_id.hex()}",
        "source": SOURCE,
        "started_at": _utc(span.start_time_unix_nano).isoformat(),
        "latency_ms": max(span.end_time_unix_nano - span.start_time_unix_nano, 0) // 1_000_000,
        "endpoint": _endpoint(operation, span),
        "model": model, "base_model": base_model, "billing_mode": mode,
        "stream": stream is True or str(stream).lower() == "true" or ttft is not None,
        "status": _status(span, attrs),
        "requests": 1,
        "input_tokens": usage.input_tokens, "cached_tokens": usage.cached_tokens,
        "output_tokens": usage.output_tokens, "reasoning_tokens": usage.reasoning_tokens,
        "cache_write_tokens": usage.cache_write_tokens, "usage_source": usage.usage_source,
    }
    if isinstance(ttft, int | float) and ttft >= 0:
        record["ttft_ms"] = int(ttft * 1000)
    if usage.usage_flag:
        record["usage_flag"] = usage.usage_flag
    record.update(_key({**resource, **attrs}, fingerprinter))
    tags = _tags(resource, attrs)
    if tags:
        record["tags"] = tags
    return record


def convert(request: ExportTraceServiceRequest,
            fingerprinter: KeyFingerprinter | None = None) -> Conversion:
    """Every span of an export request: GenAI spans become calls, the rest are counted."""
    out = Conversion()
    for resource, scope, span in iter_spans(request):
        result = call_record(span, resource, scope, fingerprinter)
        if isinstance(result, dict):
            out.calls.append(result)
        elif isinstance(result, str):
            out.skipped[result] += 1
        else:
            reason = ("GenAI span without a model (gen_ai.request.model)"
                      if span.start_time_unix_nano else "span without a start time")
            out.rejected.append((span_ref(span), reason))
    return out
