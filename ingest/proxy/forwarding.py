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
    "threads", "realtime", "engines", "edits", "messages",
})
# Gemini's native API versions: ``/v1beta/models/{model}:generateContent`` goes to the upstream's
# origin unchanged (new-api serves it there), and is read as a Gemini call.
GEMINI_VERSIONS = frozenset({"v1beta", "v1alpha"})
# ``models/{model}:{method}`` (Gemini) → endpoint; other methods (embedContent, ...) are `other`
GEMINI_METHODS = {"generateContent": "gemini", "streamGenerateContent": "gemini",
                  "countTokens": "count_tokens"}
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
    "messages": "messages",                    # Anthropic Messages (Claude Code, anthropic SDK)
    "messages/count_tokens": "count_tokens",
    "responses": "responses",                  # OpenAI Responses (Codex CLI, openai SDK)
    "responses/compact": "responses",
    "responses/input_tokens": "count_tokens",
    "models": "models",
    "": "probe",                               # the bare base URL: clients' reachability checks
}
_SAFE_PATH = "/:@!$&'()*+,;=-._~"


@dataclass(frozen=True, slots=True)
class Route:
    endpoint: str   # contract endpoint name: chat, embeddings, ..., other
    api_path: str   # "chat/completions", or the origin path for non-API paths
    url: str        # upstream URL without the query string
    model: str | None = None   # a model named by the path (Gemini), not by the body
    stream: bool = False       # the path asks for a stream (Gemini's streamGenerateContent)


def classify(api_path: str) -> tuple[str, str | None, bool]:
    """(endpoint, model named in the path, streamed) of an API path such as
    ``chat/completions`` or ``models/gemini-2.5-pro:streamGenerateContent``."""
    endpoint = ENDPOINT_BY_PATH.get(api_path)
    if endpoint is not None:
        return endpoint, None, False
    if not api_path.startswith("models/"):
        return "other", None, False
    name, colon, method = api_path[7:].rpartition(":")
    if not colon:
        return "models", None, False   # GET models/{id}
    return GEMINI_METHODS.get(method, "other"), name or None, method == "streamGenerateContent"


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
        elif first in GEMINI_VERSIONS:
            endpoint, model, stream = classify(clean[len(first) + 1:].strip("/"))
            return Route(endpoint, clean.lstrip("/"),
                         self.origin + quote(clean, safe=_SAFE_PATH), model, stream)
        else:
            endpoint = "probe" if clean == "/" else "other"
            return Route(endpoint, clean.lstrip("/"), self.origin + quote(clean, safe=_SAFE_PATH))
        api_path = rest.strip("/")
        endpoint, model, stream = classify(api_path)
        return Route(endpoint, api_path, target + quote("/" + api_path, safe=_SAFE_PATH)
                     if api_path else target, model, stream)


def error_body(message: str, code: str, kind: str = "proxy_error") -> bytes:
    """An OpenAI-style error body, so SDKs raise their usual exception with our message."""
    return json.dumps({"error": {"message": message, "type": kind, "param": None,
                                 "code": code}}).encode()
