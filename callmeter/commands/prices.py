"""``callmeter prices check`` and ``callmeter prices load``: the price sheet and the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from callmeter.options import DEFAULT_DB_VALUE, DbOption
from ingest.config import data_file, is_lake_target
from ingest.errors import LedgerError
from ingest.ledger import open_ledger
from pricing import (
    DEFAULT_SHEET,
    PriceSheet,
    load_prices,
    read_sheet,
    unpriced_by_sheet,
    unpriced_models,
)

SheetArgument = Annotated[Path, typer.Argument(
    help="Price sheet (CSV).", show_default=True)]


def _print_problems(sheet: PriceSheet) -> None:
    for problem in sheet.problems:
        typer.secho(str(problem), fg="red" if problem.severity == "error" else "yellow",
                    err=True)


def _read(path: Path) -> PriceSheet:
    path = data_file(path)
    if not path.is_file():
        typer.secho(f"{path}: no such file", fg="red", err=True)
        raise typer.Exit(1)
    return read_sheet(path)


def _summary(sheet: PriceSheet) -> str:
    per_request = sum(1 for m in sheet.models if m.endswith("-c"))
    return (f"{sheet.path}: {len(sheet.rows)} rows, {len(sheet.models)} models "
            f"({per_request} per-request), currency {sheet.currency}, "
            f"{len(sheet.errors)} error(s), {len(sheet.warnings)} warning(s)")


def _report_unpriced(sheet: PriceSheet, db: str) -> None:
    """List ledger models the sheet leaves unpriced; say why when the ledger can't be read."""
    if not is_lake_target(db) and not Path(db).expanduser().is_file():
        typer.echo(f"no ledger at {db}: nothing to compare with")
        return
    try:
        conn = open_ledger(db, read_only=True)
    except LedgerError as exc:
        typer.echo(f"models without a price not listed: {exc}")
        return
    try:
        missing = unpriced_by_sheet(conn, sheet)
    finally:
        conn.close()
    if not missing:
        typer.echo(f"every model in {db} has a price in this sheet")
        return
    typer.echo(f"models in {db} without a price in this sheet:")
    for m in missing:
        typer.echo(f"  {m.model:<40} {m.calls:>10,} calls  needs a {m.price_row} row from "
                   f"{m.first_day} or earlier (calls {m.first_day} … {m.last_day})")


def check_command(sheet: SheetArgument = Path(DEFAULT_SHEET),
                  db: DbOption = DEFAULT_DB_VALUE) -> None:
    """Validate a price sheet: every error with its line and column (exit 1 on errors).

    Then list the models seen in the ledger that the sheet leaves without a price, with their
    call counts. The ledger is only read, never changed.
    """
    parsed = _read(sheet)
    _print_problems(parsed)
    typer.echo(_summary(parsed))
    if parsed.rows:
        _report_unpriced(parsed, db)
    if parsed.errors:
        raise typer.Exit(1)


def load_command(sheet: SheetArgument = Path(DEFAULT_SHEET),
                 db: DbOption = DEFAULT_DB_VALUE) -> None:
    """Validate a sheet and make it the ledger's `prices` table (replaced in one transaction).

    The ledger records which sheet (path, sha256) was loaded and when, in `price_sheets`.
    A sheet with errors changes nothing (exit 1).
    """
    parsed = _read(sheet)
    _print_problems(parsed)
    if parsed.errors:
        typer.echo(_summary(parsed))
        raise typer.Exit(1)
    conn = open_ledger(db)
    try:
        loaded = load_prices(conn, parsed)
        missing = unpriced_models(conn)
    finally:
        conn.close()
    typer.echo(f"loaded {loaded.rows} prices for {loaded.models} models ({loaded.currency}) "
               f"from {loaded.sheet} (sha256 {loaded.sha256[:12]}…) into {db}")
    for row in missing.itertuples():
        typer.echo(f"  unpriced: {row.model:<40} {int(row.calls):>10,} calls  ({row.reason})")


def prices_group(app: typer.Typer) -> typer.Typer:
    """The `prices` command group, created once whichever module registers first."""
    for info in app.registered_groups:
        if info.name == "prices" and info.typer_instance is not None:
            return info.typer_instance
    group = typer.Typer(help="Price sheets: check, load, pull from the platform.",
                        no_args_is_help=True)
    app.add_typer(group, name="prices")
    return group


def register(app: typer.Typer) -> None:
    group = prices_group(app)
    group.command("check")(check_command)
    group.command("load")(load_command)
