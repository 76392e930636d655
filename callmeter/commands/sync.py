"""``callmeter sync``: follow the platform's consumption log into the ledger, incrementally."""

from __future__ import annotations

import sys
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import typer

from callmeter.options import DEFAULT_DB_VALUE, DbOption, QuotaPerUnitOption
from ledger import Settings, settings_from_env

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress



def console() -> Console:
    """rich's console, made when a command prints (rich is not imported at start-up)."""
    from rich.console import Console

    return Console(stderr=True)

PlatformOption = Annotated[
    str | None, typer.Option("--platform", help="The platform's base URL (as in the console's "
                             "address bar). Default: $CALLMETER_PLATFORM_URL, else the last "
                             "one synced.", show_default=False)]
TokenOption = Annotated[
    str | None, typer.Option("--token", help="The console's access token (personal settings → "
                             "access token; not an sk- key). Default: "
                             "$CALLMETER_PLATFORM_TOKEN, else the stored one.",
                             show_default=False)]
UserOption = Annotated[
    str | None, typer.Option("--user-id", help="Your numeric user id on the platform (sent as "
                             "New-Api-User). Default: $CALLMETER_PLATFORM_USER_ID.",
                             show_default=False)]


def platform_settings(db: str, platform: str | None, token: str | None,
                      user_id: str | None, quota_per_unit: Decimal | None = None) -> Settings:
    """Settings from the environment, the flags, and what the last sync remembered."""
    from ingest.sync import read_state

    settings = settings_from_env(db)
    remembered = read_state(db)
    url = platform or settings.platform_url or remembered.get("platform")
    if not url:
        raise typer.BadParameter("give the platform's URL (or set CALLMETER_PLATFORM_URL)",
                                 param_hint="--platform")
    uid = user_id or settings.platform_user_id or remembered.get("user_id")
    return replace(settings, platform_url=url, platform_token=token or settings.platform_token,
                   platform_user_id=uid,
                   quota_per_unit=quota_per_unit or settings.quota_per_unit)


def sync_command(
    platform: PlatformOption = None,
    token: TokenOption = None,
    user_id: UserOption = None,
    since: Annotated[str | None, typer.Option(help="Start here (YYYY-MM-DD or ISO time, UTC) "
                                              "instead of where the last sync stopped.")] = None,
    remember_token: Annotated[bool, typer.Option(
        "--save-token", help="Keep --token for later runs (OS keyring, else a 0600 file beside "
        "the ledger; never in the ledger).")] = False,
    quota_per_unit: QuotaPerUnitOption = None,
    db: DbOption = DEFAULT_DB_VALUE,
) -> None:
    """Pull the account's consumption log from the platform into the ledger, incrementally.

    Run it daily: each run asks only for rows since the last one (with 10 minutes of overlap;
    rows already in the ledger are skipped by call_id). When another process holds the ledger,
    rows are handed to the spool and loaded by that process.
    """
    from ingest.platform import save_token
    from ingest.sync import sync_now

    settings = platform_settings(db, platform, token, user_id, quota_per_unit)
    if remember_token:
        if not token:
            raise typer.BadParameter("--save-token needs --token", param_hint="--save-token")
        console().print(f"token kept in {save_token(db, settings.platform_url or '', token)}")
    with _progress() as bar:
        task = bar.add_task("syncing", total=None)

        def on_page(pages: int, rows: int, expected: int) -> None:
            bar.update(task, completed=rows, total=expected or None,
                       description=f"page {pages}")

        result = sync_now(db, settings, since=since, on_page=on_page)
    if result.status != "ok":
        console().print(f"[red]callmeter: sync failed: {result.message}[/red]")
        if result.rows_added:
            console().print(f"{result.rows_added} row(s) read before the failure were kept; "
                          "the next run asks for the same window again.")
        raise typer.Exit(2)
    typer.echo(result.summary())
    for note in result.notes:
        console().print(f"[yellow]note: {note}[/yellow]")
    if result.message:
        console().print(f"[yellow]{result.message}[/yellow]")
    for f in result.rejected_files:
        typer.echo(f"  rejected rows listed in {f}")


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console(), transient=True,
                    disable=not sys.stderr.isatty())


def register(app: typer.Typer) -> None:
    app.command("sync")(sync_command)

