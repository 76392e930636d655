"""A GenAI span's token counts, normalised to the ledger's (OpenAI) meaning.

The semantic conventions say ``gen_ai.usage.input_tokens`` includes cached input and
``gen_ai.usage.output_tokens`` includes reasoning, as OpenAI reports them. Two exceptions are
seen in the field: Anthropic-native counts keep cache reads and writes outside the input (OpenLIT
passes them through so), and Gemini-style reasoning sits beside the output (the total then adds
it). Both are folded in and flagged, as the openai importer and the proxy do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from . import attributes as a


@dataclass(frozen=True)
class SpanUsage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    usage_source: str = "none"
    usage_flag: str | None = None


def has_usage(attrs: Mapping[str, object]) -> bool:
    return any(a.count(attrs, (name,)) is not None for name in a.USAGE)


def _cache_kept_apart(provider: str | None, scope: str, reported_input: int,
                      cache_read: int, cache_write: int) -> bool:
    """True when the reported input does not contain the cache reads and writes."""
    if cache_read + cache_write > reported_input:
        return True  # cannot be inside it
    return (provider or "").lower() == "anthropic" and scope.lower().startswith("openlit")


def span_usage(attrs: Mapping[str, object], provider: str | None = None,
               scope: str = "") -> SpanUsage:
    """Token columns for one span; ``usage_source`` 'none' when it reports no usage at all."""
    if not has_usage(attrs):
        return SpanUsage()
    reported_in = a.count(attrs, a.INPUT_TOKENS)
    reported_out = a.count(attrs, a.OUTPUT_TOKENS) or 0
    total = a.count(attrs, a.TOTAL_TOKENS)
    if reported_in is None:  # only a total (rerank-style): all of it is input
        reported_in = max((total or 0) - reported_out, 0)
    cache_read = a.count(attrs, a.CACHE_READ_TOKENS) or 0
    cache_write = a.count(attrs, a.CACHE_CREATION_TOKENS) or 0
    reasoning = a.count(attrs, a.REASONING_TOKENS) or 0
    inp, out, flag = reported_in, reported_out, None
    apart = _cache_kept_apart(provider, scope, reported_in, cache_read, cache_write)
    if apart:
        inp += cache_read + cache_write
        flag = "anthropic_usage_normalised"
    separate = reasoning > 0 and (
        reasoning > reported_out
        or (total is not None and total == reported_in + reported_out + reasoning))
    if separate:
        out += reasoning
        flag = "reasoning_separate"
    elif not apart and total is not None and total != reported_in + reported_out:
        flag = "total_mismatch"
    cached = min(cache_read, inp)
    return SpanUsage(input_tokens=inp, cached_tokens=cached, output_tokens=out,
                     reasoning_tokens=min(reasoning, out),
                     cache_write_tokens=min(cache_write, inp - cached), usage_source="reported",
                     usage_flag=flag)
