"""``callmeter prices``: check and load a price sheet; pull prices from the platform's page."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from callmeter.commands.sync import PlatformOption, TokenOption, UserOption, platform_settings
from callmeter.options import DEFAULT_DB_VALUE, DbOption, QuotaPerUnitOption
from ledger import LedgerError, LedgerLocked, data_file, is_lake_target
from pricing.sheet import DEFAULT_SHEET

if TYPE_CHECKING:
    import duckdb
    from rich.console import Console

    from pricing import PriceSheet



def console() -> Console:
    """rich's console, made when a command prints (rich is not imported at start-up)."""
    from rich.console import Console

    return Console(stderr=True)

SheetArgument = Annotated[Path, typer.Argument(
    help="Price sheet (CSV).", show_default=True)]


def _open_ledger(db: str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    from ledger import open_ledger

    return open_ledger(db, read_only=read_only)


def _print_problems(sheet: PriceSheet) -> None:
    for problem in sheet.problems:
        typer.secho(str(problem), fg="red" if problem.severity == "error" else "yellow",
                    err=True)


def _read(path: Path) -> PriceSheet:
    from pricing import read_sheet

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
        conn = _open_ledger(db, read_only=True)
    except LedgerError as exc:
        typer.echo(f"models without a price not listed: {exc}")
        return
    from pricing import unpriced_by_sheet

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
    from pricing import load_prices, unpriced_models

    conn = _open_ledger(db)
    try:
        loaded = load_prices(conn, parsed)
        missing = unpriced_models(conn)
    finally:
        conn.close()
    typer.echo(f"loaded {loaded.rows} prices for {loaded.models} models ({loaded.currency}) "
               f"from {loaded.sheet} (sha256 {loaded.sha256[:12]}…) into {db}")
    for row in missing.itertuples():
        typer.echo(f"  unpriced: {row.model:<40} {row.calls:>10,} calls  ({row.reason})")


def _fmt(value: Decimal | None) -> str:
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
                     ] = Path(DEFAULT_SHEET),
    apply: Annotated[bool, typer.Option("--apply", help="Write the new and changed prices to "
                                        "the sheet, dated today, and load it.")] = False,
    quota_per_unit: QuotaPerUnitOption = None,
    db: DbOption = DEFAULT_DB_VALUE,
) -> None:
    """Read the platform's pricing page and show how it differs from the loaded prices.

    With --apply, new and changed prices are added to the sheet with today's effective_from
    (older rows stay: calls before today keep the prices then in force) and the sheet is loaded.
    """
    from ingest.platform import PlatformClient, load_token
    from pricing import platform_sheet as ps

    settings = platform_settings(db, platform, token, user_id, quota_per_unit)
    try:
        ratio = Decimal(group_ratio) if group_ratio else None
    except InvalidOperation:
        raise typer.BadParameter(f"{group_ratio!r} is not a number",
                                 param_hint="--group-ratio") from None
    today = datetime.now(UTC).date()
    current, ledger_note = _current(db, sheet, today)
    url = settings.platform_url or ""  # (platform_settings refuses to go on without one)
    tok = settings.platform_token or load_token(db, url)
    with PlatformClient(url, tok, settings.platform_user_id) as client:
        result = ps.pull_prices(client, group=group or settings.platform_group,
                                group_ratio=ratio, quota_per_unit=settings.quota_per_unit,
                                current=current, today=today)
    basis = f" from {result.ratio_basis}" if result.ratio_basis else ""
    typer.echo(f"{result.platform}: group {result.group} (ratio {_fmt(result.group_ratio)}"
               f"{basis}; {_fmt(result.quota_per_unit)} quota per US$1), prices per 1M tokens "
               "/ per call in USD")
    if ledger_note:
        console().print(f"[yellow]{ledger_note}[/yellow]")
    for c in result.changes:
        if c.kind == "same":
            continue
        cols = [k for k in ps.COMPARED if c.old.get(k) is not None or c.new.get(k) is not None]
        detail = ", ".join(f"{k} {_fmt(c.old.get(k))} → {_fmt(c.new.get(k))}" for k in cols)
        typer.echo(f"  {c.kind:<15} {c.model}: {detail}")
    counts = {k: len(result.of_kind(k)) for k in ("new", "changed", "same", "not-on-platform")}
    typer.echo("  " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for w in result.warnings:
        console().print(f"[yellow]  {w}[/yellow]")
    if not apply:
        if result.refusal:
            console().print(f"[yellow]These prices are not derived: {result.refusal}.[/yellow]")
        elif counts["new"] or counts["changed"]:
            typer.echo("Run again with --apply to add these prices to the sheet.")
        return
    if result.refusal:
        console().print(f"[red]callmeter: nothing written: {result.refusal}.[/red]")
        raise typer.Exit(2)
    source = f"platform pricing page {result.platform}{ps.PRICING_PATH}, group {result.group}"
    written = ps.apply_changes(sheet, result.changes, current, today, source)
    typer.echo(f"{sheet}: {written} row(s) added with effective_from {today}")
    if written:
        typer.echo(ps.load_into_ledger(db, sheet))


def _current(db: str, sheet: Path, today: date
             ) -> tuple[dict[str, dict[str, Decimal | None]], str | None]:
    """Prices in force today: the ledger's loaded prices, or the sheet when the ledger is held."""
    from pricing import platform_sheet as ps

    try:
        conn = _open_ledger(db)
    except LedgerLocked as exc:
        return ps.current_prices_from_sheet(sheet, today), (
            f"{exc}; compared with {sheet} instead of the loaded prices")
    try:
        return ps.current_prices(conn, today), None
    finally:
        conn.close()


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Price sheets: check, load, pull from the platform.",
                        no_args_is_help=True)
    app.add_typer(group, name="prices")
    group.command("check")(check_command)
    group.command("load")(load_command)
    group.command("pull")(pull_command)
