"""``callmeter otel``: receive OpenTelemetry GenAI spans (OTLP/HTTP) as ledger calls."""

from __future__ import annotations

from typing import Annotated

import typer

from callmeter.options import DEFAULT_DB_VALUE, DbOption
from ledger import fingerprinter_for, settings_from_env, spool_dir


def otel_command(
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback "
                                      "accepts spans from the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (OTLP/HTTP's usual 4318).")
                    ] = 4318,
    db: DbOption = DEFAULT_DB_VALUE,
) -> None:
    """OTLP/HTTP receiver: point an instrumented app's exporter at it and each GenAI span
    becomes one call in the ledger.

    Set OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 in the application. Takes
    POST /v1/traces (protobuf or JSON, gzip); spans that are not GenAI calls are counted and
    left. Calls go to the spool beside the ledger, as the proxy's do; `callmeter load` (or
    the dashboard) brings them in. Counts at /healthz.
    """
    from ingest.otel import serve

    settings = settings_from_env(db)
    serve(host, port, spool_dir(settings.db), fingerprinter_for(settings.db), settings)


def register(app: typer.Typer) -> None:
    app.command("otel")(otel_command)
