"""Options every command shares, declared once. Their defaults come from the settings
(``ledger.config``): typer reads no environment variable itself."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from ledger import DEFAULT_DB, parse_quota_per_unit, settings_from_env


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)  # (typer's own click: compare by name)
    return source is not None and source.name != "DEFAULT"


def _db_value(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    """``--db`` when given, else ``$CALLMETER_DB`` (through the settings), else the default."""
    return value if _given(ctx, param.name or "db") else settings_from_env().db


def _data_path_value(ctx: typer.Context, param: typer.CallbackParam, value: str | None
                     ) -> str | None:
    return value if _given(ctx, param.name or "data_path") else settings_from_env().data_path


DbOption = Annotated[
    str,
    typer.Option(
        "--db", callback=_db_value,
        help="Ledger: a DuckDB file (parent folders are created) or a DuckLake target "
        "'ducklake:postgres:dbname=… host=…'. Default: $CALLMETER_DB, else "
        f"{DEFAULT_DB}.",
        show_default=False,
    ),
]
DEFAULT_DB_VALUE = DEFAULT_DB

DataPathOption = Annotated[
    str | None,
    typer.Option("--data-path", callback=_data_path_value, show_default=False,
                 help="DuckLake only: folder or s3:// prefix for the lake's Parquet files. "
                 "Default: $CALLMETER_DATA_PATH."),
]


def parse_day(value: str | None, default: date) -> date:
    """A ``YYYY-MM-DD`` flag, or ``default`` when not given."""
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"want YYYY-MM-DD, got {value!r}") from exc


def parse_money(value: str, name: str) -> Decimal:
    """An exact amount from a flag (never through a float)."""
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise typer.BadParameter(f"{name} wants an amount, got {value!r}") from exc


def _quota_value(ctx: typer.Context, param: typer.CallbackParam, value: str | None
                 ) -> Decimal | None:
    """``--quota-per-unit`` when given, else ``$CALLMETER_QUOTA_PER_UNIT`` (settings), else
    None (the platform is asked, or new-api's default is used and said)."""
    if not _given(ctx, param.name or "quota_per_unit"):
        return settings_from_env().quota_per_unit
    try:
        return parse_quota_per_unit(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


QuotaPerUnitOption = Annotated[
    Decimal | None,
    typer.Option("--quota-per-unit", "--quota-per-usd", callback=_quota_value,
                 parser=str, show_default=False,
                 help="The platform's quota units per US$1 (its GET /api/status "
                 "quota_per_unit). Default: $CALLMETER_QUOTA_PER_UNIT, else asked from the "
                 "platform, else new-api's 500000, and the summary says that this default "
                 "was used."),
]
