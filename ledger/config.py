"""Every setting callmeter reads from the environment, defined once, and read in one place.

Each setting is a field of :class:`Settings` whose metadata names its environment variable and
says what it does; its type and default are the field's. :func:`settings_from_env` reads them
all, with explicit casts; nothing else in the code base reads ``os.environ`` (the command line
passes the values it gets from here, docs/settings.md is generated from :data:`SETTINGS` and a
test keeps the two in step).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import callmeter_data

DEFAULT_DB = "data/callmeter.duckdb"
# new-api's and one-api's built-in quota_per_unit (quota units per US$1). Only a default: a site
# can set its own, published by GET /api/status. Used only when nothing says otherwise, and then
# the import or sync says which value it used.
DEFAULT_QUOTA_PER_UNIT = Decimal(500_000)
MIB = 1024 * 1024


def parse_quota_per_unit(value: object) -> Decimal:
    """A positive exact ``quota_per_unit`` (``500000``, ``"1e6"``, ``7.5``) or ValueError."""
    try:
        out = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"quota per unit {value!r} is not a number") from None
    if not out.is_finite() or out <= 0:
        raise ValueError(f"quota per unit {value!r} must be a positive number")
    return out


def _flag(raw: str) -> bool:
    return raw.strip().lower() not in ("0", "false", "no", "off")


# How a variable's text becomes the field's value, by the field's declared type.
_PARSERS: dict[str, Callable[[str], object]] = {
    "str": str, "str | None": str, "int": int, "float": float, "bool": _flag,
    "Path | None": Path, "Decimal | None": parse_quota_per_unit,
}


def _setting(env: str, help: str, default: Any = None, *, aliases: tuple[str, ...] = (),
             factory: Callable[[], Any] | None = None) -> Any:
    meta = {"env": env, "help": help, "aliases": aliases}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with :func:`settings_from_env` (tests pass values)."""

    db: str = _setting("CALLMETER_DB", "The ledger: a DuckDB file (parent folders are "
                       "created) or a DuckLake target 'ducklake:postgres:dbname=… host=…'; "
                       "every command's --db wins.", DEFAULT_DB)
    home: Path | None = _setting("CALLMETER_HOME", "Folder for a lake's companions (spool, "
                                 "rejected rows, secret); default data/. A ledger file keeps "
                                 "them beside it.")
    data_path: str | None = _setting("CALLMETER_DATA_PATH", "DuckLake only: folder or s3:// "
                                     "prefix for the lake's Parquet files (--data-path wins).")
    secret_file: Path | None = _setting("CALLMETER_SECRET_FILE", "The install secret that keys "
                                        "API-key fingerprints; default callmeter.secret beside "
                                        "the ledger.")
    upstream: str | None = _setting("CALLMETER_UPSTREAM", "proxy: the platform's base URL "
                                    "(--upstream wins).")
    spool_max_bytes: int = _setting("CALLMETER_SPOOL_MAX_BYTES", "proxy, otel: close a spool "
                                    "segment at this size.", 64 * MIB)
    spool_max_seconds: float = _setting("CALLMETER_SPOOL_MAX_SECONDS", "proxy, otel: close a "
                                        "spool segment after this many seconds.", 60.0)
    upstream_timeout: float = _setting("CALLMETER_UPSTREAM_TIMEOUT", "proxy: seconds an "
                                       "upstream answer may take (read timeout).", 600.0)
    upstream_connect_timeout: float = _setting("CALLMETER_UPSTREAM_CONNECT_TIMEOUT", "proxy: "
                                               "seconds to connect to the upstream.", 10.0)
    max_connections: int = _setting("CALLMETER_MAX_CONNECTIONS", "proxy: upstream connections "
                                    "kept at most.", 1000)
    max_body_bytes: int = _setting("CALLMETER_MAX_BODY_BYTES", "proxy, otel: largest request "
                                   "body accepted (413 beyond).", 64 * MIB)
    proxy_transport: str = _setting("CALLMETER_PROXY_TRANSPORT", "proxy: upstream transport, "
                                    "http1 (callmeter's own), aiohttp or httpx.", "http1")
    proxy_workers: int = _setting("CALLMETER_PROXY_WORKERS", "proxy: worker processes.", 1)
    proxy_access_log: bool = _setting("CALLMETER_PROXY_ACCESS_LOG", "proxy: log one line per "
                                      "request (0/false/no/off: no).", True)
    proxy_shutdown_timeout: float = _setting("CALLMETER_PROXY_SHUTDOWN_TIMEOUT", "proxy: "
                                             "seconds to let calls in flight finish on stop.",
                                             30.0)
    upstream_keepalive: float = _setting("CALLMETER_UPSTREAM_KEEPALIVE", "proxy: seconds an "
                                         "idle upstream connection is kept.", 4.0)
    header_timeout: float = _setting("CALLMETER_HEADER_TIMEOUT", "proxy: seconds a client has "
                                     "to send its request head (408 beyond).", 30.0)
    max_header_bytes: int = _setting("CALLMETER_MAX_HEADER_BYTES", "proxy: largest request "
                                     "head accepted (431 beyond).", 64 * 1024)
    # HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY as urllib reads them ("http", "https",
    # "all", "no"), and the CA bundle for TLS (SSL_CERT_FILE / SSL_CERT_DIR, as httpx reads them)
    egress_proxies: dict[str, str] = _setting(
        "HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY", "proxy, sync: the forward proxy for "
        "outgoing requests, as curl and urllib read these (lower case too).", factory=dict)
    ca_file: str | None = _setting("SSL_CERT_FILE", "proxy, sync: CA bundle for the upstream's "
                                   "TLS certificate.")
    ca_dir: str | None = _setting("SSL_CERT_DIR", "proxy, sync: folder of CA certificates.")
    dashboard_password: str | None = _setting("CALLMETER_DASHBOARD_PASSWORD", "dashboard: one "
                                              "shared password (required beyond localhost "
                                              "unless a users file is given).")
    dashboard_users_file: Path | None = _setting("CALLMETER_USERS_FILE", "dashboard: users, "
                                                 "hashed passwords, roles and keys (see "
                                                 "docs/dashboard.md).")
    platform_url: str | None = _setting("CALLMETER_PLATFORM_URL", "sync, prices pull: the "
                                        "platform's console URL (--platform wins).")
    platform_token: str | None = _setting("CALLMETER_PLATFORM_TOKEN", "sync: the console "
                                          "access token (--token wins).")
    platform_user_id: str | None = _setting("CALLMETER_PLATFORM_USER_ID", "sync: the console "
                                            "user id (--user-id wins).")
    # quota units per US$1 on the platform; None = ask the platform (GET /api/status), else
    # DEFAULT_QUOTA_PER_UNIT with a note saying so
    quota_per_unit: Decimal | None = _setting(
        "CALLMETER_QUOTA_PER_UNIT", "import --format newapi, sync, prices pull: the platform's "
        "quota units per US$1 (its quota_per_unit); default: asked from the platform, else "
        "500000. CALLMETER_QUOTA_PER_USD is read too (its former name).",
        aliases=("CALLMETER_QUOTA_PER_USD",))
    platform_group: str | None = _setting("CALLMETER_PLATFORM_GROUP", "prices pull: the "
                                          "platform group whose ratio prices the sheet.")
    sync_overlap_seconds: int = _setting("CALLMETER_SYNC_OVERLAP_SECONDS", "sync: seconds "
                                         "re-read before the last synced call (late rows).",
                                         600)
    alert_webhook_url: str | None = _setting("CALLMETER_ALERT_WEBHOOK", "recommend --alerts: "
                                             "URL new alerts are POSTed to (--webhook wins).")


@dataclass(frozen=True)
class Setting:
    """One setting as documented: field name, variable(s), type, default, help."""

    name: str
    env: str
    type: str
    default: object
    help: str
    aliases: tuple[str, ...] = ()


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, f.metadata["env"], str(f.type),
            f.default_factory() if f.default is MISSING and f.default_factory is not MISSING
            else f.default, f.metadata["help"], f.metadata["aliases"])
    for f in fields(Settings))


def _read(env: Mapping[str, str], s: Setting) -> object:
    if s.name == "egress_proxies":
        import urllib.request  # (costs ~10 ms of start-up: only when settings are read)

        return urllib.request.getproxies_environment()
    for name in (s.env, *s.aliases):
        raw = env.get(name)
        if raw not in (None, ""):
            return _PARSERS[s.type](raw)
    return s.default


def settings_from_env(db: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from the environment (or ``env``); an explicit ``db`` (the ``--db``
    flag) wins over ``CALLMETER_DB``."""
    source = os.environ if env is None else env
    values: dict[str, Any] = {s.name: _read(source, s) for s in SETTINGS}
    if db:
        values["db"] = db
    return Settings(**values)


def settings_table() -> str:
    """docs/settings.md's table: one row per setting."""
    rows = ["| variable | setting | type | default | what it does |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        default = "—" if s.default in (None, {}) else f"`{s.default}`"
        env = ", ".join(f"`{name.strip()}`" for name in (*s.env.split(","), *s.aliases))
        kind = s.type.replace("|", "\\|")
        rows.append(f"| {env} | {s.name} | {kind} | {default} | {s.help} |")
    return "\n".join(rows) + "\n"


def is_lake_target(db: str) -> bool:
    """True when ``--db`` names a DuckLake catalog rather than a local file."""
    return db.startswith("ducklake:")


def ledger_home(db: str, settings: Settings | None = None) -> Path:
    """Folder that holds the ledger's companions (spool, rejected rows, secret)."""
    if is_lake_target(db):
        home = (settings or settings_from_env(db)).home
        return home if home is not None else Path("data")
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


def shipped_file(name: str) -> Path:
    """A file callmeter ships (``prices.csv``, ``models.csv``, ``samples/…``), wherever the
    package is installed: the repository's data/ folder, packaged as ``callmeter_data``."""
    found = resources.files(callmeter_data).joinpath(*Path(name).parts)
    return Path(str(found))


def data_file(path: str | Path) -> Path:
    """``path`` as given when it exists; a default like ``data/prices.csv`` otherwise falls back
    to the copy shipped with callmeter (:func:`shipped_file`)."""
    path = Path(path)
    if path.exists() or path.is_absolute() or path.parts[:1] != ("data",):
        return path
    shipped = shipped_file(str(Path(*path.parts[1:])))
    return shipped if shipped.exists() else path
