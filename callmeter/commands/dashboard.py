"""``callmeter dashboard`` and ``callmeter demo``: serve the Streamlit app on a ledger.

Streamlit runs inside this process (``streamlit.web.cli``), so while the dashboard holds the
ledger, ``callmeter load`` and ``import`` name it as "callmeter dashboard". The ledger is passed
to the app as ``CALLMETER_DB``, which :func:`ingest.config.settings_from_env` reads.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from callmeter.options import DEFAULT_DB_VALUE, DbOption
from ingest.config import data_file, is_lake_target, settings_from_env
from ingest.demo import build_demo
from ingest.errors import CallmeterError
from ingest.keys import fingerprinter_for
from ingest.ledger import open_ledger

PortOption = Annotated[int, typer.Option("--port", help="Port the dashboard listens on.")]
HostOption = Annotated[str, typer.Option(
    "--host", help="Address to listen on. Anything beyond localhost needs "
    "CALLMETER_DASHBOARD_PASSWORD or CALLMETER_USERS_FILE.")]


def dashboard_app() -> Path:
    """The Streamlit entry file, ``dashboard/app.py``, wherever the package is installed."""
    spec = importlib.util.find_spec("dashboard")
    roots = list(spec.submodule_search_locations or []) if spec else []
    roots.append(str(Path(__file__).resolve().parents[2] / "dashboard"))
    for root in roots:
        app = Path(root) / "app.py"
        if app.is_file():
            return app
    raise CallmeterError("the dashboard is not installed (dashboard/app.py not found)")


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
    try:
        from dashboard.connection import get_ledger
    except ImportError:
        open_ledger(db).close()
        return
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
    os.environ["CALLMETER_DB"] = target  # read back by ingest.config in the app
    _own_ledger(target)
    typer.echo(f"callmeter dashboard on http://{host}:{port} (ledger {target}); Ctrl-C stops it",
               err=True)
    from streamlit.web import cli as streamlit_cli

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


def _parse_end(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        end = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("want YYYY-MM-DD or YYYY-MM-DDTHH:MM", param_hint="--end"
                                 ) from None
    return end if end.tzinfo else end.replace(tzinfo=UTC)


def _load_prices(conn, db: str) -> str:
    """Make data/prices.csv the ledger's price sheet, unless the ledger already has one."""
    try:
        from pricing import PricingError, latest_sheet, load_prices, unpriced_models
    except ImportError:
        return (f"prices not loaded (no pricing package); run `callmeter prices load --db {db}` "
                "to price the demo")
    current = latest_sheet(conn)
    if current is not None:
        return f"prices: keeping the ledger's sheet {current.sheet} (loaded {current.loaded_at:%F})"
    sheet = data_file("data/prices.csv")
    if not sheet.is_file():
        return "prices not loaded: data/prices.csv not found; see `callmeter prices load`"
    try:
        loaded = load_prices(conn, sheet)
    except PricingError as exc:
        return f"prices not loaded: {exc}"
    text = f"prices loaded from {loaded.sheet} ({loaded.rows} rows)"
    missing = unpriced_models(conn)
    if len(missing):
        text += "; unpriced: " + ", ".join(sorted(set(map(str, missing["model"]))))
    return text


def demo_command(
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Build the history and stop.")
                        ] = False,
    days: Annotated[int, typer.Option(min=1, help="Days of history.")] = 90,
    calls: Annotated[int, typer.Option(min=0, help="Calls in the history.")] = 300_000,
    seed: Annotated[int, typer.Option(help="Same seed, same history.")] = 42,
    end: Annotated[str | None, typer.Option(
        help="End of the history (UTC); default: the start of the current hour.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Add the demo even though the ledger holds real calls.")] = False,
    db: DbOption = DEFAULT_DB_VALUE,
    port: PortOption = 8501,
    host: HostOption = "127.0.0.1",
) -> None:
    """Build a realistic synthetic history (source 'demo') and serve the dashboard on it.

    ~30 keys with distinct habits over every endpoint, both billing variants, streams, cached
    and reasoning tokens, errors and a leaked-key spike. Re-running replaces the earlier demo
    rows; the same --seed and --end give the same calls and ids.
    """
    conn = open_ledger(db)
    try:
        real = conn.execute("SELECT count(*) FROM calls WHERE source <> 'demo'").fetchone()[0]
        if real and not force:
            raise CallmeterError(
                f"the ledger {db} holds {real:,} real calls; the demo would mix with them. "
                "Use --db data/demo.duckdb for a separate ledger, or --force"
            )
        result = build_demo(conn, calls=calls, days=days, seed=seed,
                            fingerprinter=fingerprinter_for(db), end=_parse_end(end))
        typer.echo(result.summary())
        typer.echo(_load_prices(conn, db))
    finally:
        conn.close()
    if not no_serve:
        serve(db, host, port)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard_command)
    app.command("demo")(demo_command)
