"""Where a request goes upstream and what travels with it: paths, headers, transport, errors.

The proxy only ever talks to the configured upstream: the target URL is built from the upstream
base and a normalised path (``//`` collapsed, ``..`` resolved inside the root), never from the
request's absolute URL or ``Host`` header.
"""

from __future__ import annotations

import functools
import json
import posixpath
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

# Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus ones the proxy sets.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"proxy-connection",
})
REQUEST_DROP = HOP_BY_HOP | {b"host", b"content-length", b"expect", b"x-callmeter-tags"}
RESPONSE_DROP = HOP_BY_HOP | {b"content-length"}

# First path segments of the OpenAI API; other paths (e.g. new-api's /api/status) go to the
# upstream's origin unchanged.
API_ROOTS = frozenset({
    "chat", "completions", "embeddings", "images", "audio", "rerank", "models", "responses",
    "moderations", "files", "batches", "fine_tuning", "uploads", "vector_stores", "assistants",
    "threads", "realtime", "engines", "edits",
})
ENDPOINT_BY_PATH = {
    "chat/completions": "chat",
    "embeddings": "embeddings",
    "images/generations": "images",
    "images/edits": "images",
    "images/variations": "images",
    "audio/speech": "speech",
    "audio/transcriptions": "transcriptions",
    "audio/translations": "transcriptions",
    "rerank": "rerank",
}
_SAFE_PATH = "/:@!$&'()*+,;=-._~"


@dataclass(frozen=True, slots=True)
class Route:
    endpoint: str   # contract endpoint name: chat, embeddings, ..., other
    api_path: str   # "chat/completions", or the origin path for non-API paths
    url: str        # upstream URL without the query string


class Upstream:
    """The configured upstream: a base URL like ``https://platform.example/v1``."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url.strip())
        # URL credentials are never sent: each client's own key is forwarded, and user:pass
        # would otherwise reach the Host header, /healthz and the log. Dropped, and said once.
        self.credentials_dropped = "@" in parts.netloc
        if self.credentials_dropped:
            parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"upstream must be an http(s) URL, got {parts.geturl()!r}")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.host_header = parts.netloc.encode("idna" if not parts.netloc.isascii() else "ascii")
        path = parts.path.rstrip("/")
        self.base = self.origin + (path or "/v1")
        self.resolve = functools.lru_cache(maxsize=4096)(self._resolve)

    def _resolve(self, path: str) -> Route:
        clean = posixpath.normpath("/" + path.replace("\\", "/"))
        while clean.startswith("//"):  # normpath keeps a leading "//" (POSIX rule)
            clean = clean[1:]
        first = clean.split("/", 2)[1]
        if first == "v1":
            rest, target = clean[3:], self.base
        elif first in API_ROOTS:
            rest, target = clean, self.base
        else:
            return Route("other", clean.lstrip("/"), self.origin + quote(clean, safe=_SAFE_PATH))
        api_path = rest.strip("/")
        endpoint = ENDPOINT_BY_PATH.get(api_path, "other")
        return Route(endpoint, api_path, target + quote("/" + api_path, safe=_SAFE_PATH)
                     if api_path else target)


def error_body(message: str, code: str, kind: str = "proxy_error") -> bytes:
    """An OpenAI-style error body, so SDKs raise their usual exception with our message."""
    return json.dumps({"error": {"message": message, "type": kind, "param": None,
                                 "code": code}}).encode()
