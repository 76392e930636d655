"""The proxy's options: flags of ``callmeter proxy``, defaults from :mod:`ledger.config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger import Settings


@dataclass(frozen=True)
class ProxyOptions:
    upstream: str
    host: str = "127.0.0.1"
    port: int = 8700
    connect_timeout: float = 10.0       # connecting to upstream (and waiting for a pool slot)
    read_timeout: float = 600.0         # upstream silent this long → 504 (or a cut stream)
    max_connections: int = 1000         # upstream connections kept open at most
    max_body_bytes: int = 64 * 1024 * 1024
    transport: str = "http1"            # httpx transport: "http1" (fastest), "aiohttp", "httpx"
    workers: int = 1
    access_log: bool = True
    shutdown_timeout: float = 30.0      # SIGTERM: how long in-flight calls may still run
    spool_max_bytes: int = 64 * 1024 * 1024
    spool_max_seconds: float = 60.0
    keepalive_seconds: float = 4.0      # idle upstream connections kept (below uvicorn/Node 5 s)
    header_timeout: float = 30.0        # a client must send its request headers within this
    max_header_bytes: int = 64 * 1024   # larger request header sections get 431
    egress_proxies: dict[str, str] = field(default_factory=dict)  # HTTP(S)_PROXY, NO_PROXY
    ca_file: str | None = None          # SSL_CERT_FILE: the CAs to trust instead of the system's
    ca_dir: str | None = None           # SSL_CERT_DIR

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> ProxyOptions:
        """Options from the environment's settings; ``None`` overrides are ignored."""
        values: dict[str, Any] = {
            "upstream": settings.upstream or "",
            "connect_timeout": settings.upstream_connect_timeout,
            "read_timeout": settings.upstream_timeout,
            "max_connections": settings.max_connections,
            "max_body_bytes": settings.max_body_bytes,
            "spool_max_bytes": settings.spool_max_bytes,
            "spool_max_seconds": settings.spool_max_seconds,
            "keepalive_seconds": settings.upstream_keepalive,
            "header_timeout": settings.header_timeout,
            "max_header_bytes": settings.max_header_bytes,
            "egress_proxies": dict(settings.egress_proxies),
            "ca_file": settings.ca_file,
            "ca_dir": settings.ca_dir,
        }
        for name in ("transport", "workers", "access_log", "shutdown_timeout"):
            value = getattr(settings, "proxy_" + name, None)
            if value is not None:
                values[name] = value
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
