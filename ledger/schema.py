"""The contract columns of the ledger's ``calls`` table and its one vocabulary, in one place.

Spool segments, importers and the loader all use these names and types, so a record written
anywhere lands in the ledger the same way. The endpoint, source, usage-source and billing-mode
values, the defaults of a record that leaves a column out and the ``-c`` rule (a model name
ending in ``-c`` is the per-request variant of the same model) live here and nowhere else.
"""

from __future__ import annotations

# Contract columns (../shared/DESIGN.md) followed by callmeter's extensions.
CALL_COLUMNS: dict[str, str] = {
    "call_id": "VARCHAR",
    "source": "VARCHAR",
    "started_at": "TIMESTAMPTZ",
    "latency_ms": "INTEGER",
    "ttft_ms": "INTEGER",
    "key_id": "VARCHAR",
    "key_hint": "VARCHAR",
    "key_label": "VARCHAR",
    "endpoint": "VARCHAR",
    "model": "VARCHAR",
    "base_model": "VARCHAR",
    "billing_mode": "VARCHAR",
    "stream": "BOOLEAN",
    "status": "SMALLINT",
    "requests": "INTEGER",
    "input_tokens": "BIGINT",
    "cached_tokens": "BIGINT",
    "output_tokens": "BIGINT",
    "reasoning_tokens": "BIGINT",
    "images": "INTEGER",
    "characters": "INTEGER",
    "audio_seconds": "DOUBLE",
    "usage_source": "VARCHAR",
    "charged": "DECIMAL(38,12)",
    # extensions
    "tags": "MAP(VARCHAR, VARCHAR)",
    "image_size": "VARCHAR",
    "usage_flag": "VARCHAR",
    # prompt-cache writes (m007): cache_write ⊆ input, cache_write_long ⊆ cache_write
    "cache_write_tokens": "BIGINT",
    "cache_write_long_tokens": "BIGINT",
}

ENDPOINTS = ("chat", "embeddings", "images", "speech", "transcriptions", "rerank", "messages",
             "responses", "gemini", "count_tokens", "models", "probe", "other")
# Text generation in each provider's own format: OpenAI chat completions, Anthropic Messages,
# OpenAI Responses, Gemini generateContent (recommendations compare these models as chat).
TEXT_ENDPOINTS = ("chat", "messages", "responses", "gemini")
# Calls a platform never bills (token counting, model lists, clients' reachability probes):
# kept in the ledger as traffic, priced at exactly 0, never listed as unpriced.
NON_BILLABLE_ENDPOINTS = ("count_tokens", "models", "probe")
SOURCES = ("proxy", "otel", "newapi", "openai", "openai-usage", "litellm", "csv", "demo")
USAGE_SOURCES = ("reported", "estimated", "none")
BILLING_MODES = ("token", "request")

# Defaults applied when a record leaves a column out (see DESIGN.md, generic CSV import); the
# loader's normalising SELECT (ingest.normalise) writes them as SQL.
CALL_DEFAULTS: dict[str, object] = {
    "requests": 1,
    "status": 200,
    "input_tokens": 0,
    "cached_tokens": 0,
    "output_tokens": 0,
    "reasoning_tokens": 0,
    "cache_write_tokens": 0,
    "cache_write_long_tokens": 0,
    "images": 0,
    "characters": 0,
    "audio_seconds": 0.0,
    "stream": False,
    "endpoint": "chat",
    "usage_source": "reported",
}

# Money the platform moved that is not a call (ledger table ``adjustments``, migration m006):
# a refund of a failed async task, the settlement of a task whose final cost differed from what
# was charged up front, a fee charged on a failed request, or a billed line of a provider's
# invoice that its usage export does not tie to requests. ``amount`` is signed: positive adds to
# what the platform charged, negative (a refund) takes away. Kept apart from ``calls`` so every
# count of calls stays one row per call.
ADJUSTMENT_COLUMNS: dict[str, str] = {
    "adjustment_id": "VARCHAR",
    "source": "VARCHAR",
    "occurred_at": "TIMESTAMPTZ",
    "kind": "VARCHAR",
    "amount": "DECIMAL(38,12)",
    "key_id": "VARCHAR",
    "key_label": "VARCHAR",
    "model": "VARCHAR",
    "task_id": "VARCHAR",
    "reason": "VARCHAR",
    "tags": "MAP(VARCHAR, VARCHAR)",
}
ADJUSTMENT_KINDS = ("refund", "settlement", "fee", "billed")

def duckdb_columns_struct() -> str:
    """``{'call_id': 'VARCHAR', ...}``: the ``columns=`` argument of DuckDB's readers."""
    inner = ", ".join(f"'{name}': '{typ}'" for name, typ in CALL_COLUMNS.items())
    return "{" + inner + "}"


def create_adjustments_sql(table: str = "adjustments") -> str:
    cols = ",\n    ".join(f"{name} {typ}" for name, typ in ADJUSTMENT_COLUMNS.items())
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    {cols}\n)"


def adjustment_columns_struct() -> str:
    """``{'adjustment_id': 'VARCHAR', ...}``: ``columns=`` for reading adjustment segments."""
    inner = ", ".join(f"'{name}': '{typ}'" for name, typ in ADJUSTMENT_COLUMNS.items())
    return "{" + inner + "}"


# A model name ending in -c is the per-request variant of the same model.
REQUEST_SUFFIX = "-c"


def split_model(model: str) -> tuple[str, str]:
    """``gpt-4o-c`` → (``gpt-4o``, ``request``); ``gpt-4o`` → (``gpt-4o``, ``token``)."""
    if model.endswith(REQUEST_SUFFIX):
        return model[:-len(REQUEST_SUFFIX)], "request"
    return model, "token"


def variant_name(base_model: str, mode: str) -> str:
    """The model name that calls ``base_model`` under billing ``mode`` (``token``/``request``)."""
    return base_model + REQUEST_SUFFIX if mode == "request" else base_model


# (a LIKE and a cut, not regexp_replace: ~6x cheaper per row, same result)
def base_model_sql(model: str) -> str:
    """SQL for the base model of the model name expression ``model``."""
    return f"CASE WHEN {model} LIKE '%{REQUEST_SUFFIX}' THEN left({model}, -2) ELSE {model} END"


def billing_mode_sql(model: str) -> str:
    """SQL for the billing mode (``token``/``request``) of the model name expression ``model``."""
    return f"CASE WHEN {model} LIKE '%{REQUEST_SUFFIX}' THEN 'request' ELSE 'token' END"
