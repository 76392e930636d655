"""The stand-in's Anthropic Messages, OpenAI Responses and Gemini native endpoints.

Built from the providers' own SDK types and streaming code, read 2026-12-04:

- Anthropic: anthropic-sdk-python 2.10.0 (PyPI ``anthropic``): ``types/message.py`` (``Message``),
  ``types/usage.py`` (``Usage``: input excludes ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens``; ``cache_creation`` by TTL; ``server_tool_use``;
  ``output_tokens_details.thinking_tokens``), ``types/message_delta_usage.py`` (cumulative counts,
  optional ones omitted), ``types/raw_message_*_event.py`` and ``lib/streaming/_messages.py``
  (``accumulate_event``: the order message_start, content_block_*, message_delta, message_stop),
  ``types/message_tokens_count.py`` (``POST /v1/messages/count_tokens``).
- OpenAI Responses: openai-python 3.60.0: ``types/responses/response.py``,
  ``response_usage.py`` (``input_tokens_details.cached_tokens`` / ``cache_write_tokens`` /
  ``cache_write_tokens_details.ttl_12h_tokens``, ``output_tokens_details.reasoning_tokens``),
  ``response_{created,in_progress,completed,incomplete,failed}_event.py``,
  ``response_output_item_added_event.py``, ``response_text_delta_event.py`` and the rest of the
  text events the ``responses.stream()`` helper accumulates (``lib/streaming/responses/``).
- Gemini: google-genai 3.6.1, ``types.py`` (``GenerateContentResponse``,
  ``GenerateContentResponseUsageMetadata``: ``promptTokenCount``, ``candidatesTokenCount``,
  ``cachedContentTokenCount``, ``thoughtsTokenCount`` beside the candidates,
  ``toolUsePromptTokenCount``, ``promptTokensDetails`` by modality, ``totalTokenCount``); the
  REST paths ``/v1beta/models/{model}:generateContent``, ``:streamGenerateContent`` (``alt=sse``
  gives SSE events separated by CRLF CRLF, without it one JSON array) and ``:countTokens``, as
  google-genai's ``models.py`` builds them.

Behaviour keys (``X-Upstream-Behaviour``), besides the common ones of tests/upstream.py:

    input_tokens=…  output_tokens=…          Anthropic / Responses counts (input: uncached part
                                             for Anthropic, the whole input for Responses)
    cache_read=… cache_write_5m=… cache_write_1h=… thinking=… web_search=…   Anthropic usage
    delta_usage=full                         message_delta repeats input and cache counts
    cached=… cache_write=… cache_write_12h=… reasoning=…   Responses usage details
    end=completed|incomplete|failed          how a Responses stream ends
    prompt_tokens=… candidates=… thoughts=… cached_content=… tool_prompt=… audio=…   Gemini
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

try:
    import upstream as base
except ImportError:  # imported as tests.upstream_native
    from tests import upstream as base

MESSAGE_WORDS = ["Hello", " from", " the", " stand", "-in"]


def _count(b: dict, key: str, default: int = 0) -> int:
    return int(b.get(key, default))


# -- Anthropic Messages ---------------------------------------------------------------------

def anthropic_usage(b: dict) -> dict:
    """The full ``Usage`` of one call (what a non-streamed Message carries)."""
    w5, w1 = _count(b, "cache_write_5m"), _count(b, "cache_write_1h")
    usage: dict = {"input_tokens": _count(b, "input_tokens", 25),
                   "cache_creation_input_tokens": w5 + w1,
                   "cache_read_input_tokens": _count(b, "cache_read"),
                   "cache_creation": {"ephemeral_5m_input_tokens": w5,
                                      "ephemeral_1h_input_tokens": w1},
                   "output_tokens": _count(b, "output_tokens", 64),
                   "service_tier": "standard"}
    if "thinking" in b:
        usage["output_tokens_details"] = {"thinking_tokens": _count(b, "thinking")}
    if "web_search" in b:
        usage["server_tool_use"] = {"web_search_requests": _count(b, "web_search"),
                                    "web_fetch_requests": 0}
    return usage


def _anthropic_error(status: int) -> Response:
    kinds = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error",
             500: "api_error", 529: "overloaded_error"}
    return JSONResponse({"type": "error", "error": {"type": kinds.get(status, "api_error"),
                                                    "message": f"stand-in error {status}"}},
                        status_code=status)


def _sse_event(name: str, payload: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


async def messages(request: Request) -> Response:
    b, body, early = await base._common(request)
    if early:
        return _anthropic_error(early.status_code)
    model = body.get("model", "claude-sonnet-4-5")
    usage = anthropic_usage(b)
    message = {"id": "msg_standin", "type": "message", "role": "assistant", "model": model,
               "stop_reason": "end_turn", "stop_sequence": None}
    if not body.get("stream"):
        return base._json(dict(message, content=[{"type": "text", "text":
                                                   "".join(MESSAGE_WORDS)}], usage=usage), b)
    start_usage = dict(usage, output_tokens=1)
    start_usage.pop("server_tool_use", None)
    start_usage.pop("output_tokens_details", None)
    delta_usage = {"output_tokens": usage["output_tokens"]}
    if b.get("delta_usage") == "full":
        delta_usage = {k: usage[k] for k in ("input_tokens", "cache_creation_input_tokens",
                                             "cache_read_input_tokens", "output_tokens")}
    for key in ("server_tool_use", "output_tokens_details"):
        if key in usage:
            delta_usage[key] = usage[key]
    out = [_sse_event("message_start", {"type": "message_start", "message": dict(
        message, content=[], stop_reason=None, usage=start_usage)}),
        _sse_event("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}}),
        _sse_event("ping", {"type": "ping"})]
    for word in MESSAGE_WORDS:
        out.append(_sse_event("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": word}}))
    out += [_sse_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse_event("message_delta", {"type": "message_delta", "delta": {
                "stop_reason": "end_turn", "stop_sequence": None}, "usage": delta_usage}),
            _sse_event("message_stop", {"type": "message_stop"})]
    cut = int(b["cut_after"]) + 3 if "cut_after" in b else None  # after start, block, ping
    return base.ChunkedResponse(out, "text/event-stream", float(b.get("chunk_delay", 0)), cut)


async def count_tokens(request: Request) -> Response:
    b, _body, early = await base._common(request)
    if early:
        return _anthropic_error(early.status_code)
    return base._json({"input_tokens": _count(b, "input_tokens", 25)}, b)


# -- OpenAI Responses -----------------------------------------------------------------------

def responses_usage(b: dict) -> dict:
    inp, out = _count(b, "input_tokens", 30), _count(b, "output_tokens", 12)
    write, write_12h = _count(b, "cache_write"), _count(b, "cache_write_12h")
    return {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out,
            "input_tokens_details": {
                "cached_tokens": _count(b, "cached"), "cache_write_tokens": write,
                "cache_write_tokens_details": {"ttl_30m_tokens": write - write_12h,
                                               "ttl_12h_tokens": write_12h}},
            "output_tokens_details": {"reasoning_tokens": _count(b, "reasoning")}}


def _response(model: str, status: str, text: str, usage: dict | None) -> dict:
    item = {"id": "msg_standin", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}
    return {"id": "resp_standin", "object": "response", "created_at": base.CREATED,
            "model": model, "status": status, "output": [item] if text else [],
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "error": {"code": "server_error", "message": "stand-in failure"}
            if status == "failed" else None,
            "incomplete_details": {"reason": "max_output_tokens"}
            if status == "incomplete" else None,
            "usage": usage}


def _responses_stream(model: str, b: dict, usage: dict) -> list[bytes]:
    end = b.get("end", "completed")
    words = MESSAGE_WORDS[:3] if end != "completed" else MESSAGE_WORDS
    text = "".join(words)
    events: list[tuple[str, dict]] = [
        ("response.created", {"response": _response(model, "in_progress", "", None)}),
        ("response.in_progress", {"response": _response(model, "in_progress", "", None)}),
        ("response.output_item.added", {"output_index": 0, "item": {
            "id": "msg_standin", "type": "message", "role": "assistant",
            "status": "in_progress", "content": []}}),
        ("response.content_part.added", {"item_id": "msg_standin", "output_index": 0,
                                         "content_index": 0, "part": {
                                             "type": "output_text", "text": "",
                                             "annotations": []}})]
    for word in words:
        events.append(("response.output_text.delta", {
            "item_id": "msg_standin", "output_index": 0, "content_index": 0, "delta": word,
            "logprobs": []}))
    part = {"type": "output_text", "text": text, "annotations": []}
    events += [
        ("response.output_text.done", {"item_id": "msg_standin", "output_index": 0,
                                       "content_index": 0, "text": text, "logprobs": []}),
        ("response.content_part.done", {"item_id": "msg_standin", "output_index": 0,
                                        "content_index": 0, "part": part}),
        ("response.output_item.done", {"output_index": 0, "item": {
            "id": "msg_standin", "type": "message", "role": "assistant",
            "status": "completed", "content": [part]}}),
        (f"response.{end}", {"response": _response(model, end, text, usage)})]
    return [_sse_event(name, dict(payload, type=name, sequence_number=i))
            for i, (name, payload) in enumerate(events)]


async def responses(request: Request) -> Response:
    b, body, early = await base._common(request)
    if early:
        return early
    model = body.get("model", "gpt-5")
    usage = responses_usage(b)
    if not body.get("stream"):
        return base._json(_response(model, "completed", "".join(MESSAGE_WORDS), usage), b)
    cut = int(b["cut_after"]) + 4 if "cut_after" in b else None
    return base.ChunkedResponse(_responses_stream(model, b, usage), "text/event-stream",
                                float(b.get("chunk_delay", 0)), cut)


# -- Gemini native --------------------------------------------------------------------------

def gemini_usage(b: dict) -> dict:
    prompt, thoughts = _count(b, "prompt_tokens", 40), _count(b, "thoughts")
    candidates, tool = _count(b, "candidates", 9), _count(b, "tool_prompt")
    audio = _count(b, "audio")
    usage: dict = {"promptTokenCount": prompt, "candidatesTokenCount": candidates,
                   "totalTokenCount": prompt + candidates + thoughts + tool,
                   "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt - audio}]}
    if audio:
        usage["promptTokensDetails"].append({"modality": "AUDIO", "tokenCount": audio})
    for key, value in (("cachedContentTokenCount", _count(b, "cached_content")),
                       ("thoughtsTokenCount", thoughts), ("toolUsePromptTokenCount", tool)):
        if value:
            usage[key] = value
    return usage


def _gemini_chunk(model: str, text: str, usage: dict, finish: bool) -> dict:
    candidate: dict = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
            "responseId": "standin-gemini"}


async def gemini(request: Request) -> Response:
    b, _body, early = await base._common(request)
    if early:
        return early
    model, _, method = request.path_params["target"].rpartition(":")
    usage = gemini_usage(b)
    if method == "countTokens":
        return base._json({"totalTokens": usage["promptTokenCount"]}, b)
    if method == "generateContent":
        return base._json(_gemini_chunk(model, "".join(MESSAGE_WORDS), usage, True), b)
    if method != "streamGenerateContent":
        return JSONResponse({"error": {"code": 404, "message": f"no method {method}",
                                       "status": "NOT_FOUND"}}, status_code=404)
    # every chunk carries the usage so far (prompt known, candidates growing), the last the total
    chunks = []
    for i, word in enumerate(MESSAGE_WORDS):
        last = i == len(MESSAGE_WORDS) - 1
        so_far = usage if last else {"promptTokenCount": usage["promptTokenCount"],
                                     "candidatesTokenCount": i + 1,
                                     "totalTokenCount": usage["promptTokenCount"] + i + 1}
        chunks.append(_gemini_chunk(model, word, so_far, last))
    cut = int(b["cut_after"]) if "cut_after" in b else None
    if request.query_params.get("alt") == "sse":
        out = [b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks]
        return base.ChunkedResponse(out, "text/event-stream", float(b.get("chunk_delay", 0)),
                                    cut)
    array = json.dumps(chunks, indent=2).encode()  # REST without alt=sse: one JSON array
    return base.ChunkedResponse([array[:len(array) // 2], array[len(array) // 2:]],
                                "application/json")


async def gemini_models(request: Request) -> Response:
    b, _body, early = await base._common(request)
    if early:
        return early
    return base._json({"models": [{"name": "models/gemini-2.5-pro",
                                   "supportedGenerationMethods": ["generateContent",
                                                                  "countTokens"]}]}, b)


def routes() -> list[Route]:
    post = ["POST"]
    return [
        Route("/v1/messages", messages, methods=post),
        Route("/v1/messages/count_tokens", count_tokens, methods=post),
        Route("/v1/responses", responses, methods=post),
        Route("/v1beta/models", gemini_models, methods=["GET"]),
        Route("/v1beta/models/{target}", gemini, methods=post),
        Route("/v1/models/{target}", gemini, methods=post),
    ]
