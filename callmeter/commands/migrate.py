"""``callmeter migrate``: move an embedded ledger file into a DuckLake lake, verified."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from callmeter.options import DataPathOption
from ledger import DEFAULT_DB, is_lake_target


def migrate_command(
    to: Annotated[str, typer.Option(
        "--to", help="The lake: 'ducklake:postgres:dbname=… host=…'.", show_default=False)],
    source: Annotated[Path, typer.Option(
        "--from", help="The ledger file to move.")] = Path(DEFAULT_DB),
    data_path: DataPathOption = None,
) -> None:
    """Copy a ledger file into a DuckLake lake, verifying counts and cost totals.

    One transaction: calls go in by call_id (re-running adds nothing), price sheet and import
    history come along, and the commit happens only when rows, requests, tokens, charged and
    cost totals of the file's calls are equal on both sides. The file is left as it was.
    """
    if not is_lake_target(to):
        raise typer.BadParameter("want a DuckLake target such as "
                                 "'ducklake:postgres:dbname=callmeter host=db.internal'",
                                 param_hint="--to")
    from ledger import migrate_to_lake

    result = migrate_to_lake(source, to, data_path=data_path)
    typer.echo(f"calls in {source}: {result.calls_in_file}; copied {result.inserted}, "
               f"already in the lake {result.already_in_lake}")
    for table, rows in sorted(result.tables.items()):
        typer.echo(f"  {table}: {rows} row(s) copied")
    for note in result.notes:
        typer.echo(f"  note: {note}")
    typer.echo("verified (file = lake): " + ", ".join(
        f"{k} {result.file_totals[k]}" for k in result.file_totals))


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate_command)
