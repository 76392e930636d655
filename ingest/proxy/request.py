"""What the proxy needs from a request body: model, stream, usage options, billing inputs.

The body is read once (up to the configured limit) and forwarded as is, except for one change:
a streamed chat request that did not ask for ``stream_options.include_usage`` gets it, so the
platform reports the stream's usage (the extra chunk is removed again on the way back).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

INJECTED_OPTION = b'"stream_options":{"include_usage":true}'


@dataclass(slots=True)
class RequestInfo:
    model: str | None = None
    stream: bool = False
    include_usage: bool = False   # the client asked for the usage chunk itself
    inject_usage: bool = False    # the proxy asked upstream for it on the client's behalf
    user: str | None = None
    n: int = 1
    size: str | None = None
    characters: int = 0           # TTS input characters
    response_format: str | None = None
    malformed: bool = False       # a JSON body that does not parse (forwarded unchanged)
    body: dict[str, Any] | None = None      # the parsed JSON body, for local token counts


def read_request(endpoint: str, content_type: str, body: bytes) -> tuple[RequestInfo, bytes]:
    """Parse ``body`` for recording; return the info and the body to forward."""
    info = RequestInfo()
    if not body:
        return info, body
    if content_type.startswith("multipart/form-data"):
        _read_multipart(info, content_type, body)
        return info, body
    if not (content_type.startswith("application/json") or body.lstrip()[:1] == b"{"):
        return info, body
    try:
        data = json.loads(body)
    except ValueError:
        info.malformed = True
        return info, body
    if not isinstance(data, dict):
        info.malformed = True
        return info, body
    info.body = data
    _read_fields(info, data)
    if endpoint == "chat" and info.stream and not info.include_usage:
        info.inject_usage = True
        body = _with_usage_option(body, data)
    return info, body


def _read_fields(info: RequestInfo, data: dict[str, Any]) -> None:
    model = data.get("model")
    info.model = model if isinstance(model, str) else None
    info.stream = data.get("stream") is True
    options = data.get("stream_options")
    info.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    user = data.get("user")
    info.user = user if isinstance(user, str) and user else None
    n = data.get("n")
    info.n = n if isinstance(n, int) and n > 0 else 1
    size = data.get("size")
    info.size = size if isinstance(size, str) else None
    text = data.get("input")
    info.characters = len(text) if isinstance(text, str) else 0
    fmt = data.get("response_format")
    info.response_format = fmt if isinstance(fmt, str) else None


def _with_usage_option(body: bytes, data: dict[str, Any]) -> bytes:
    """Add ``stream_options.include_usage``; a byte splice when there were no stream_options."""
    if "stream_options" in data:
        options = data["stream_options"] if isinstance(data["stream_options"], dict) else {}
        return json.dumps(dict(data, stream_options=dict(options, include_usage=True))).encode()
    start = body.index(b"{") + 1
    return body[:start] + INJECTED_OPTION + (b"," if data else b"") + body[start:]


def _read_multipart(info: RequestInfo, content_type: str, body: bytes) -> None:
    boundary = _boundary(content_type)
    if not boundary:
        return
    info.model = _form_field(body, boundary, b"model")
    info.response_format = _form_field(body, boundary, b"response_format")
    info.stream = (_form_field(body, boundary, b"stream") or "").lower() == "true"


def _boundary(content_type: str) -> bytes | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "boundary" and value:
            return value.strip('"').encode("latin-1")
    return None


def _form_field(body: bytes, boundary: bytes, name: bytes) -> str | None:
    """A small text field of a multipart body, found without splitting the (large) file part."""
    delimiter = b"\r\n--" + boundary
    for marker in (b'name="' + name + b'"', b"name=" + name + b"\r"):
        at = body.find(marker)
        while at != -1:
            head_start = body.rfind(b"--" + boundary, 0, at)
            head_end = body.find(b"\r\n\r\n", at)
            is_file = b"filename=" in body[head_start:head_end]
            if head_start != -1 and head_end != -1 and not is_file:
                end = body.find(delimiter, head_end)
                if end != -1 and end - head_end < 4096:
                    return body[head_end + 4:end].decode("utf-8", "replace").strip()
            at = body.find(marker, at + 1)
    return None
