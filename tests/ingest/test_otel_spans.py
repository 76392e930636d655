"""Issue 19, point 1: every spelling of GenAI usage that instrumentations write, normalised to
the ledger's meaning (cached ⊆ input, reasoning ⊆ output), and the spans that are not calls.

Attribute sets are the ones each instrumentation's own code writes (see ingest/otel/attributes.py
for the files read). The last test is differential: spans made by the real OpenTelemetry SDK,
encoded by its protobuf encoder and by its JSON encoder, decode to the same records.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from otlp_requests import chat, request, span

from ingest.otel import convert, decode_request, request_from_json
from ingest.otel.decode import PROTOBUF
from ledger.keys import KeyFingerprinter


def one(attrs: dict, *, scope: str = "opentelemetry.instrumentation.openai_v2",
        error: bool = False, resource: dict | None = None) -> dict:
    done = convert(request([span(attrs, error=error)], resource, scope),
                   KeyFingerprinter(b"k" * 32))
    assert len(done.calls) == 1, (done.skipped, done.rejected)
    return done.calls[0]


def tokens(rec: dict) -> tuple:
    return (rec["input_tokens"], rec["cached_tokens"], rec["output_tokens"],
            rec["reasoning_tokens"], rec.get("usage_flag"))


@pytest.mark.parametrize(("attrs", "scope", "expected"), [
    # semantic conventions (openai-v2, OpenLLMetry 0.62): cache and reasoning inside
    (chat(inp=120, out=40, **{"gen_ai.usage.cache_read.input_tokens": 20,
                              "gen_ai.usage.reasoning.output_tokens": 30}),
     "x", (120, 20, 40, 30, None)),
    # OpenLLMetry's own reasoning spelling and total
    (chat(inp=64, out=40, **{"gen_ai.usage.reasoning_tokens": 30,
                             "gen_ai.usage.total_tokens": 104}), "x", (64, 0, 40, 30, None)),
    # deprecated gen_ai.usage.prompt_tokens / completion_tokens
    ({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.prompt_tokens": 9,
      "gen_ai.usage.completion_tokens": 4}, "x", (9, 0, 4, 0, None)),
    # older OpenLLMetry: llm.usage.*, llm.request.model
    ({"llm.request.model": "gpt-4o", "llm.usage.prompt_tokens": 50,
      "llm.usage.completion_tokens": 7, "llm.usage.total_tokens": 57}, "x", (50, 0, 7, 0, None)),
    # OpenInference: llm.token_count.*, llm.model_name, span kind LLM
    ({"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
      "llm.token_count.prompt": 300, "llm.token_count.completion": 20,
      "llm.token_count.prompt_details.cache_read": 256,
      "llm.token_count.completion_details.reasoning": 5}, "x", (300, 256, 20, 5, None)),
    # OpenLIT: detail spellings
    (chat(inp=80, out=10, **{"gen_ai.usage.prompt_tokens_details.cached_tokens": 64,
                             "gen_ai.usage.completion_tokens_details.reasoning_tokens": 6}),
     "openlit.otel.tracing", (80, 64, 10, 6, None)),
    # OpenLIT passes Anthropic's native counts: cache outside the input
    (chat("claude-3-7-sonnet", 10, 5, **{"gen_ai.provider.name": "anthropic",
                                         "gen_ai.usage.cache_read.input_tokens": 4,
                                         "gen_ai.usage.cache_creation.input_tokens": 3}),
     "openlit.otel.tracing", (17, 4, 5, 0, "anthropic_usage_normalised")),
    # cache reads larger than the input cannot be inside it, whoever wrote the span
    (chat(inp=10, out=5, **{"gen_ai.usage.cache_read_input_tokens": 2000}), "x",
     (2010, 2000, 5, 0, "anthropic_usage_normalised")),
    # Gemini-style reasoning beside the output: the total says so
    (chat("gemini-2.5-pro", 100, 50, **{"gen_ai.usage.reasoning.output_tokens": 200,
                                        "gen_ai.usage.total_tokens": 350}), "x",
     (100, 0, 250, 200, "reasoning_separate")),
    # a total that does not add up is flagged, the parts kept
    (chat(inp=100, out=50, **{"gen_ai.usage.total_tokens": 999}), "x",
     (100, 0, 50, 0, "total_mismatch")),
    # counts sent as text or double by some SDKs
    (chat(inp="42", out=7.0), "x", (42, 0, 7, 0, None)),
])
def test_usage_spellings(attrs, scope, expected):
    rec = one(attrs, scope=scope)
    assert tokens(rec) == expected and rec["usage_source"] == "reported"


@pytest.mark.parametrize(("attrs", "scope", "written"), [
    # OpenLIT passes Anthropic's native counts (cache kept outside the input)
    (chat("claude-sonnet-4-5", 10, 5, **{"gen_ai.provider.name": "anthropic",
                                         "gen_ai.usage.cache_read.input_tokens": 4,
                                         "gen_ai.usage.cache_creation.input_tokens": 3}),
     "openlit.otel.tracing", 3),
    # semantic conventions' spelling, cache inside the input
    (chat("claude-sonnet-4-5", 100, 5, **{"gen_ai.usage.cache_creation.input_tokens": 60}),
     "x", 60),
    # OpenInference
    ({"openinference.span.kind": "LLM", "llm.model_name": "claude-sonnet-4-5",
      "llm.token_count.prompt": 300, "llm.token_count.completion": 20,
      "llm.token_count.prompt_details.cache_write": 200}, "x", 200),
    (chat(inp=80, out=10), "x", 0),
])
def test_cache_writes_fill_the_ledger_column(attrs, scope, written):
    assert one(attrs, scope=scope)["cache_write_tokens"] == written


def test_no_usage_is_marked_none_not_zero_cost_in_disguise():
    rec = one({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"})
    assert rec["usage_source"] == "none" and rec["input_tokens"] == 0


@pytest.mark.parametrize(("error_type", "attrs", "status"), [
    ("RateLimitError", {}, 429),
    ("<class 'openai.AuthenticationError'>", {}, 401),   # openai-v2 with util-genai 1.1b0
    ("APITimeoutError", {}, 504),
    ("503", {}, 503),
    ("SomethingElse", {}, 500),
    ("", {"http.response.status_code": 403}, 403),
])
def test_status_from_span(error_type, attrs, status):
    extra = {"error.type": error_type} if error_type else {}
    rec = one({**chat(), **extra, **attrs}, error=True)
    assert rec["status"] == status


@pytest.mark.parametrize(("attrs", "reason"), [
    ({"openinference.span.kind": "CHAIN", "llm.model_name": "gpt-4o",
      "llm.token_count.prompt": 900}, "agent"),
    ({"traceloop.span.kind": "workflow", "gen_ai.request.model": "gpt-4o",
      "gen_ai.usage.input_tokens": 900}, "agent"),
    ({"gen_ai.operation.name": "execute_tool", "gen_ai.request.model": "gpt-4o"}, "agent"),
    ({"http.request.method": "POST", "url.full": "https://x/v1/chat"}, "not a GenAI span"),
    ({"ai.model.id": "gpt-4o", "ai.usage.promptTokens": 10}, "not a GenAI span"),
])
def test_spans_that_are_not_calls_are_counted(attrs, reason):
    done = convert(request([span(attrs)]))
    assert not done.calls and not done.rejected
    assert [k for k in done.skipped if k.startswith(reason)]


def test_keys_tags_stream_and_ttft():
    rec = one({**chat(), "gen_ai.request.stream": True,
               "gen_ai.response.time_to_first_chunk": 0.25, "gen_ai.user": "u-17",
               "metadata.user_api_key_hash": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539",
               "metadata.user_api_key_alias": "prod-key", "callmeter.tag.app": "bot"},
              resource={"service.name": "svc", "deployment.environment.name": "prod",
                        "callmeter.tag.team": "search"})
    assert rec["stream"] is True and rec["ttft_ms"] == 250
    assert rec["key_id"].startswith("88dc28d0") and rec["key_label"] == "prod-key"
    assert "key_hint" not in rec
    assert rec["tags"] == {"service.name": "svc", "deployment.environment.name": "prod",
                           "team": "search", "app": "bot", "user": "u-17"}


# -- differential: the SDK's protobuf encoder against its JSON encoder --------------------

ATTRS = st.fixed_dictionaries(
    {"gen_ai.request.model": st.sampled_from(["gpt-4o", "gpt-4o-c", "o4-mini", "m\u00e9-1"]),
     "gen_ai.usage.input_tokens": st.integers(0, 2**40)},
    optional={"gen_ai.usage.output_tokens": st.integers(0, 2**31),
              "gen_ai.usage.cache_read.input_tokens": st.integers(0, 2**20),
              "gen_ai.usage.reasoning_tokens": st.integers(0, 2**20),
              "gen_ai.operation.name": st.sampled_from(["chat", "embeddings", "other_op"]),
              "gen_ai.request.stream": st.booleans(),
              "gen_ai.response.time_to_first_chunk": st.floats(0, 100),
              "callmeter.tag.team": st.text(min_size=1, max_size=20)})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spans=st.lists(st.tuples(ATTRS, st.booleans(), st.integers(0, 10**9)), min_size=1,
                      max_size=5))
def test_json_and_protobuf_encodings_decode_alike(spans):
    from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans as to_json
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as to_pb
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("differential")
    for attrs, failed, ns in spans:
        with tracer.start_as_current_span("chat", start_time=1_767_225_600_000_000_000 + ns,
                                          attributes=attrs, end_on_exit=True) as sp:
            if failed:
                sp.set_status(Status(StatusCode.ERROR))
    finished = memory.get_finished_spans()
    from_pb = convert(decode_request(to_pb(finished).SerializeToString(), PROTOBUF))
    from_json = convert(request_from_json(to_json(finished).to_dict()))
    assert from_pb.calls == from_json.calls
    assert len(from_pb.calls) == len(spans)
