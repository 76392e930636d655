"""Every setting callmeter reads from the environment, in one place.

Nothing else in the code base reads ``os.environ``: other modules take a :class:`Settings`
(or a plain argument) so tests can pass values explicitly.
"""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

DEFAULT_DB = "data/callmeter.duckdb"
# new-api's and one-api's built-in quota_per_unit (quota units per US$1). Only a default: a site
# can set its own, published by GET /api/status. Used only when nothing says otherwise, and then
# the import or sync says which value it used.
DEFAULT_QUOTA_PER_UNIT = Decimal(500_000)


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def parse_quota_per_unit(value: object) -> Decimal:
    """A positive exact ``quota_per_unit`` (``500000``, ``"1e6"``, ``7.5``) or ValueError."""
    try:
        out = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"quota per unit {value!r} is not a number") from None
    if not out.is_finite() or out <= 0:
        raise ValueError(f"quota per unit {value!r} must be a positive number")
    return out


def _quota_per_unit_env() -> Decimal | None:
    # CALLMETER_QUOTA_PER_USD is the name this setting had before it followed new-api's own
    raw = os.environ.get("CALLMETER_QUOTA_PER_UNIT") or os.environ.get("CALLMETER_QUOTA_PER_USD")
    return parse_quota_per_unit(raw) if raw else None


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with :func:`settings_from_env`."""

    db: str = DEFAULT_DB
    upstream: str | None = None
    secret_file: Path | None = None
    spool_max_bytes: int = 64 * 1024 * 1024
    spool_max_seconds: float = 60.0
    upstream_timeout: float = 600.0
    upstream_connect_timeout: float = 10.0
    max_connections: int = 1000
    max_body_bytes: int = 64 * 1024 * 1024
    proxy_transport: str = "http1"
    proxy_workers: int = 1
    proxy_access_log: bool = True
    proxy_shutdown_timeout: float = 30.0
    upstream_keepalive: float = 4.0
    header_timeout: float = 30.0
    max_header_bytes: int = 64 * 1024
    # HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY as urllib reads them ("http", "https",
    # "all", "no"), and the CA bundle for TLS (SSL_CERT_FILE / SSL_CERT_DIR, as httpx reads them)
    egress_proxies: dict[str, str] = field(default_factory=dict)
    ca_file: str | None = None
    ca_dir: str | None = None
    dashboard_password: str | None = None
    dashboard_users_file: Path | None = None
    platform_url: str | None = None
    platform_token: str | None = None
    platform_user_id: str | None = None
    # quota units per US$1 on the platform; None = ask the platform (GET /api/status), else
    # DEFAULT_QUOTA_PER_UNIT with a note saying so
    quota_per_unit: Decimal | None = None
    platform_group: str | None = None
    sync_overlap_seconds: int = 600
    alert_webhook_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def settings_from_env(db: str | None = None) -> Settings:
    """Read ``CALLMETER_*`` variables; an explicit ``db`` (the ``--db`` flag) wins."""
    env = os.environ
    secret = env.get("CALLMETER_SECRET_FILE")
    users = env.get("CALLMETER_USERS_FILE")
    return Settings(
        db=db or env.get("CALLMETER_DB") or DEFAULT_DB,
        upstream=env.get("CALLMETER_UPSTREAM") or None,
        secret_file=Path(secret) if secret else None,
        spool_max_bytes=_int("CALLMETER_SPOOL_MAX_BYTES", 64 * 1024 * 1024),
        spool_max_seconds=_float("CALLMETER_SPOOL_MAX_SECONDS", 60.0),
        upstream_timeout=_float("CALLMETER_UPSTREAM_TIMEOUT", 600.0),
        upstream_connect_timeout=_float("CALLMETER_UPSTREAM_CONNECT_TIMEOUT", 10.0),
        max_connections=_int("CALLMETER_MAX_CONNECTIONS", 1000),
        max_body_bytes=_int("CALLMETER_MAX_BODY_BYTES", 64 * 1024 * 1024),
        proxy_transport=env.get("CALLMETER_PROXY_TRANSPORT") or "http1",
        proxy_workers=_int("CALLMETER_PROXY_WORKERS", 1),
        proxy_access_log=env.get("CALLMETER_PROXY_ACCESS_LOG", "1").lower() not in
        ("0", "false", "no", "off"),
        proxy_shutdown_timeout=_float("CALLMETER_PROXY_SHUTDOWN_TIMEOUT", 30.0),
        upstream_keepalive=_float("CALLMETER_UPSTREAM_KEEPALIVE", 4.0),
        header_timeout=_float("CALLMETER_HEADER_TIMEOUT", 30.0),
        max_header_bytes=_int("CALLMETER_MAX_HEADER_BYTES", 64 * 1024),
        egress_proxies=urllib.request.getproxies_environment(),
        ca_file=env.get("SSL_CERT_FILE") or None,
        ca_dir=env.get("SSL_CERT_DIR") or None,
        dashboard_password=env.get("CALLMETER_DASHBOARD_PASSWORD") or None,
        dashboard_users_file=Path(users) if users else None,
        platform_url=env.get("CALLMETER_PLATFORM_URL") or None,
        platform_token=env.get("CALLMETER_PLATFORM_TOKEN") or None,
        platform_user_id=env.get("CALLMETER_PLATFORM_USER_ID") or None,
        quota_per_unit=_quota_per_unit_env(),
        platform_group=env.get("CALLMETER_PLATFORM_GROUP") or None,
        sync_overlap_seconds=_int("CALLMETER_SYNC_OVERLAP_SECONDS", 600),
        alert_webhook_url=env.get("CALLMETER_ALERT_WEBHOOK") or None,
    )


def is_lake_target(db: str) -> bool:
    """True when ``--db`` names a DuckLake catalog rather than a local file."""
    return db.startswith("ducklake:")


def ledger_home(db: str) -> Path:
    """Folder that holds the ledger's companions (spool, rejected rows, secret)."""
    if is_lake_target(db):
        return Path(os.environ.get("CALLMETER_HOME", "data"))
    return Path(db).expanduser().resolve().parent


def ledger_companion(db: str, suffix: str, lake_name: str | None = None) -> Path:
    """A file or folder named after the ledger (``data/callmeter.duckdb`` + ``.spool`` →
    ``data/callmeter.spool``); for a lake, ``lake_name`` (default ``callmeter`` + suffix) in
    the home folder."""
    if is_lake_target(db):
        return ledger_home(db) / (lake_name or "callmeter" + suffix)
    p = Path(db).expanduser().resolve()
    return p.with_name(p.stem + suffix)


def spool_dir(db: str) -> Path:
    """Spool folder beside the ledger: ``data/callmeter.duckdb`` → ``data/callmeter.spool/``."""
    return ledger_companion(db, ".spool")


def rejected_dir(db: str) -> Path:
    """Where rejected rows are written, one file per import run."""
    return ledger_companion(db, ".rejected", lake_name="rejected")


# The repository's own data/ folder (prices.csv, models.csv, samples/), for commands run from
# another working directory.
PROJECT_DATA = Path(__file__).resolve().parents[1] / "data"


def data_file(path: str | Path) -> Path:
    """``path`` as given when it exists; a default like ``data/prices.csv`` otherwise falls back
    to the copy shipped in the project's data folder."""
    path = Path(path)
    if path.exists() or path.is_absolute() or path.parts[:1] != ("data",):
        return path
    shipped = PROJECT_DATA.joinpath(*path.parts[1:])
    return shipped if shipped.exists() else path
