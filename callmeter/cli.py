"""Entry point and composition root: one Typer app, one module per command (or command group)
under ``commands/``, each imported here by name, so a module that fails to import fails the
command line loudly instead of dropping its commands.

The app's callback installs pricing's migrations and hooks into the ledger core before any
command runs (``pricing.install``); commands import what they need (pandas, Streamlit, httpx,
the pricing engines) inside their functions, so ``callmeter --help`` and ``callmeter load``
start fast.
"""

from __future__ import annotations

import sys

import typer

from callmeter.commands import (
    budgets,
    dashboard,
    demo,
    import_,
    load,
    migrate,
    otel,
    prices,
    proxy,
    quote,
    recommend,
    report,
    sync,
)
from ledger import CallmeterError

app = typer.Typer(
    name="callmeter",
    help="Usage and billing analytics for an OpenAI-compatible LLM platform: record calls "
    "through a proxy or import logs into a DuckDB ledger, price them per-token and "
    "per-request, and see where the money goes.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

@app.callback()
def compose() -> None:
    """Runs before every command (not for --help): registers pricing's migrations and hooks
    with the ledger core, so no command can open a ledger without them."""
    import pricing

    pricing.install()


# Order is the order of `callmeter --help`.
COMMANDS = (proxy, otel, import_, load, dashboard, demo, report, recommend, budgets, quote,
            prices, sync, migrate)
for _module in COMMANDS:
    _module.register(app)


def main() -> None:
    try:
        app()
    except CallmeterError as exc:
        typer.secho(f"callmeter: {exc}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
