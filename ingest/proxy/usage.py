"""Usage of one call, per endpoint, normalised to the OpenAI meaning of the ledger's columns.

Reported usage wins; when a response carries none, tokens are counted locally
(``usage_source = estimated``); a usage whose parts do not add up is flagged ``total_mismatch``.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

from ingest import tokens

from .request import RequestInfo

_USAGE_KEY = re.compile(rb'"usage"\s*:\s*\{')
_decoder = json.JSONDecoder()
ESTIMATED_ENDPOINTS = frozenset({"chat", "embeddings"})


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
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


def apply_reported(out: Usage, usage: dict[str, Any]) -> None:
    """Fill token columns from a reported usage object in any of the formats seen upstream."""
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        inp, outp = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
        cached = (_detail(usage, "prompt_tokens_details", "cached_tokens")
                  or _int(usage.get("prompt_cache_hit_tokens")))
        reasoning = _detail(usage, "completion_tokens_details", "reasoning_tokens")
    elif "input_tokens" in usage or "output_tokens" in usage:
        # Responses API, gpt-image, transcription tokens; Anthropic-native keeps cache apart
        inp, outp = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
        cache_read = _int(usage.get("cache_read_input_tokens"))
        inp += cache_read + _int(usage.get("cache_creation_input_tokens"))
        cached = _detail(usage, "input_tokens_details", "cached_tokens") or cache_read
        reasoning = _detail(usage, "output_tokens_details", "reasoning_tokens")
    elif "total_tokens" in usage:  # Jina-style rerank
        inp, outp, cached, reasoning = _int(usage.get("total_tokens")), 0, 0, 0
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
    out.usage_source = "reported"


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


def needs_estimate(out: Usage, endpoint: str) -> bool:
    """True when a successful call reported nothing and its tokens can be counted locally."""
    return out.usage_source == "none" and endpoint in ESTIMATED_ENDPOINTS


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


def output_text(body: bytes) -> str:
    data = _load(body) or {}
    parts = []
    for choice in data.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):
            parts.append(message["content"])
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict):
                parts.append(json.dumps(call.get("function")))
        if isinstance(choice.get("text"), str):
            parts.append(choice["text"])
    return "".join(parts)


def estimate(out: Usage, endpoint: str, info: RequestInfo, output_text: str) -> None:
    """Count tokens locally: the request's prompt (or inputs) and the text produced so far."""
    body = info.body or {}
    if endpoint == "embeddings":
        inp, exact = _count_inputs(body.get("input"), info.model)
        outp = 0
    else:
        inp, exact = tokens.count_chat_input(body, info.model)
        outp, exact_out = tokens.count_text(output_text, info.model)
        exact = exact and exact_out
    out.input_tokens, out.output_tokens = inp, outp
    out.usage_source = "estimated"
    if not exact and out.usage_flag is None:
        out.usage_flag = "approx_tokenizer"


def _count_inputs(value: object, model: str | None) -> tuple[int, bool]:
    if isinstance(value, str):
        return tokens.count_text(value, model)
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return len(value), True  # already tokens
        total, exact = 0, True
        for item in value:
            n, e = _count_inputs(item, model)
            total, exact = total + n, exact and e
        return total, exact
    return 0, True
