"""Entry point: one Typer app; each command group lives in its own module under commands/."""

from __future__ import annotations

import importlib
import sys

import typer

from ingest.errors import CallmeterError

app = typer.Typer(
    name="callmeter",
    help="Usage and billing analytics for an OpenAI-compatible LLM platform: record calls "
    "through a proxy or import logs into a DuckDB ledger, price them per-token and "
    "per-request, and see where the money goes.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

# Each module exposes register(app). Order is the order of `callmeter --help`.
COMMAND_MODULES = (
    "callmeter.commands.proxy",
    "callmeter.commands.otel",
    "callmeter.commands.ledger",
    "callmeter.commands.dashboard",
    "callmeter.commands.reports",
    "callmeter.commands.quote",
    "callmeter.commands.prices",
    "callmeter.commands.sync",
    "callmeter.commands.lake",
)

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # a command group not built yet
        if exc.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    try:
        app()
    except CallmeterError as exc:
        typer.secho(f"callmeter: {exc}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
