"""``callmeter proxy``: serve the recording proxy in front of the platform."""

from __future__ import annotations

from typing import Annotated

import typer

from callmeter.options import DEFAULT_DB_VALUE, DbOption
from ledger import fingerprinter_for, settings_from_env, spool_dir


def proxy_command(
    upstream: Annotated[str | None, typer.Option(
        help="Base URL of the platform, e.g. https://platform.example/v1 (a URL without a path "
        "gets /v1). Default: $CALLMETER_UPSTREAM.", show_default=False)] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback "
                                      "exposes the proxy to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8700,
    timeout: Annotated[float | None, typer.Option(
        help="Seconds the upstream may stay silent (before headers or between stream chunks) "
        "before the client gets a 504. Default $CALLMETER_UPSTREAM_TIMEOUT or 600.",
        show_default=False)] = None,
    connect_timeout: Annotated[float | None, typer.Option(
        help="Seconds to connect to the upstream. Default $CALLMETER_UPSTREAM_CONNECT_TIMEOUT "
        "or 10.", show_default=False)] = None,
    max_connections: Annotated[int | None, typer.Option(
        help="Upstream connections open at most (per worker). Default "
        "$CALLMETER_MAX_CONNECTIONS or 1000.", show_default=False)] = None,
    max_body_bytes: Annotated[int | None, typer.Option(
        help="Largest request body accepted (413 above). Default $CALLMETER_MAX_BODY_BYTES "
        "or 64 MiB.", show_default=False)] = None,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes sharing the port. Default $CALLMETER_PROXY_WORKERS or 1.",
        show_default=False)] = None,
    transport: Annotated[str | None, typer.Option(
        help="Upstream HTTP transport under httpx: http1 (lean, fastest), aiohttp or httpx. "
        "Default $CALLMETER_PROXY_TRANSPORT or http1.", show_default=False)] = None,
    access_log: Annotated[bool | None, typer.Option(
        "--access-log/--no-access-log",
        help="One JSON line per call on stderr (never keys or bodies). Default on "
        "($CALLMETER_PROXY_ACCESS_LOG=0 turns it off).", show_default=False)] = None,
    db: DbOption = DEFAULT_DB_VALUE,
) -> None:
    """Recording proxy: point an OpenAI client's base URL at it and change nothing else.

    Forwards every call to the upstream platform, streams answers back as they come, and
    writes one spool record per call beside the ledger; `callmeter load` (or the dashboard)
    brings them in. Health at /healthz, Prometheus metrics at /metrics.
    """
    from ingest.proxy import ProxyOptions, serve

    settings = settings_from_env(db)
    options = ProxyOptions.from_settings(
        settings, upstream=upstream, host=host, port=port, read_timeout=timeout,
        connect_timeout=connect_timeout, max_connections=max_connections,
        max_body_bytes=max_body_bytes, workers=workers, transport=transport,
        access_log=access_log)
    if not options.upstream:
        raise typer.BadParameter("give the platform's URL with --upstream or "
                                 "$CALLMETER_UPSTREAM", param_hint="--upstream")
    if options.transport not in ("http1", "aiohttp", "httpx"):
        raise typer.BadParameter("choose http1, aiohttp or httpx", param_hint="--transport")
    try:
        from ingest.proxy.forwarding import Upstream

        Upstream(options.upstream)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--upstream") from None
    serve(options, spool_dir(settings.db), fingerprinter_for(settings.db))


def register(app: typer.Typer) -> None:
    app.command("proxy")(proxy_command)
