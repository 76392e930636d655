"""How the proxy reaches the upstream: which transport, through which egress proxy, trusting
which CAs; and what a client (and the log) is told when the upstream cannot be reached.

callmeter's own ``http1`` transport speaks to the upstream directly. When ``HTTP_PROXY`` /
``HTTPS_PROXY`` / ``ALL_PROXY`` applies to the upstream (and ``NO_PROXY`` does not exempt it),
the proxy switches to httpx's own transport, which tunnels through it, and says so in the log.
TLS trusts the system's CAs, or exactly ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set (as
httpx and the OpenAI SDK do), so a platform behind a private CA works by pointing those at it.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    """Why no upstream answer came: the status and error code the client gets, and a message
    fit for the client's error body and the proxy's log."""

    status: int
    code: str
    message: str


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        following = exc.__cause__ or exc.__context__
        if following is None:
            return
        exc = following


def describe_failure(exc: Exception) -> UpstreamFailure:
    """504 for a timeout; 502 for TLS, a malformed answer or no connection — each said plainly."""
    chain = list(_causes(exc))
    if any(isinstance(e, asyncio.TimeoutError | TimeoutError | httpx.TimeoutException)
           for e in chain):
        return UpstreamFailure(504, "upstream_timeout",
                               "the upstream platform did not answer in time")
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return UpstreamFailure(502, "upstream_tls_error", (
                f"TLS: the upstream platform's certificate was not accepted "
                f"({e.verify_message}); if it is issued by a private CA, set SSL_CERT_FILE to "
                f"that CA's certificate (PEM) before starting the proxy"))
        if isinstance(e, ssl.SSLError):
            return UpstreamFailure(502, "upstream_tls_error",
                                   f"TLS handshake with the upstream platform failed ({e})")
    if isinstance(exc, httpx.RemoteProtocolError) and "disconnected" not in str(exc):
        return UpstreamFailure(502, "upstream_bad_response",
                               f"the upstream platform's answer is not valid HTTP ({exc})")
    return UpstreamFailure(502, "upstream_unreachable",
                           f"the upstream platform cannot be reached ({exc or type(exc).__name__})")


def tls_context(ca_file: str | None = None, ca_dir: str | None = None) -> ssl.SSLContext:
    """The system's CAs, or exactly those of ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``."""
    if ca_file or ca_dir:
        return ssl.create_default_context(cafile=ca_file or None, capath=ca_dir or None)
    return ssl.create_default_context()


def egress_proxy_for(url: str, proxies: Mapping[str, str]) -> str | None:
    """The proxy that ``proxies`` (as ``urllib.request.getproxies_environment()`` returns them:
    ``http``, ``https``, ``all``, ``no``) names for ``url``, or None."""
    parts = urlsplit(url)
    chosen = proxies.get(parts.scheme) or proxies.get("all")
    if not chosen:
        return None
    # (in urllib since Python 2, documented nowhere, so typeshed leaves it out)
    bypass = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009
    if bypass(parts.netloc.rpartition("@")[2],
                                               dict(proxies)):
        return None
    return chosen if "://" in chosen else "http://" + chosen


def redact(url: str) -> str:
    """``url`` without its user:password part, for logs and /healthz."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def make_transport(kind: str, *, max_connections: int, keepalive_seconds: float,
                   ssl_context: ssl.SSLContext, proxy_url: str | None = None
                   ) -> tuple[httpx.AsyncBaseTransport, str | None]:
    """The transport, and a note for the log when it is not the one asked for.

    ``http1`` (default, fastest: see docs/performance.md), httpx-aiohttp's ``aiohttp``, or
    httpx's own; through an egress proxy always httpx's own. The aiohttp session keeps no
    cookies (one client's cookies must never reach another's requests), never decompresses
    (bodies pass through byte for byte) and adds no headers.
    """
    if kind not in ("http1", "httpx", "aiohttp"):
        raise ValueError(f"unknown transport {kind!r}: choose http1, aiohttp or httpx")
    note = None
    if proxy_url is not None:
        note = (f"an egress proxy applies to the upstream ({redact(proxy_url)}, from "
                f"HTTP(S)_PROXY/ALL_PROXY): using httpx's transport through it"
                + (f" instead of {kind}" if kind != "httpx" else ""))
        kind = "httpx"
    if kind == "http1":
        from .http1 import Http1Transport

        return Http1Transport(max_connections=max_connections,
                              keepalive_seconds=keepalive_seconds, ssl_context=ssl_context), note
    if kind == "httpx":
        limits = httpx.Limits(max_connections=max_connections,
                              max_keepalive_connections=max_connections,
                              keepalive_expiry=keepalive_seconds)
        return httpx.AsyncHTTPTransport(limits=limits, retries=0, verify=ssl_context,
                                        proxy=proxy_url, trust_env=False), note
    return _aiohttp_transport(max_connections, keepalive_seconds, ssl_context), note


def _aiohttp_transport(max_connections: int, keepalive_seconds: float,
                       ssl_context: ssl.SSLContext) -> httpx.AsyncBaseTransport:
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0,
                                         keepalive_timeout=keepalive_seconds,
                                         ttl_dns_cache=60, ssl=ssl_context)
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     auto_decompress=False,
                                     skip_auto_headers=("User-Agent", "Accept"))

    return AiohttpTransport(client=session)
