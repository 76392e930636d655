"""``callmeter load``: finished spool segments into the ledger."""

from __future__ import annotations

from typing import Annotated

import typer

from callmeter.options import DEFAULT_DB_VALUE, DataPathOption, DbOption


def load_command(
    db: DbOption = DEFAULT_DB_VALUE,
    keep: Annotated[bool, typer.Option(help="Archive loaded segments in loaded/ instead of "
                                       "deleting them.")] = False,
    data_path: DataPathOption = None,
) -> None:
    """Load finished spool segments (written by `callmeter proxy`) into the ledger.

    Idempotent by call_id: running it twice, or after a crash mid-load, inserts nothing twice.
    When another process (usually `callmeter dashboard`) holds the ledger, says so and leaves
    the segments for that process, which loads them on every refresh.
    """
    from ingest.loader import load_spool
    from ledger import LedgerLocked, open_ledger, spool_dir, spool_fate

    try:
        conn = open_ledger(db, data_path=data_path)
    except LedgerLocked as exc:
        typer.echo(f"{exc}. {spool_fate(exc, spool_dir(db))}.")
        return
    try:
        result = load_spool(conn, spool_dir(db), keep=keep)
    finally:
        conn.close()
    typer.echo(result.summary())


def register(app: typer.Typer) -> None:
    app.command("load")(load_command)
