"""Security headers on every response of the dashboard's server.

Streamlit (1.67) has no setting for response headers; its server is a Starlette app whose
middleware list comes from ``streamlit.web.server.starlette.starlette_app.
create_streamlit_middleware`` (read 2026-12 in streamlit 1.67.0). :func:`install` puts one
small ASGI middleware in front of that list before the server starts, so every page, asset and
upload answer says: never inside another site's frame (clickjacking), no content sniffing, no
referrer. A full script/style CSP would break Streamlit's own inline code, so the policy is
``frame-ancestors 'none'`` only; TLS and HSTS belong to the reverse proxy (docs/dashboard.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                         if k.lower().encode() not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install() -> bool:
    """Add :class:`SecurityHeaders` to Streamlit's server; False when this Streamlit has no
    such hook (the dashboard still runs; say so and rely on the reverse proxy's headers)."""
    try:
        from starlette.middleware import Middleware
        from streamlit.web.server.starlette import starlette_app
    except ImportError:
        return False
    original = getattr(starlette_app, "create_streamlit_middleware", None)
    if original is None:
        return False
    if getattr(original, "_callmeter_headers", False):
        return True

    def with_headers() -> list[Middleware]:
        return [Middleware(SecurityHeaders), *original()]

    with_headers._callmeter_headers = True  # type: ignore[attr-defined]  # marks the wrapper
    starlette_app.create_streamlit_middleware = with_headers
    return True
