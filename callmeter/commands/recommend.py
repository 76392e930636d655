"""``callmeter recommend``: the recommendations with their money; alerts with ``--alerts``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from callmeter.options import DEFAULT_DB_VALUE, DbOption, parse_day, parse_money

if TYPE_CHECKING:
    from pricing.recommend import Recommendation

def _print_recommendations(recs: list[Recommendation], since: date, until: date) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
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
    models: Annotated[Path | None, typer.Option(
        help="Model families and tiers. Default: the shipped data/models.csv.",
        show_default=False)] = None,
    top: Annotated[int, typer.Option(help="Show the N largest (0: all).")] = 10,
    db: DbOption = DEFAULT_DB_VALUE,
) -> None:
    """The recommendations, with the money, the evidence and the caveat; alerts with --alerts."""
    from rich.console import Console

    from ledger import data_file, open_ledger, settings_from_env
    from pricing.budgets import alerts, send_alerts
    from pricing.recommend import MODELS_CSV, Thresholds, recommend

    console = Console()
    today = datetime.now(UTC).date()
    start = parse_day(since, today - timedelta(days=28))
    end = parse_day(until, today + timedelta(days=1))
    th = Thresholds(min_saving=parse_money(min_saving, "--min-saving"))
    conn = open_ledger(db)
    try:
        recs = recommend(conn, start, end, th, models_path=str(data_file(models or MODELS_CSV)),
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


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_command)
