"""``callmeter sync`` and ``callmeter prices pull``: follow the platform's log and pricing page."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from callmeter.commands.prices import prices_group
from callmeter.options import DEFAULT_DB_VALUE, DbOption
from ingest.config import Settings, settings_from_env
from ingest.errors import LedgerLocked
from ingest.ledger import open_ledger
from ingest.platform import PlatformClient, load_token, save_token
from ingest.sync import read_state, sync_now

console = Console(stderr=True)

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
                      user_id: str | None) -> Settings:
    """Settings from the environment, the flags, and what the last sync remembered."""
    settings = settings_from_env(db)
    remembered = read_state(db)
    url = platform or settings.platform_url or remembered.get("platform")
    if not url:
        raise typer.BadParameter("give the platform's URL (or set CALLMETER_PLATFORM_URL)",
                                 param_hint="--platform")
    uid = user_id or settings.platform_user_id or remembered.get("user_id")
    return replace(settings, platform_url=url, platform_token=token or settings.platform_token,
                   platform_user_id=uid)


def sync_command(
    platform: PlatformOption = None,
    token: TokenOption = None,
    user_id: UserOption = None,
    since: Annotated[str | None, typer.Option(help="Start here (YYYY-MM-DD or ISO time, UTC) "
                                              "instead of where the last sync stopped.")] = None,
    remember_token: Annotated[bool, typer.Option(
        "--save-token", help="Keep --token for later runs (OS keyring, else a 0600 file beside "
        "the ledger; never in the ledger).")] = False,
    db: DbOption = DEFAULT_DB_VALUE,
) -> None:
    """Pull the account's consumption log from the platform into the ledger, incrementally.

    Run it daily: each run asks only for rows since the last one (with 10 minutes of overlap;
    rows already in the ledger are skipped by call_id). When another process holds the ledger,
    rows are handed to the spool and loaded by that process.
    """
    settings = platform_settings(db, platform, token, user_id)
    if remember_token:
        if not token:
            raise typer.BadParameter("--save-token needs --token", param_hint="--save-token")
        console.print(f"token kept in {save_token(db, settings.platform_url, token)}")
    with _progress() as bar:
        task = bar.add_task("syncing", total=None)

        def on_page(pages: int, rows: int, expected: int) -> None:
            bar.update(task, completed=rows, total=expected or None,
                       description=f"page {pages}")

        result = sync_now(db, settings, since=since, on_page=on_page)
    if result.status != "ok":
        console.print(f"[red]callmeter: sync failed: {result.message}[/red]")
        if result.rows_added:
            console.print(f"{result.rows_added} row(s) read before the failure were kept; "
                          "the next run asks for the same window again.")
        raise typer.Exit(2)
    typer.echo(result.summary())
    for note in result.notes:
        console.print(f"[yellow]note: {note}[/yellow]")
    if result.message:
        console.print(f"[yellow]{result.message}[/yellow]")
    for f in result.rejected_files:
        typer.echo(f"  rejected rows listed in {f}")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True,
                    disable=not sys.stderr.isatty())


def _fmt(value) -> str:
    return "—" if value is None else format(value.normalize(), "f")


def pull_command(
    platform: PlatformOption = None,
    token: TokenOption = None,
    user_id: UserOption = None,
    group: Annotated[str | None, typer.Option(help="Price for this group. Default: "
                                              "$CALLMETER_PLATFORM_GROUP, else the account's "
                                              "own group.")] = None,
    group_ratio: Annotated[str | None, typer.Option(
        "--group-ratio", help="The group's ratio as your console shows it. Default: the ratio "
        "your newest calls in the group were charged at, else the pricing page's.",
        show_default=False)] = None,
    sheet: Annotated[Path, typer.Option(help="The price sheet to add rows to.")
                     ] = Path("data/prices.csv"),
    apply: Annotated[bool, typer.Option("--apply", help="Write the new and changed prices to "
                                        "the sheet, dated today, and load it.")] = False,
    db: DbOption = DEFAULT_DB_VALUE,
) -> None:
    """Read the platform's pricing page and show how it differs from the loaded prices.

    With --apply, new and changed prices are added to the sheet with today's effective_from
    (older rows stay: calls before today keep the prices then in force) and the sheet is loaded.
    """
    from pricing import platform_sheet as ps

    settings = platform_settings(db, platform, token, user_id)
    try:
        ratio = Decimal(group_ratio) if group_ratio else None
    except InvalidOperation:
        raise typer.BadParameter(f"{group_ratio!r} is not a number",
                                 param_hint="--group-ratio") from None
    today = datetime.now(UTC).date()
    current, ledger_note = _current(db, sheet, today)
    tok = settings.platform_token or load_token(db, settings.platform_url)
    with PlatformClient(settings.platform_url, tok, settings.platform_user_id) as client:
        result = ps.pull_prices(client, group=group or settings.platform_group,
                                group_ratio=ratio, quota_per_unit=settings.quota_per_unit,
                                current=current, today=today)
    basis = f" from {result.ratio_basis}" if result.ratio_basis else ""
    typer.echo(f"{result.platform}: group {result.group} (ratio {_fmt(result.group_ratio)}"
               f"{basis}; {_fmt(result.quota_per_unit)} quota per US$1), prices per 1M tokens "
               "/ per call in USD")
    if ledger_note:
        console.print(f"[yellow]{ledger_note}[/yellow]")
    for c in result.changes:
        if c.kind == "same":
            continue
        cols = [k for k in ("input", "cached_input", "output", "request")
                if c.old.get(k) is not None or c.new.get(k) is not None]
        detail = ", ".join(f"{k} {_fmt(c.old.get(k))} → {_fmt(c.new.get(k))}" for k in cols)
        typer.echo(f"  {c.kind:<15} {c.model}: {detail}")
    counts = {k: len(result.of_kind(k)) for k in ("new", "changed", "same", "not-on-platform")}
    typer.echo("  " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for w in result.warnings:
        console.print(f"[yellow]  {w}[/yellow]")
    if not apply:
        if result.refusal:
            console.print(f"[yellow]These prices are not derived: {result.refusal}.[/yellow]")
        elif counts["new"] or counts["changed"]:
            typer.echo("Run again with --apply to add these prices to the sheet.")
        return
    if result.refusal:
        console.print(f"[red]callmeter: nothing written: {result.refusal}.[/red]")
        raise typer.Exit(2)
    source = f"platform pricing page {result.platform}{ps.PRICING_PATH}, group {result.group}"
    written = ps.apply_changes(sheet, result.changes, current, today, source)
    typer.echo(f"{sheet}: {written} row(s) added with effective_from {today}")
    if written:
        typer.echo(ps.load_into_ledger(db, sheet))


def _current(db: str, sheet: Path, today) -> tuple[dict, str | None]:
    """Prices in force today: the ledger's loaded prices, or the sheet when the ledger is held."""
    from pricing import platform_sheet as ps

    try:
        conn = open_ledger(db)
    except LedgerLocked as exc:
        return ps.current_prices_from_sheet(sheet, today), (
            f"{exc}; compared with {sheet} instead of the loaded prices")
    try:
        return ps.current_prices(conn, today), None
    finally:
        conn.close()


def register(app: typer.Typer) -> None:
    app.command("sync")(sync_command)
    prices_group(app).command("pull")(pull_command)

