"""Usage of one call, per endpoint, normalised to the OpenAI meaning of the ledger's columns.

Reported usage wins; when a response carries none, tokens are counted locally
(``usage_source = estimated``); a usage whose parts do not add up is flagged ``total_mismatch``.

Formats read, as their SDK types define them (read 2026-12): OpenAI chat ``CompletionUsage`` and
Responses ``ResponseUsage`` (openai-python 3.60.0, ``types/completion_usage.py``,
``types/responses/response_usage.py``: ``input_tokens_details.cache_write_tokens`` and its
``ttl_12h_tokens``); Anthropic ``Usage`` / ``MessageDeltaUsage`` (anthropic-sdk-python 2.10.0,
``types/usage.py``, ``types/message_delta_usage.py``: input excludes ``cache_read_input_tokens``
and ``cache_creation_input_tokens``, ``cache_creation.ephemeral_1h_input_tokens``,
``output_tokens_details.thinking_tokens``, ``server_tool_use``); Gemini
``GenerateContentResponseUsageMetadata`` (google-genai 3.6.1, ``types.py``: thoughts beside the
candidates, tool-use prompt beside the prompt, ``promptTokensDetails`` by modality); and
new-api's relayed chat usage (``dto/openai_response.go``: ``prompt_tokens_details.
cached_creation_tokens``, ``claude_cache_creation_1_h_tokens``).
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

from .request import RequestInfo

_USAGE_KEY = re.compile(rb'"usage(?:Metadata)?"\s*:\s*\{')
_decoder = json.JSONDecoder()


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_long_tokens: int = 0
    images: int = 0
    characters: int = 0
    audio_seconds: float = 0.0
    image_size: str | None = None
    usage_source: str = "none"
    usage_flag: str | None = None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _detail(usage: dict[str, Any], section: str, key: str) -> int:
    part = usage.get(section)
    return _int(part.get(key)) if isinstance(part, dict) else 0


def _nested(usage: dict[str, Any], *path: str) -> int:
    value: object = usage
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return _int(value)


def _openai_chat(usage: dict[str, Any]) -> tuple[int, int, int, int, int, int]:
    """(input, cached, output, reasoning, cache writes, long writes) of a chat usage."""
    inp, outp = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
    cached = (_detail(usage, "prompt_tokens_details", "cached_tokens")
              or _int(usage.get("prompt_cache_hit_tokens")))
    write = (_detail(usage, "prompt_tokens_details", "cache_write_tokens")
             or _detail(usage, "prompt_tokens_details", "cached_creation_tokens"))
    write_long = _int(usage.get("claude_cache_creation_1_h_tokens"))
    reasoning = _detail(usage, "completion_tokens_details", "reasoning_tokens")
    return inp, cached, outp, reasoning, write, write_long


def _input_output(usage: dict[str, Any]) -> tuple[int, int, int, int, int, int]:
    """The same from a Responses API or Anthropic-native usage (cache kept outside input)."""
    inp, outp = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    cache_read = _int(usage.get("cache_read_input_tokens"))
    creation = _int(usage.get("cache_creation_input_tokens")) or (
        _nested(usage, "cache_creation", "ephemeral_5m_input_tokens")
        + _nested(usage, "cache_creation", "ephemeral_1h_input_tokens"))
    inp += cache_read + creation
    cached = _detail(usage, "input_tokens_details", "cached_tokens") or cache_read
    write = creation or _detail(usage, "input_tokens_details", "cache_write_tokens")
    write_long = (_nested(usage, "cache_creation", "ephemeral_1h_input_tokens")
                  or _nested(usage, "input_tokens_details", "cache_write_tokens_details",
                             "ttl_12h_tokens"))
    reasoning = (_detail(usage, "output_tokens_details", "reasoning_tokens")
                 or _detail(usage, "output_tokens_details", "thinking_tokens"))
    return inp, cached, outp, reasoning, write, write_long


def _gemini(out: Usage, usage: dict[str, Any]) -> None:
    """Gemini ``usageMetadata``: thoughts and tool-use prompts are reported beside the
    candidates and the prompt (new-api adds them the same way: service/billing_usage.go)."""
    inp = _int(usage.get("promptTokenCount")) + _int(usage.get("toolUsePromptTokenCount"))
    thoughts = _int(usage.get("thoughtsTokenCount"))
    outp = _int(usage.get("candidatesTokenCount")) + thoughts
    total = usage.get("totalTokenCount")
    if isinstance(total, int) and total != inp + outp:
        out.usage_flag = "total_mismatch"
    audio = sum(_int(d.get("tokenCount")) for d in usage.get("promptTokensDetails") or ()
                if isinstance(d, dict) and d.get("modality") == "AUDIO")
    if audio and out.usage_flag is None:
        out.usage_flag = f"audio_input_tokens={audio}"  # Gemini prices audio input apart
    out.input_tokens, out.output_tokens = inp, outp
    out.cached_tokens = min(_int(usage.get("cachedContentTokenCount")), inp)
    out.reasoning_tokens = min(thoughts, outp)
    out.cache_write_tokens = out.cache_write_long_tokens = 0
    out.usage_source = "reported"


def apply_reported(out: Usage, usage: dict[str, Any]) -> None:
    """Fill token columns from a reported usage object in any of the formats seen upstream."""
    if "promptTokenCount" in usage or "candidatesTokenCount" in usage:
        _gemini(out, usage)
        return
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        inp, cached, outp, reasoning, write, write_long = _openai_chat(usage)
    elif "input_tokens" in usage or "output_tokens" in usage:
        # Responses API, gpt-image, transcription tokens; Anthropic-native keeps cache apart
        inp, cached, outp, reasoning, write, write_long = _input_output(usage)
    elif "total_tokens" in usage:  # Jina-style rerank
        inp, outp, cached, reasoning, write, write_long = _int(usage.get("total_tokens")), 0, 0, \
            0, 0, 0
    else:
        return
    total = usage.get("total_tokens")
    if isinstance(total, int) and total != inp + outp:
        if reasoning and total == inp + outp + reasoning:
            outp += reasoning  # reasoning reported beside completion (Gemini): fold it in
        else:
            out.usage_flag = "total_mismatch"
    out.input_tokens, out.output_tokens = inp, outp
    out.cached_tokens, out.reasoning_tokens = min(cached, inp), min(reasoning, outp)
    out.cache_write_tokens = min(write, inp - out.cached_tokens)
    out.cache_write_long_tokens = min(write_long, out.cache_write_tokens)
    out.usage_source = "reported"
    searches = _nested(usage, "server_tool_use", "web_search_requests")
    if searches and out.usage_flag is None:
        # Anthropic bills server-side web searches per request; no ledger column prices them
        out.usage_flag = f"web_search_requests={searches}"


def merge_usage(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A stream's usage so far with a later event's: counts are cumulative, so a later value
    replaces an earlier one, and a field a later event leaves out (or sends as null) keeps its
    value. This is how the Anthropic SDK accumulates ``message_start`` and each
    ``message_delta`` (anthropic-sdk-python 2.10.0, ``lib/streaming/_messages.py``,
    ``accumulate_event``); chat, Responses and Gemini streams send one complete usage last."""
    if old is None:
        return new
    merged = dict(old)
    merged.update((k, v) for k, v in new.items() if v is not None)
    return merged


def apply_stream_usage(out: Usage, endpoint: str, usage: dict[str, Any]) -> None:
    """Usage found in a stream's events (chat usage chunk, transcript.text.done, ...)."""
    if usage.get("type") == "duration":
        out.audio_seconds = float(usage.get("seconds") or 0)
        out.usage_source = "reported"
    else:
        apply_reported(out, usage)


def find_usage(data: bytes) -> dict[str, Any] | None:
    """The last ``"usage": {...}`` object in ``data``, parsed without parsing the whole body."""
    start = -1
    for found in _USAGE_KEY.finditer(data):
        start = found.end() - 1
    if start < 0:
        return None
    try:
        text = data[start:].decode("utf-8", "replace")
        value, _ = _decoder.raw_decode(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def decoded(body: bytes, encoding: str | None) -> bytes:
    """The body without its content-encoding (gzip, deflate); as is when it cannot be."""
    if not encoding or encoding == "identity":
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            return gzip.decompress(body)
        if encoding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)
    except (OSError, EOFError, zlib.error):
        return b""
    return b""


def _load(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def usage_from_body(endpoint: str, info: RequestInfo, body: bytes) -> Usage:
    """Usage of a finished, successful, non-streamed call from its (decoded) body."""
    out = Usage()
    if endpoint == "speech":
        # billed by input characters, counted from the request exactly as the platform does
        out.characters = info.characters
        out.usage_source = "reported" if info.characters else "none"
        return out
    if endpoint == "images":
        data = _load(body) or {}
        items = data.get("data")
        out.images = len(items) if isinstance(items, list) else 0
        out.image_size = data.get("size") if isinstance(data.get("size"), str) else info.size
        if isinstance(data.get("usage"), dict):
            apply_reported(out, data["usage"])
        out.usage_source = "reported" if items is not None else "none"
        return out
    if endpoint == "transcriptions":
        return _transcription_usage(out, body)
    usage = find_usage(body)
    if usage is not None:
        apply_reported(out, usage)
    if out.usage_source == "none" and endpoint == "rerank":
        _rerank_units(out, body)
    return out


def _transcription_usage(out: Usage, body: bytes) -> Usage:
    data = _load(body)
    if data is None:
        return out  # response_format text/srt/vtt: nothing to read
    usage = data.get("usage")
    if isinstance(usage, dict):
        apply_stream_usage(out, "transcriptions", usage)
    elif isinstance(data.get("duration"), int | float):
        out.audio_seconds = float(data["duration"])
        out.usage_source = "reported"
    return out


def _rerank_units(out: Usage, body: bytes) -> None:
    data = _load(body) or {}
    meta = data.get("meta")
    units = meta.get("billed_units") if isinstance(meta, dict) else None
    if isinstance(units, dict) and units.get("search_units") is not None:
        out.usage_source = "reported"
        out.usage_flag = f"search_units={units['search_units']}"
