"""``callmeter import``: log files into the ledger (or the spool, when the ledger is held)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

from callmeter.options import DEFAULT_DB_VALUE, DataPathOption, DbOption, QuotaPerUnitOption


def console() -> Console:
    """rich's console, made when a command prints (rich is not imported at start-up)."""
    from rich.console import Console

    return Console(stderr=True)


def _error(message: str) -> None:
    from rich.markup import escape

    console().print(f"[red]{escape(message)}[/red]", soft_wrap=True, highlight=False)


def _parse_map(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        theirs, sep, ours = pair.partition("=")
        if not sep or not theirs or not ours:
            raise typer.BadParameter(f"--map wants their_col=our_col, got {pair!r}")
        out[theirs.strip()] = ours.strip()
    return out


def import_command(
    paths: Annotated[list[Path], typer.Argument(
        help="Log files to import: .gz and .zip are read inside, a folder stands for its files.",
        show_default=False)],
    fmt: Annotated[str, typer.Option("--format", "-f",
                                     help="auto (detect from content) or one of: otlp, "
                                     "newapi, openai-usage, litellm, openai, csv.")] = "auto",
    timezone: Annotated[str, typer.Option(help="Timezone of times written without an offset.")
                        ] = "UTC",
    column_map: Annotated[list[str], typer.Option("--map", help="csv: their_col=our_col "
                                                  "(repeatable).")] = [],  # noqa: B006
    quota_per_unit: QuotaPerUnitOption = None,
    encoding: Annotated[str | None, typer.Option(
        help="The files' text encoding (e.g. gb18030, cp1252); default: UTF-8, else detected."
    )] = None,
    recursive: Annotated[bool, typer.Option(
        "--recursive", "-r", help="For a folder, also import the files in its sub-folders."
    )] = False,
    db: DbOption = DEFAULT_DB_VALUE,
    data_path: DataPathOption = None,
) -> None:
    """Import log files into the ledger; prints read / imported / duplicate / rejected counts.

    Re-importing a file (or an overlapping later export) adds nothing. Bad rows are listed in a
    rejected-rows file beside the ledger and the rest of the file goes in. Exits non-zero only
    when nothing could be read.
    """
    import duckdb

    from callmeter.progress import with_query_progress
    from ingest.importers import FORMATS, ImportOptions
    from ingest.imports import import_paths, unreadable
    from ledger import CallmeterError, fingerprinter_for, settings_from_env, spool_dir, spool_fate

    settings = settings_from_env(db)
    options = ImportOptions(timezone=timezone, quota_per_unit=quota_per_unit,
                            column_map=_parse_map(column_map), encoding=encoding,
                            fingerprinter=fingerprinter_for(db, settings))
    if fmt != "auto" and fmt not in FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r}; choose auto or one of "
                                 + ", ".join(FORMATS), param_hint="--format")
    around = with_query_progress if sys.stderr.isatty() else None
    results = []
    for path in paths:
        try:
            res, locked = import_paths(db, [path], fmt, options, around=around,
                                       data_path=data_path, recursive=recursive)
        except (CallmeterError, duckdb.Error, OSError, UnicodeError) as exc:
            # one unreadable file must not stop the others
            _error(unreadable(str(path), exc))
            continue
        results.extend(res)
        if locked:
            console().print(f"[yellow]{locked}. Rows were handed to the spool; "
                          f"{spool_fate(locked, spool_dir(db))}.[/yellow]")
    for r in results:
        if r.error:
            _error(r.error)
            continue
        typer.echo(r.summary())
        if r.skipped_by:
            typer.echo("  skipped: " + ", ".join(f"{k} {v}" for k, v in r.skipped_by.items()))
        for note in r.notes:
            typer.echo(f"  note: {note}")
        for line, reason in r.rejections[:10]:
            typer.echo(f"  rejected {r.file}:{line}: {reason}")
        if r.rejected > 10:
            typer.echo(f"  … {r.rejected - 10} more")
        if r.rejected_file:
            typer.echo(f"  rejected rows listed in {r.rejected_file}")
    if not results or all(r.read == 0 for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
