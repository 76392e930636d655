"""``callmeter report``, ``callmeter recommend`` and ``callmeter budgets``: money to act on."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from callmeter.options import DEFAULT_DB_VALUE, DbOption
from ingest.config import data_file, settings_from_env
from ingest.ledger import open_ledger
from pricing import latest_sheet
from pricing.budgets import (
    SCOPES,
    Budget,
    alerts,
    budget_status,
    delete_budget,
    load_budgets_file,
    send_alerts,
    set_budget,
)
from pricing.focus import GRAINS, FocusOptions, focus_export, write_focus
from pricing.forecast import month_forecast
from pricing.recommend import MODELS_CSV, Thresholds, load_models, recommend
from pricing.report import DIMENSIONS, finance_report, to_json, write_csv, write_xlsx

console = Console()
FORMATS = ("csv", "xlsx", "json", "focus")


def _date(value: str | None, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"want YYYY-MM-DD, got {value!r}") from exc


def _money(value: str, name: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise typer.BadParameter(f"{name} wants an amount, got {value!r}") from exc


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
    if fmt == "xlsx":
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
        typer.echo(f"wrote {out} ({len(rep.main)} rows, total cost {rep.totals['cost']:.2f}, "
                   f"{rep.totals['unpriced_calls']} unpriced calls)", err=True)


def _focus_report(db: str, month: str, out: Path | None, opts: FocusOptions) -> None:
    """``--format focus``: the month as FOCUS rows; totals and unpriced rows said on stderr."""
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


def _print_recommendations(recs, since: date, until: date) -> None:
    if not recs:
        console.print(f"No action worth taking for {since} to {until} at these thresholds.")
        return
    table = Table(title=f"Recommendations {since} to {until} (UTC)", show_lines=True)
    for col in ("#", "saving", "action", "evidence", "caveat"):
        table.add_column(col, overflow="fold")
    for i, r in enumerate(recs, 1):
        who = r.key_hint or r.key_id or ""
        table.add_row(str(i), f"{r.saving:,.2f}" if r.saving is not None else "—",
                      f"{who}: {r.action}" + (f" [{r.tag}]" if r.tag else ""),
                      r.evidence, f"{r.caveat} (confidence {r.confidence})")
    console.print(table)


def recommend_command(
    since: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD, UTC); default "
                                              "28 days ago.")] = None,
    until: Annotated[str | None, typer.Option(help="Day after the last; default tomorrow.")
                     ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    show_alerts: Annotated[bool, typer.Option("--alerts", help="List alerts (budgets, "
                                              "spikes, new keys, auth failures) and send new "
                                              "ones to the webhook.")] = False,
    webhook: Annotated[str | None, typer.Option(help="Alert webhook URL; default "
                                                "$CALLMETER_ALERT_WEBHOOK.")] = None,
    by_tag: Annotated[bool, typer.Option(help="Billing-variant workloads per tag too.")
                      ] = False,
    min_saving: Annotated[str, typer.Option(help="Smallest saving worth naming.")] = "5",
    models: Annotated[Path, typer.Option(help="Model families and tiers.")] = Path(MODELS_CSV),
    top: Annotated[int, typer.Option(help="Show the N largest (0: all).")] = 10,
    db: DbOption = DEFAULT_DB_VALUE,
) -> None:
    """The recommendations, with the money, the evidence and the caveat; alerts with --alerts."""
    today = datetime.now(UTC).date()
    start = _date(since, today - timedelta(days=28))
    end = _date(until, today + timedelta(days=1))
    th = Thresholds(min_saving=_money(min_saving, "--min-saving"))
    conn = open_ledger(db)
    try:
        recs = recommend(conn, start, end, th, models_path=str(data_file(models)),
                         by_tag=by_tag)
        recs = recs[:top] if top else recs
        found = alerts(conn, min(today, end)) if show_alerts else []
        url = webhook or settings_from_env(db).alert_webhook_url
        sent = send_alerts(conn, found, url) if (found and url) else []
    finally:
        conn.close()
    if as_json:
        doc = {"since": str(start), "until": str(end),
               "recommendations": [r.to_dict() for r in recs]}
        if show_alerts:
            doc["alerts"] = [a.to_dict() for a in found]
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    _print_recommendations(recs, start, end)
    if show_alerts:
        for a in found:
            colour = {"critical": "red", "warning": "yellow"}.get(a.severity, "cyan")
            console.print(f"[{colour}]{a.severity}[/{colour}] {a.kind}: {a.message}")
        if not found:
            console.print("No alerts.")
        if url:
            console.print(f"{len(sent)} new alert(s) sent to the webhook.")


budgets_app = typer.Typer(help="Monthly budgets per key, tag or in total; status and forecast.",
                          no_args_is_help=True)


@budgets_app.command("set")
def budgets_set(scope: Annotated[str, typer.Argument(help="key, tag or total")],
                target: Annotated[str, typer.Argument(help="key id/hint/label, tag name=value, "
                                                      "or 'all'")],
                monthly: Annotated[str, typer.Argument(help="Monthly amount.")],
                note: str | None = None, db: DbOption = DEFAULT_DB_VALUE) -> None:
    """Create or change one budget."""
    if scope not in SCOPES:
        raise typer.BadParameter(f"choose {', '.join(SCOPES)}", param_hint="SCOPE")
    conn = open_ledger(db)
    try:
        set_budget(conn, Budget(scope, target, _money(monthly, "MONTHLY"), note))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        conn.close()


@budgets_app.command("delete")
def budgets_delete(scope: str, target: str, db: DbOption = DEFAULT_DB_VALUE) -> None:
    """Remove one budget."""
    conn = open_ledger(db)
    try:
        delete_budget(conn, scope, target)
    finally:
        conn.close()


@budgets_app.command("load")
def budgets_load(path: Annotated[Path, typer.Argument(help="CSV: scope,target,monthly[,note]")],
                 db: DbOption = DEFAULT_DB_VALUE) -> None:
    """Replace every budget with those in a CSV file."""
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
    today = datetime.now(UTC).date()
    conn = open_ledger(db)
    try:
        st = budget_status(conn, today)
        fc = month_forecast(conn, today, today - timedelta(days=1))
    finally:
        conn.close()
    table = Table(title=f"Budgets {today:%Y-%m}")
    for col in ("scope", "target", "monthly", "spent", "burn/day", "projected", "runs out"):
        table.add_column(col)
    for r in st.to_dict("records"):
        table.add_row(r["scope"], r["target"], f"{r['monthly']:,.2f}", f"{r['spent']:,.2f}",
                      f"{r['burn_per_day']:,.2f}", f"{r['projected']:,.2f}",
                      str(r["runs_out_on"] or "—"))
    console.print(table if len(st) else "No budgets set (callmeter budgets set|load).")
    console.print(f"Month-end forecast ({fc.method}): {fc.total:,.2f} "
                  f"({fc.level:.0%} interval {fc.low:,.2f} – {fc.high:,.2f}); "
                  f"spent {fc.spent:,.2f} through {fc.as_of}.")


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
    app.command("recommend")(recommend_command)
    app.add_typer(budgets_app, name="budgets")
