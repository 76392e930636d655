"""The recording proxy: an OpenAI-compatible ASGI app that forwards to the platform and writes
one spool record per finished call (never the key, the prompt or the response).

    ProxyOptions   flags and defaults of ``callmeter proxy``
    ProxyApp       the ASGI application
    build_app      app with its spool writer, ready for any ASGI server
    serve          run it under uvicorn until SIGTERM
"""

from .app import ProxyApp
from .options import ProxyOptions
from .server import build_app, serve, uvicorn_config

__all__ = ["ProxyApp", "ProxyOptions", "build_app", "serve", "uvicorn_config"]
