"""``callmeter report``: a month's finance pack (csv, xlsx, json) or FOCUS rows."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from callmeter.options import DEFAULT_DB_VALUE, DbOption

if TYPE_CHECKING:
    from pricing.focus import FocusOptions

FORMATS = ("csv", "xlsx", "json", "focus")


def report_command(
    month: Annotated[str, typer.Option(help="Month to report, YYYY-MM (UTC).")],
    by: Annotated[str, typer.Option(help="key, model, day, tag (each name=value) or "
                                    "tag:NAME (one tag's values).")] = "key",
    fmt: Annotated[str, typer.Option("--format", help="csv, xlsx, json, or focus (FinOps "
                                     "FOCUS 1.2 rows; .parquet or CSV by --out's suffix).")
                   ] = "csv",
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout "
                                             "(required for xlsx).")] = None,
    grain: Annotated[str, typer.Option(help="focus: one row per key x model x UTC day or "
                                       "hour.")] = "day",
    provider: Annotated[str, typer.Option(help="focus: ProviderName and InvoiceIssuerName.")
                        ] = "LLM platform",
    account: Annotated[str, typer.Option(help="focus: BillingAccountId (and its name).")
                       ] = "default",
    db: DbOption = DEFAULT_DB_VALUE,
) -> None:
    """Finance report for a month: cost, calls and tokens by key, model, day or tag.

    Per-token vs per-request split, unpriced calls with their tokens, reconciliation against
    `charged` (csv: the chosen table with a TOTAL row; json and xlsx: everything, xlsx with a
    Summary sheet and one sheet per dimension). The total equals priced_calls to the cent.
    """
    from ledger import open_ledger
    from pricing.focus import FocusOptions
    from pricing.report import DIMENSIONS, finance_report, to_json, write_csv, write_xlsx

    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    if by not in DIMENSIONS and not (by.startswith("tag:") and len(by) > 4):
        raise typer.BadParameter("choose key, model, day, tag or tag:NAME", param_hint="--by")
    if fmt == "xlsx" and out is None:
        raise typer.BadParameter("xlsx needs --out FILE", param_hint="--out")
    if fmt == "focus":
        _focus_report(db, month, out, FocusOptions(provider=provider, billing_account_id=account,
                                                   grain=grain))
        return
    conn = open_ledger(db)
    try:
        rep = finance_report(conn, month, by, all_dimensions=fmt == "xlsx")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        conn.close()
    if fmt == "xlsx" and out is not None:
        write_xlsx(rep, out)
    elif fmt == "json":
        text = json.dumps(to_json(rep), indent=2)
        out.write_text(text + "\n") if out else typer.echo(text)
    elif out:
        with out.open("w", newline="", encoding="utf-8") as f:
            write_csv(rep, f)
    else:
        write_csv(rep, sys.stdout)
    if out:
        cost = rep.totals["cost"]  # None when every call of the month is unpriced
        total = "unpriced" if cost is None else f"{cost:.2f} {rep.currency}"
        typer.echo(f"wrote {out} ({len(rep.main)} rows, total cost {total}, "
                   f"{rep.totals['unpriced_calls']} unpriced calls)", err=True)


def _focus_report(db: str, month: str, out: Path | None, opts: FocusOptions) -> None:
    """``--format focus``: the month as FOCUS rows; totals and unpriced rows said on stderr."""
    from ledger import data_file, open_ledger
    from pricing import latest_sheet
    from pricing.focus import GRAINS, focus_export, write_focus
    from pricing.recommend import MODELS_CSV, load_models

    if opts.grain not in GRAINS:
        raise typer.BadParameter(f"choose {' or '.join(GRAINS)}", param_hint="--grain")
    models = load_models(str(data_file(MODELS_CSV)))
    opts = replace(opts, publishers={m: r["provider"] for m, r in models.items()})
    conn = open_ledger(db)
    try:
        sheet = latest_sheet(conn)
        if sheet is not None:
            opts = replace(opts, currency=sheet.currency)
        export = focus_export(conn, month, opts)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        conn.close()
    write_focus(export, out, sys.stdout)
    note = (f"{len(export.rows)} FOCUS rows ({export.adjustment_rows} of refunds, settlements, "
            f"fees, billed lines), ListCost {export.list_cost:.2f}, BilledCost "
            f"{export.billed_cost:.2f}")
    if out:
        note = f"wrote {out} ({note})"
    typer.echo(note, err=True)
    if export.unpriced_calls:
        typer.secho(f"{export.unpriced_calls} calls in {export.unpriced_rows} rows have no price: "
                    "marked x_Unpriced=true and 'UNPRICED' in ChargeDescription, with 0 in "
                    "the cost columns (FOCUS allows no null cost); add their models to the "
                    "price sheet.", fg="yellow", err=True)



def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
