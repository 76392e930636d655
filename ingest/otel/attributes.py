"""Which span attributes callmeter reads, in every spelling instrumentations use: one table.

Checked against the GenAI semantic conventions as shipped in ``opentelemetry-semantic-conventions``
0.66b2 (``semconv/_incubating/attributes/gen_ai_attributes.py``), OpenLLMetry's
``opentelemetry-semantic-conventions-ai`` 0.5.1 (``semconv_ai/__init__.py``) and
``opentelemetry-instrumentation-openai`` 0.62.4 (``shared/__init__.py``,
``_set_response_attributes``), the official ``opentelemetry-instrumentation-openai-v2`` 2.4b0
with ``opentelemetry-util-genai`` 1.1b0, OpenLIT 1.45.0 (``semcov/__init__.py``), OpenInference's
``llm.token_count.*`` and LiteLLM 1.110.2's ``integrations/opentelemetry.py`` (read 2026-12).
The first spelling present wins; docs/otel-focus.md lists them for users.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

# Model as called first (the price sheet is keyed by it, `-c` included), as answered second.
MODEL = ("gen_ai.request.model", "llm.request.model", "llm.model_name",
         "gen_ai.response.model", "llm.response.model")
RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
OPERATION = ("gen_ai.operation.name",)

INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                "llm.usage.prompt_tokens", "llm.token_count.prompt")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                 "llm.usage.completion_tokens", "llm.token_count.completion")
TOTAL_TOKENS = ("gen_ai.usage.total_tokens", "llm.usage.total_tokens", "llm.token_count.total")
CACHE_READ_TOKENS = ("gen_ai.usage.cache_read.input_tokens",
                     "gen_ai.usage.cache_read_input_tokens",
                     "gen_ai.usage.prompt_tokens_details.cached_tokens",
                     "llm.token_count.prompt_details.cache_read")
CACHE_CREATION_TOKENS = ("gen_ai.usage.cache_creation.input_tokens",
                         "gen_ai.usage.cache_creation_input_tokens",
                         "gen_ai.usage.prompt_tokens_details.cache_creation_tokens",
                         "llm.token_count.prompt_details.cache_write")
REASONING_TOKENS = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
                    "llm.usage.reasoning_tokens",
                    "gen_ai.usage.completion_tokens_details.reasoning_tokens",
                    "llm.token_count.completion_details.reasoning")
USAGE = (INPUT_TOKENS + OUTPUT_TOKENS + TOTAL_TOKENS + CACHE_READ_TOKENS
         + CACHE_CREATION_TOKENS + REASONING_TOKENS)

STREAM = ("gen_ai.request.stream", "gen_ai.is_streaming", "llm.is_streaming")
TIME_TO_FIRST_CHUNK = ("gen_ai.response.time_to_first_chunk",)  # seconds
HTTP_STATUS = ("http.response.status_code", "http.status_code")
ERROR_TYPE = ("error.type",)

# Who called: LiteLLM's hash of its virtual key is kept as it is (the litellm importer keeps the
# same value); ``callmeter.key_id`` is an id the application chose, fingerprinted like a key.
LITELLM_KEY_HASH = ("metadata.user_api_key_hash",)
KEY_ID = ("callmeter.key_id",)
KEY_LABEL = ("callmeter.key_label", "metadata.user_api_key_alias")

# Tags: resource attributes kept under their own names; the user and team as the proxy and the
# litellm importer name them; any ``callmeter.tag.NAME`` (resource or span) as NAME.
RESOURCE_TAGS = ("service.name", "service.namespace", "deployment.environment.name",
                 "deployment.environment")
USER_TAG = ("gen_ai.user", "user.id", "enduser.id", "metadata.user_api_key_end_user_id")
TEAM_TAG = ("metadata.user_api_key_team_alias",)
TAG_PREFIX = "callmeter.tag."

# Framework spans that repeat the usage of the model calls under them (counted there).
OPENINFERENCE_KIND = "openinference.span.kind"
OPENINFERENCE_CALL_KINDS = ("LLM", "EMBEDDING")
TRACELOOP_KIND = "traceloop.span.kind"
TRACELOOP_WRAPPER_KINDS = ("workflow", "task", "agent", "tool")


def any_value(value: AnyValue) -> object:
    """An OTLP AnyValue as a plain Python value (arrays as lists, kvlists as dicts)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attribute_map(value.kvlist_value.values)
    return getattr(value, kind)


def attribute_map(attributes: Iterable[KeyValue]) -> dict[str, object]:
    """``key → value`` for a repeated KeyValue field (a later duplicate key wins)."""
    return {kv.key: any_value(kv.value) for kv in attributes}


def first(attrs: Mapping[str, object], names: Iterable[str]) -> object:
    """The value of the first of ``names`` present (and not empty) in ``attrs``."""
    for name in names:
        value = attrs.get(name)
        if value is not None and value != "":
            return value
    return None


def count(attrs: Mapping[str, object], names: Iterable[str]) -> int | None:
    """A token count: the first present spelling as a non-negative int (None when absent).

    Counts arrive as int, as double, or as text (JSON encoders, some SDKs); anything else
    that is not a whole number is treated as absent rather than guessed.
    """
    value = first(attrs, names)
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and value >= 0 else None


def text(attrs: Mapping[str, object], names: Iterable[str]) -> str | None:
    value = first(attrs, names)
    return None if value is None else str(value).strip() or None
