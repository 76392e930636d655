"""Usage normalisation, stream relaying and offline token counting, piece by piece."""

from __future__ import annotations

import json

import pytest

from ingest import tokens
from ingest.proxy.request import read_request
from ingest.proxy.stream import SseRelay
from ingest.proxy.usage import Usage, apply_reported, find_usage, usage_from_body


def normalised(usage: dict) -> tuple:
    out = Usage()
    apply_reported(out, usage)
    return (out.input_tokens, out.cached_tokens, out.output_tokens, out.reasoning_tokens,
            out.usage_flag)


@pytest.mark.parametrize("usage, expected", [
    ({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
      "prompt_tokens_details": {"cached_tokens": 60},
      "completion_tokens_details": {"reasoning_tokens": 5}}, (100, 60, 20, 5, None)),
    # DeepSeek reports cache hits beside the details
    ({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
      "prompt_cache_hit_tokens": 64}, (100, 64, 20, 0, None)),
    # Anthropic-native: input excludes cache reads and writes
    ({"input_tokens": 10, "cache_read_input_tokens": 80, "cache_creation_input_tokens": 5,
      "output_tokens": 7}, (95, 80, 7, 0, None)),
    # Responses API
    ({"input_tokens": 30, "input_tokens_details": {"cached_tokens": 10}, "output_tokens": 9,
      "output_tokens_details": {"reasoning_tokens": 4}, "total_tokens": 39},
     (30, 10, 9, 4, None)),
    # Gemini through a gateway: thinking beside completion → folded into output
    ({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 45,
      "completion_tokens_details": {"reasoning_tokens": 30}}, (10, 0, 35, 30, None)),
    # a gateway that dropped something
    ({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 99},
     (10, 0, 5, 0, "total_mismatch")),
    ({"total_tokens": 40}, (40, 0, 0, 0, None)),  # Jina rerank
])
def test_reported_usage_normalised_to_openai_meaning(usage, expected):
    assert normalised(usage) == expected


def test_find_usage_ignores_the_word_inside_content():
    body = json.dumps({"choices": [{"message": {"content": 'say "usage": {"x": 1}'}}],
                      "usage": {"prompt_tokens": 3, "completion_tokens": 4}}).encode()
    assert find_usage(body) == {"prompt_tokens": 3, "completion_tokens": 4}
    assert find_usage(b'{"usage": null}') is None


def test_injection_is_a_byte_splice_that_keeps_the_body():
    body = b'{"model":"gpt-4o","stream":true,"messages":[]}'
    info, sent = read_request("chat", "application/json", body)
    assert info.inject_usage and json.loads(sent) == json.loads(body) | {
        "stream_options": {"include_usage": True}}
    body = b'{"model":"m","stream":true,"stream_options":{"include_obfuscation":false}}'
    info, sent = read_request("chat", "application/json", body)
    assert json.loads(sent)["stream_options"] == {"include_obfuscation": False,
                                                  "include_usage": True}
    body = b'{"model":"m","stream":true,"stream_options":{"include_usage":true}}'
    info, sent = read_request("chat", "application/json", body)
    assert sent is body and info.include_usage and not info.inject_usage


def test_multipart_model_field_read_without_the_file():
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            b"Content-Type: audio/wav\r\n\r\n" + b"name=\"model\"\r\n\r\nfake" * 10 +
            b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1"
            b"\r\n--XyZ--\r\n")
    info, _ = read_request("transcriptions", "multipart/form-data; boundary=XyZ", body)
    assert info.model == "whisper-1"


def sse(obj) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"


def test_relay_strips_only_the_usage_chunk_even_when_split_across_reads():
    events = [sse({"choices": [{"delta": {"content": "Hi"}}], "usage": None}),
              sse({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}),
              sse(b"[DONE]")]
    stream = b"".join(events)
    relay = SseRelay(strip_usage_chunk=True)
    out = b"".join(relay.feed(stream[i:i + 7]) for i in range(0, len(stream), 7))
    out += relay.finish()
    assert out == events[0] + events[2]
    assert relay.usage == {"prompt_tokens": 3, "completion_tokens": 1}
    assert relay.text() == "Hi"


def test_relay_passes_chunks_untouched_when_not_stripping():
    relay = SseRelay(strip_usage_chunk=False)
    chunk = sse({"choices": [], "usage": {"prompt_tokens": 3}})[:10]
    assert relay.feed(chunk) is chunk


def test_speech_characters_and_images_from_body():
    info, _ = read_request("speech", "application/json", b'{"model":"tts-1","input":"abc"}')
    assert usage_from_body("speech", info, b"").characters == 3
    info, _ = read_request("images", "application/json",
                           b'{"model":"dall-e-3","prompt":"x","size":"1792x1024"}')
    out = usage_from_body("images", info, b'{"data": [{"url": "u"}]}')
    assert (out.images, out.image_size, out.usage_source) == (1, "1792x1024", "reported")


def test_tokens_offline_exact_and_approximate():
    assert tokens.count_text("Hello world", "gpt-4o") == (2, True)
    assert tokens.count_text("Hello world", "gpt-4o-c") == (2, True)
    assert tokens.count_text("Hello world", "gpt-3.5-turbo") == (2, True)
    assert tokens.encoding_for("text-embedding-3-small")[0].name == "cl100k_base"
    assert tokens.encoding_for("o3-mini")[0].name == "o200k_base"
    assert tokens.encoding_for("openai/gpt-4.1")[1] is True
    assert tokens.count_text("Hello world", "gemini-2.5-pro") == (2, False)
    messages = {"messages": [{"role": "system", "content": "Be brief"},
                             {"role": "user", "name": "bob", "content": "Hi"}]}
    # 3+1("system")+2("Be brief") + 3+1("user")+1("bob")+1(name)+1("Hi") + 3 priming
    assert tokens.count_chat_input(messages, "gpt-4o") == (16, True)
