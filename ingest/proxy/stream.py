"""Reading usage out of a server-sent-event stream as it passes through.

Per chunk the work is a couple of byte searches: events are split only to find usage objects
(chat and Responses streams send one; Anthropic sends ``message_start`` and each
``message_delta``, Gemini one ``usageMetadata`` per chunk: they are merged, later counts winning)
and, when the proxy asked for usage on the client's behalf, to drop the
usage-only chunk (``"choices": []``) the client never asked for. The text of the stream is kept
(bounded) so that a stream without usage can be counted locally at its end.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from .estimate import event_text
from .usage import find_usage, merge_usage

_USAGE_OBJECT = re.compile(rb'"usage(?:Metadata)?"\s*:\s*\{')
_EMPTY_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*\]')
KEEP_BYTES = 4 * 1024 * 1024      # stream text kept for a local count when usage is missing
MAX_PENDING = 1024 * 1024         # an "event" this long is not SSE: stop splitting


def _boundary(data: bytes) -> int:
    """End of the last complete event in ``data`` (0 when there is none)."""
    lf = data.rfind(b"\n\n")
    crlf = data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf != -1 else 0, crlf + 4 if crlf != -1 else 0)


class SseRelay:
    """Feed upstream chunks in, get the bytes to forward out; read ``usage`` at the end."""

    __slots__ = ("strip", "usage", "_pending", "_kept", "_kept_bytes", "_inflate")

    def __init__(self, strip_usage_chunk: bool, content_encoding: str | None = None) -> None:
        self.usage: dict[str, Any] | None = None
        self._pending = b""
        self._kept: list[bytes] = []
        self._kept_bytes = 0
        self._inflate = None
        if content_encoding in ("gzip", "x-gzip", "deflate"):
            wbits = 47 if content_encoding != "deflate" else 15
            self._inflate = zlib.decompressobj(wbits)
            strip_usage_chunk = False  # cannot edit a compressed stream: pass it untouched
        self.strip = strip_usage_chunk

    def feed(self, chunk: bytes) -> bytes:
        """Bytes to send to the client now (the chunk itself unless stripping)."""
        data = chunk
        if self._inflate is not None:
            try:
                data = self._inflate.decompress(chunk)
            except zlib.error:
                self._inflate, data = None, b""
        if self._pending:
            data = self._pending + data
        end = _boundary(data)
        if end == 0:
            if len(data) > MAX_PENDING:  # not SSE after all: stop holding bytes back
                held, self.strip, self._pending = self.strip, False, b""
                self._keep(data)
                return data if held else chunk
            self._pending = data
            return b"" if self.strip else chunk
        complete, self._pending = data[:end], data[end:]
        if _USAGE_OBJECT.search(complete) is not None:
            complete = self._take_usage(complete)
        self._keep(complete)
        return complete if self.strip else chunk

    def finish(self) -> bytes:
        """Whatever is left when the upstream stream ends (a last event without a blank line)."""
        rest, self._pending = self._pending, b""
        if rest:
            if _USAGE_OBJECT.search(rest) is not None:
                rest = self._take_usage(rest)
            self._keep(rest)
        return rest if self.strip else b""

    def _keep(self, data: bytes) -> None:
        if self._kept_bytes < KEEP_BYTES:
            self._kept.append(data)
            self._kept_bytes += len(data)

    def _take_usage(self, block: bytes) -> bytes:
        """Remember the usage in ``block``; drop the usage-only event when stripping."""
        events = re.split(rb"(?<=\n\n)|(?<=\r\n\r\n)", block)
        kept = []
        for event in events:
            if _USAGE_OBJECT.search(event) is None:
                kept.append(event)
                continue
            usage = find_usage(event)
            if usage is not None:
                self.usage = merge_usage(self.usage, usage)
            if not (self.strip and _EMPTY_CHOICES.search(event)):
                kept.append(event)
        return b"".join(kept)

    def text(self) -> str:
        """The generated text of the stream so far (content, tool arguments, transcript deltas)."""
        parts: list[str] = []
        for line in b"".join(self._kept).splitlines():
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if not payload.startswith(b"{"):
                continue
            try:
                event = json.loads(payload)
            except ValueError:
                continue
            event_text(event, parts)
        return "".join(parts)
