"""``callmeter dashboard``: serve the Streamlit app on a ledger.

Streamlit runs inside this process (``streamlit.web.cli``), so while the dashboard holds the
ledger, ``callmeter load`` and ``import`` name it as "callmeter dashboard". The ledger is passed
to the app as ``CALLMETER_DB``, which :func:`ledger.config.settings_from_env` reads.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from callmeter.options import DEFAULT_DB_VALUE, DbOption
from ledger import CallmeterError, is_lake_target, settings_from_env

PortOption = Annotated[int, typer.Option("--port", help="Port the dashboard listens on.")]
HostOption = Annotated[str, typer.Option(
    "--host", help="Address to listen on. Anything beyond localhost needs "
    "CALLMETER_DASHBOARD_PASSWORD or CALLMETER_USERS_FILE.")]


def dashboard_app() -> Path:
    """The Streamlit entry file, ``dashboard/app.py``, wherever the package is installed."""
    import dashboard

    app = Path(dashboard.__file__).resolve().parent / "app.py"
    if not app.is_file():
        raise CallmeterError(f"the dashboard is not installed ({app} not found)")
    return app


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _own_ledger(db: str) -> None:
    """Open the ledger before serving: a held ledger fails now, clearly, and from here on this
    process owns it (the app's cached connection is the same one)."""
    from dashboard.connection import get_ledger

    get_ledger(db)


def serve(db: str, host: str = "127.0.0.1", port: int = 8501) -> None:
    """Run the dashboard on ``db`` until interrupted (blocks)."""
    settings = settings_from_env(db)
    if not _is_loopback(host) and not (settings.dashboard_password
                                       or settings.dashboard_users_file):
        raise CallmeterError(
            f"the dashboard would listen on {host}, beyond this machine, without a password: "
            "set CALLMETER_DASHBOARD_PASSWORD (or CALLMETER_USERS_FILE), or use --host 127.0.0.1"
        )
    app = dashboard_app()
    target = db if is_lake_target(db) else str(Path(db).expanduser().resolve())
    os.environ["CALLMETER_DB"] = target  # read back by ledger.config in the app
    _own_ledger(target)
    typer.echo(f"callmeter dashboard on http://{host}:{port} (ledger {target}); Ctrl-C stops it",
               err=True)
    from streamlit.web import cli as streamlit_cli

    from dashboard import headers

    if not headers.install():
        typer.echo("note: this Streamlit has no hook for security headers; set X-Frame-Options "
                   "and Content-Security-Policy in your reverse proxy (docs/dashboard.md)",
                   err=True)

    sys.argv = ["streamlit", "run", str(app)]
    streamlit_cli.main(
        ["run", str(app), "--server.headless=true", f"--server.port={port}",
         f"--server.address={host}", "--browser.gatherUsageStats=false"],
        prog_name="streamlit",
    )


def dashboard_command(db: DbOption = DEFAULT_DB_VALUE, port: PortOption = 8501,
                      host: HostOption = "127.0.0.1") -> None:
    """Serve the Streamlit dashboard on the ledger (owns the ledger while it runs).

    It loads finished spool segments on every refresh, so a running proxy's calls appear
    without `callmeter load`.
    """
    serve(db, host, port)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard_command)
