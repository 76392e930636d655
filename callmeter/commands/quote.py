"""``callmeter quote``: what a planned workload would cost, per token, per request, on cheaper
models, with the break-even."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from callmeter.options import DEFAULT_DB_VALUE, DbOption
from ledger import LedgerError, data_file, is_lake_target
from pricing.sheet import DEFAULT_SHEET

if TYPE_CHECKING:
    import duckdb
    from rich.console import Console

    from pricing.quote import Quote



def console() -> Console:
    """rich's console, made when a command prints (rich is not imported at start-up)."""
    from rich.console import Console

    return Console()


@contextmanager
def _prices(db: str, sheet: Path | None) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
    """A connection whose ``prices`` table prices the quote, and where those prices came from:
    ``--prices`` FILE, else the ledger's loaded sheet, else the shipped data/prices.csv."""
    from ledger import open_ledger
    from pricing import latest_sheet, load_prices

    if sheet is None and (is_lake_target(db) or Path(db).exists()):
        try:
            conn = open_ledger(db, read_only=True)
        except LedgerError:
            conn = None  # held by the dashboard, or not a ledger: the sheet file will do
        if conn is not None:
            loaded = latest_sheet(conn)
            if loaded is not None:
                try:
                    yield conn, f"prices loaded in {db} ({loaded.sheet})"
                finally:
                    conn.close()
                return
            conn.close()
    path = data_file(sheet or DEFAULT_SHEET)
    conn = open_ledger(":memory:")
    try:
        load_prices(conn, path)
        yield conn, f"price sheet {path}"
    finally:
        conn.close()


def _money(value: Decimal | None, places: str = "0.000001") -> str:
    return "unpriced" if value is None else f"{value.quantize(Decimal(places)):,}"


def _print(q: Quote, source: str) -> None:
    from rich.table import Table

    w = q.workload
    table = Table(title=f"{w.calls:,} calls of {w.model}: {w.input_tokens:,} in "
                  f"({w.cached_share:.0%} cached, {w.cache_write_share:.0%} written to the "
                  f"cache) / {w.output_tokens:,} out each "
                  f"[{q.currency or '?'}]")
    for col in ("option", "model", "billing", "total", "per call"):
        table.add_column(col, justify="right" if col in ("total", "per call") else "left")
    for o in q.options:
        table.add_row(o.group, o.model, f"per {o.billing_mode}", _money(o.cost, "0.01"),
                      _money(o.per_call))
    console().print(table)
    be = q.break_even
    if be is not None:
        console().print(f"Break-even for {be['base_model']}: {be['break_even_tokens']:,} tokens "
                      f"per call at this input/output mix (per request is cheaper above it); "
                      f"for this workload {be['cheaper_mode']} billing saves "
                      f"{_money(be['saving'], '0.01')}.")
    for note in q.notes:
        console().print(f"[yellow]{note}[/yellow]")
    console().print(f"Prices: {source}.")


def quote_command(
    model: Annotated[str, typer.Option(help="Model as you would call it (-c: per request).")],
    calls: Annotated[int, typer.Option(help="Number of calls planned.")],
    input_tokens: Annotated[int, typer.Option("--input", help="Input tokens per call.")],
    output_tokens: Annotated[int, typer.Option("--output", help="Output tokens per call.")],
    cached_share: Annotated[str, typer.Option(help="Share of input tokens served from the "
                                              "prompt cache, 0 to 1.")] = "0",
    cache_write_share: Annotated[str, typer.Option(help="Share of input tokens written to the "
                                                   "prompt cache (Anthropic bills 1.25x "
                                                   "input), 0 to 1.")] = "0",
    cache_write_long_share: Annotated[str, typer.Option(
        help="Of which written with the longer retention (Anthropic's 1-hour cache, 2x "
             "input), 0 to 1.")] = "0",
    on: Annotated[str | None, typer.Option(help="Price as of this date (YYYY-MM-DD); "
                                           "default today (UTC).")] = None,
    prices: Annotated[Path | None, typer.Option(help="Price sheet to use; default the "
                                                "ledger's loaded prices, else "
                                                "data/prices.csv.")] = None,
    models: Annotated[Path | None, typer.Option(
        help="Model families and tiers. Default: the shipped data/models.csv.",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    db: DbOption = DEFAULT_DB_VALUE,
) -> None:
    """Price a planned workload per token, per request and on cheaper-model candidates, with
    the break-even tokens per call, from the same pricing as the ledger's calls."""
    import duckdb

    from pricing import PricingError
    from pricing.quote import Workload, quote
    from pricing.recommend import MODELS_CSV, load_models

    try:
        share, write, write_long = (Decimal(v) for v in (cached_share, cache_write_share,
                                                          cache_write_long_share))
        day = date.fromisoformat(on) if on else None
    except (InvalidOperation, ValueError) as exc:
        raise typer.BadParameter("--cached-share and --cache-write[-long]-share want 0..1, "
                                 f"--on YYYY-MM-DD ({exc})") from None
    work = Workload(model, calls, input_tokens, output_tokens, share, day, write, write_long)
    try:
        with _prices(db, prices) as (conn, source):
            q = quote(conn, work, load_models(str(data_file(models or MODELS_CSV))))
    except (ValueError, PricingError, duckdb.Error) as exc:
        raise typer.BadParameter(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(_as_dict(q, source), indent=2, default=str))
    else:
        _print(q, source)


def _as_dict(q: Quote, source: str) -> dict[str, Any]:
    w = q.workload
    return {"workload": {**w.__dict__, "cached_tokens": w.cached_tokens,
                         "cache_write_tokens": w.cache_write_tokens,
                         "cache_write_long_tokens": w.cache_write_long_tokens},
            "currency": q.currency, "prices": source,
            "options": [o.__dict__ for o in q.options], "break_even": q.break_even,
            "notes": q.notes}


def register(app: typer.Typer) -> None:
    app.command("quote")(quote_command)
