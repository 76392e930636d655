"""Options every command shares, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from ingest.config import DEFAULT_DB

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="CALLMETER_DB",
        help="Ledger: a DuckDB file (parent folders are created) or a DuckLake target "
        "'ducklake:postgres:dbname=… host=…'.",
        show_default=True,
    ),
]
DEFAULT_DB_VALUE = DEFAULT_DB

DataPathOption = Annotated[
    str | None,
    typer.Option("--data-path", envvar="CALLMETER_DATA_PATH",
                 help="DuckLake only: folder or s3:// prefix for the lake's Parquet files."),
]
