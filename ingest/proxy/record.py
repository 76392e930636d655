"""One call's state while it passes through the proxy, and the spool record it becomes.

The record holds contract columns only: never the key, the Authorization header, the prompt or
the response.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from ingest.normalise import split_model
from ledger import KeyFingerprinter, bearer_key, key_hint

from .usage import Usage

MAX_TAGS = 16
MAX_TAG_TEXT = 128
# Headers that carry a key, in the order they are looked at.
KEY_HEADERS = (b"authorization", b"api-key", b"x-api-key", b"x-goog-api-key")


def parse_tags(header: str | None, user: str | None) -> dict[str, str] | None:
    """``team=search,app=bot`` (X-Callmeter-Tags) plus ``user`` from the body; header wins."""
    tags: dict[str, str] = {}
    if user:
        tags["user"] = user[:MAX_TAG_TEXT]
    for pair in (header or "").split(","):
        key, sep, value = pair.partition("=")
        key = key.strip()[:MAX_TAG_TEXT]
        if key and sep and len(tags) < MAX_TAGS:
            tags[key] = value.strip()[:MAX_TAG_TEXT]
    return tags or None


class Call:
    """Mutable state of one request; ``record()`` turns it into a spool line's dict."""

    __slots__ = ("call_id", "started_at", "t0", "ttft", "endpoint", "model", "stream", "status",
                 "key_id", "key_hint", "tags", "usage", "flag", "recorded", "bytes_out")

    def __init__(self, endpoint: str) -> None:
        self.call_id = "px:" + uuid.uuid4().hex
        self.started_at = datetime.now(UTC)
        self.t0 = time.perf_counter()
        self.ttft: float | None = None
        self.endpoint = endpoint
        self.model: str | None = None
        self.stream = False
        self.status = 0
        self.key_id: str | None = None
        self.key_hint: str | None = None
        self.tags: dict[str, str] | None = None
        self.usage = Usage()
        self.flag: str | None = None
        self.recorded = False
        self.bytes_out = 0

    def identify(self, key_header: bytes | None, fingerprinter: KeyFingerprinter) -> None:
        key = bearer_key(key_header.decode("latin-1")) if key_header else None
        if key:
            self.key_id = fingerprinter.fingerprint(key)
            self.key_hint = key_hint(key)

    def mark_first_byte(self) -> None:
        if self.ttft is None:
            self.ttft = time.perf_counter() - self.t0

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.t0) * 1000)

    def record(self) -> dict[str, Any]:
        u = self.usage
        rec: dict[str, Any] = {
            "call_id": self.call_id,
            "source": "proxy",
            "started_at": self.started_at.isoformat(),
            "latency_ms": self.elapsed_ms(),
            "endpoint": self.endpoint,
            "stream": self.stream,
            "status": self.status,
            "requests": 1,
            "input_tokens": u.input_tokens,
            "cached_tokens": u.cached_tokens,
            "output_tokens": u.output_tokens,
            "reasoning_tokens": u.reasoning_tokens,
            "cache_write_tokens": u.cache_write_tokens,
            "cache_write_long_tokens": u.cache_write_long_tokens,
            "images": u.images,
            "characters": u.characters,
            "audio_seconds": u.audio_seconds,
            "usage_source": u.usage_source,
        }
        if self.stream and self.ttft is not None:
            rec["ttft_ms"] = int(self.ttft * 1000)
        if self.model:
            rec["model"] = self.model
            rec["base_model"], rec["billing_mode"] = split_model(self.model)
        if self.key_id:
            rec["key_id"], rec["key_hint"] = self.key_id, self.key_hint
        if self.tags:
            rec["tags"] = self.tags
        if u.image_size:
            rec["image_size"] = u.image_size
        flag = self.flag or u.usage_flag
        if flag:
            rec["usage_flag"] = flag
        return rec
