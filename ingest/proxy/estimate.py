"""Local token counts for answers that reported no usage, or were cut before they could.

Only the text is read, in each API's own shape: chat ``choices``, Anthropic ``content`` blocks
and ``content_block_delta`` events, Responses ``output`` items and ``*.delta`` events, Gemini
``candidates[].content.parts``. Counts use tiktoken (exact for OpenAI models, flagged
``approx_tokenizer`` for other providers'). ``ingest.tokens`` (tiktoken and its tables) is
imported only here, inside the counting functions: a proxy whose calls all report usage never
loads it (proxy RSS, docs/performance.md).
"""

from __future__ import annotations

import json
from typing import Any

from .request import RequestInfo
from .usage import Usage

ESTIMATED_ENDPOINTS = frozenset({"chat", "embeddings", "messages", "responses", "gemini"})
# Anthropic content_block_delta: text_delta.text, thinking_delta.thinking,
# input_json_delta.partial_json (anthropic-sdk-python 2.10.0, types/raw_content_block_delta.py)
_DELTA_TEXT_KEYS = ("text", "thinking", "partial_json")


def needs_estimate(out: Usage, endpoint: str) -> bool:
    """True when a successful call reported nothing and its tokens can be counted locally."""
    return out.usage_source == "none" and endpoint in ESTIMATED_ENDPOINTS


def _gemini_text(candidates: object, parts: list[str]) -> None:
    for candidate in candidates if isinstance(candidates, list) else ():
        content = candidate.get("content") if isinstance(candidate, dict) else None
        for part in (content or {}).get("parts") or ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])


def _blocks_text(blocks: object, parts: list[str]) -> None:
    """Anthropic content blocks and Responses output items (with their own content lists)."""
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, dict):
            continue
        for key in ("text", "thinking", "arguments"):
            if isinstance(block.get(key), str):
                parts.append(block[key])
        if isinstance(block.get("input"), dict):  # Anthropic tool_use
            parts.append(json.dumps(block["input"]))
        _blocks_text(block.get("content"), parts)


def event_text(event: dict[str, Any], parts: list[str]) -> None:
    """Generated text of one stream event (chat chunk, Anthropic, Responses or Gemini event)."""
    for choice in event.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") or {}
        for key in ("content", "reasoning_content"):
            if isinstance(delta.get(key), str):
                parts.append(delta[key])
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                parts.append(fn["arguments"])
        if isinstance(choice.get("text"), str):
            parts.append(choice["text"])
    delta = event.get("delta")
    if isinstance(delta, str):  # transcription and Responses API deltas
        parts.append(delta)
    elif isinstance(delta, dict):  # Anthropic content_block_delta
        parts.extend(delta[k] for k in _DELTA_TEXT_KEYS if isinstance(delta.get(k), str))
    _gemini_text(event.get("candidates"), parts)


def output_text(body: bytes) -> str:
    """Generated text of a finished, non-streamed answer of any of the text APIs."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, list):  # Gemini's streamGenerateContent without alt=sse: a JSON array
        parts: list[str] = []
        for item in data:
            if isinstance(item, dict):
                _gemini_text(item.get("candidates"), parts)
        return "".join(parts)
    if not isinstance(data, dict):
        return ""
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
    _blocks_text(data.get("content"), parts)   # Anthropic
    _blocks_text(data.get("output"), parts)    # Responses
    _gemini_text(data.get("candidates"), parts)
    return "".join(parts)


def _request_input(endpoint: str, body: dict[str, Any], model: str | None) -> tuple[int, bool]:
    """Prompt tokens of a text request in its own API's shape."""
    from ingest import tokens

    if endpoint == "embeddings":
        return _count_inputs(body.get("input"), model)
    if endpoint == "gemini":
        texts: list[str] = []
        for content in body.get("contents") or ():
            if isinstance(content, dict):
                _blocks_text(content.get("parts"), texts)
        return tokens.count_text("".join(texts), model)
    messages = body.get("messages")
    if endpoint == "responses":
        given = body.get("input")
        messages = [{"role": "user", "content": given}] if isinstance(given, str) else given
    inp, exact = tokens.count_chat_input(dict(body, messages=messages), model)
    system = body.get("system") if endpoint == "messages" else body.get("instructions")
    if system:
        text = system if isinstance(system, str) else json.dumps(system)
        extra, exact_extra = tokens.count_text(text, model)
        inp, exact = inp + extra, exact and exact_extra
    return inp, exact


def estimate(out: Usage, endpoint: str, info: RequestInfo, output_text: str) -> None:
    """Count tokens locally: the request's prompt (or inputs) and the text produced so far."""
    from ingest import tokens

    inp, exact = _request_input(endpoint, info.body or {}, info.model)
    outp = 0
    if endpoint != "embeddings":
        outp, exact_out = tokens.count_text(output_text, info.model)
        exact = exact and exact_out
    out.input_tokens, out.output_tokens = inp, outp
    out.usage_source = "estimated"
    if not exact and out.usage_flag is None:
        out.usage_flag = "approx_tokenizer"


def top_up_cut_output(out: Usage, info: RequestInfo, output_text: str) -> None:
    """A stream cut after it reported its input (Anthropic's ``message_start``) but before its
    final output count: the text that did arrive, counted locally, when that is more."""
    from ingest import tokens

    counted, _ = tokens.count_text(output_text, info.model)
    if counted > out.output_tokens:
        out.output_tokens = counted
        out.usage_source = "estimated"


def _count_inputs(value: object, model: str | None) -> tuple[int, bool]:
    from ingest import tokens

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
