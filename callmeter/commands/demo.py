"""``callmeter demo``: a realistic synthetic history, priced, then the dashboard on it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from callmeter.commands.dashboard import HostOption, PortOption, serve
from callmeter.options import DEFAULT_DB_VALUE, DbOption
from ledger import CallmeterError

if TYPE_CHECKING:
    import duckdb


def _parse_end(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        end = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("want YYYY-MM-DD or YYYY-MM-DDTHH:MM", param_hint="--end"
                                 ) from None
    return end if end.tzinfo else end.replace(tzinfo=UTC)


def _load_prices(conn: duckdb.DuckDBPyConnection, db: str) -> str:
    """Make the shipped data/prices.csv the ledger's price sheet, unless it already has one."""
    from ledger import data_file
    from pricing import DEFAULT_SHEET, PricingError, latest_sheet, load_prices, unpriced_models

    current = latest_sheet(conn)
    if current is not None:
        return f"prices: keeping the ledger's sheet {current.sheet} (loaded {current.loaded_at:%F})"
    sheet = data_file(DEFAULT_SHEET)
    if not sheet.is_file():
        return f"prices not loaded: {DEFAULT_SHEET} not found; see `callmeter prices load`"
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
    from ingest.demo import build_demo
    from ledger import fetch_one, fingerprinter_for, open_ledger

    conn = open_ledger(db)
    try:
        real = fetch_one(conn.execute("SELECT count(*) FROM calls WHERE source <> 'demo'"))[0]
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
    app.command("demo")(demo_command)
