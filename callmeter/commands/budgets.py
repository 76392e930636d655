"""``callmeter budgets``: monthly budgets per key, tag or in total; status and forecast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from callmeter.options import DEFAULT_DB_VALUE, DbOption, parse_money

budgets_app = typer.Typer(help="Monthly budgets per key, tag or in total; status and forecast.",
                          no_args_is_help=True)


@budgets_app.command("set")
def budgets_set(scope: Annotated[str, typer.Argument(help="key, tag or total")],
                target: Annotated[str, typer.Argument(help="key id/hint/label (a label-only key "
                                                      "as label:NAME too), tag name=value, "
                                                      "or 'all'")],
                monthly: Annotated[str, typer.Argument(help="Monthly amount.")],
                note: str | None = None, db: DbOption = DEFAULT_DB_VALUE) -> None:
    """Create or change one budget."""
    from ledger import open_ledger
    from pricing.budgets import SCOPES, Budget, set_budget

    if scope not in SCOPES:
        raise typer.BadParameter(f"choose {', '.join(SCOPES)}", param_hint="SCOPE")
    conn = open_ledger(db)
    try:
        set_budget(conn, Budget(scope, target, parse_money(monthly, "MONTHLY"), note))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        conn.close()


@budgets_app.command("delete")
def budgets_delete(scope: str, target: str, db: DbOption = DEFAULT_DB_VALUE) -> None:
    """Remove one budget."""
    from ledger import open_ledger
    from pricing.budgets import delete_budget

    conn = open_ledger(db)
    try:
        delete_budget(conn, scope, target)
    finally:
        conn.close()


@budgets_app.command("load")
def budgets_load(path: Annotated[Path, typer.Argument(help="CSV: scope,target,monthly[,note]")],
                 db: DbOption = DEFAULT_DB_VALUE) -> None:
    """Replace every budget with those in a CSV file."""
    from ledger import open_ledger
    from pricing.budgets import load_budgets_file

    conn = open_ledger(db)
    try:
        typer.echo(f"{load_budgets_file(conn, str(path))} budgets loaded from {path}")
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        conn.close()


@budgets_app.command("status")
def budgets_status(db: DbOption = DEFAULT_DB_VALUE) -> None:
    """This month per budget: spent, burn per day, projection, run-out date; month forecast."""
    from rich.console import Console
    from rich.table import Table

    from ledger import open_ledger
    from pricing.budgets import budget_status
    from pricing.forecast import month_forecast
    from pricing.frames import records
    from pricing.periods import as_of

    console = Console()
    when = as_of()  # one as-of for the budgets and the forecast (the dashboard's too)
    conn = open_ledger(db)
    try:
        st = budget_status(conn, when=when)
        fc = month_forecast(conn, when.month, when.day)
    finally:
        conn.close()
    table = Table(title=f"Budgets {when.month:%Y-%m} (complete days through {when.day})")
    for col in ("scope", "target", "monthly", "spent", "burn/day", "projected", "runs out"):
        table.add_column(col)
    for r in records(st):
        table.add_row(r["scope"], r["target"], f"{r['monthly']:,.2f}", f"{r['spent']:,.2f}",
                      f"{r['burn_per_day']:,.2f}", f"{r['projected']:,.2f}",
                      str(r["runs_out_on"] or "—"))
    console.print(table if len(st) else "No budgets set (callmeter budgets set|load).")
    console.print(f"Month-end forecast ({fc.method}): {fc.total:,.2f} "
                  f"({fc.level:.0%} interval {fc.low:,.2f} – {fc.high:,.2f}); "
                  f"spent {fc.spent:,.2f} through {fc.as_of}.")


def register(app: typer.Typer) -> None:
    app.add_typer(budgets_app, name="budgets")
