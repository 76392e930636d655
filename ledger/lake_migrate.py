"""``callmeter migrate``: move an embedded ledger file into a DuckLake lake, verified.

One transaction on the lake, under its writer lock: calls go in through the loader's anti-join
(so a re-run, or a lake that proxies already write to, gets no duplicates); ``prices`` and
``price_sheets`` are copied when the lake has no price sheet yet; the other tables get the rows
they lack. Before the commit, the calls that came from the file are totalled on both sides —
rows, requests, tokens, ``charged`` and ``cost`` — and any difference rolls everything back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from .connect import connect_file, open_ledger
from .errors import LedgerError
from .hooks import derived_tables
from .insert import insert_new_calls
from .schema import CALL_COLUMNS
from .sql import fetch_one, sql_literal

SOURCE = "_migrate_src"
PRICE_TABLES = ("prices", "price_sheets")
SKIP_TABLES = ("_migrations", "calls")

# Totals that must match for the calls the file holds (the lake may hold more calls).
TOTALS_SQL = """
SELECT count(*) AS calls, coalesce(sum(requests), 0) AS requests,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       sum(charged) AS charged, sum(cost) AS cost, count(cost) AS priced
FROM {view} WHERE call_id IN (SELECT call_id FROM {source}.calls)
"""


@dataclass
class MigrateResult:
    calls_in_file: int = 0
    inserted: int = 0
    already_in_lake: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    prices_copied: bool = False
    file_totals: dict[str, object] = field(default_factory=dict)
    lake_totals: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _totals(conn: duckdb.DuckDBPyConnection, view: str) -> dict[str, object]:
    cur = conn.execute(TOTALS_SQL.format(view=view, source=SOURCE))
    names = [d[0] for d in cur.description]
    return dict(zip(names, fetch_one(cur), strict=True))


def _tables(conn: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
        "AND NOT temporary ORDER BY 1", [catalog]).fetchall()]


def _columns(conn: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ? "
        "ORDER BY column_index", [catalog, table]).fetchall()]


def _copy_table(conn: duckdb.DuckDBPyConnection, table: str, lake_tables: list[str]) -> int:
    if table not in lake_tables:
        return int(fetch_one(conn.execute(
            f'CREATE TABLE "{table}" AS SELECT * FROM {SOURCE}."{table}"'))[0])
    lake_cols = set(_columns(conn, "lake", table))
    cols = ", ".join(f'"{c}"' for c in _columns(conn, SOURCE, table) if c in lake_cols)
    return int(fetch_one(conn.execute(
        f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM {SOURCE}."{table}" '
        f'EXCEPT SELECT {cols} FROM "{table}"'))[0])


def _copy(conn: duckdb.DuckDBPyConnection, result: MigrateResult) -> None:
    cols = ", ".join(CALL_COLUMNS)
    result.inserted = insert_new_calls(conn, f"SELECT {cols} FROM {SOURCE}.calls")
    result.already_in_lake = result.calls_in_file - result.inserted
    lake_tables = _tables(conn, "lake")
    lake_has_prices = fetch_one(conn.execute("SELECT count(*) FROM price_sheets"))[0] > 0
    for table in _tables(conn, SOURCE):
        if table in SKIP_TABLES or table in derived_tables():
            continue  # derived tables (rollups) are the lake's own, kept current by its hooks
        if table in PRICE_TABLES and lake_has_prices:
            continue
        result.tables[table] = _copy_table(conn, table, lake_tables)
    result.prices_copied = not lake_has_prices
    if lake_has_prices:
        result.notes.append("the lake already had a price sheet; it was kept")


def _check(result: MigrateResult) -> None:
    if result.prices_copied:
        same = result.file_totals == result.lake_totals
    else:  # another sheet prices the lake: compare what does not depend on prices
        keep = ("calls", "requests", "input_tokens", "output_tokens", "charged")
        same = all(result.file_totals[k] == result.lake_totals[k] for k in keep)
    if not same:
        raise LedgerError(
            "migration rolled back: totals differ between the file and the lake "
            f"(file {result.file_totals}, lake {result.lake_totals})")


def migrate_to_lake(source: str | Path, lake_db: str, data_path: str | None = None
                    ) -> MigrateResult:
    """Copy the ledger file ``source`` into the lake ``lake_db``; verify; commit or roll back."""
    source = Path(source).expanduser()
    if not source.is_file():
        raise LedgerError(f"{source}: no such ledger file")
    open_ledger(str(source)).close()  # bring the file's schema up to date first
    probe = connect_file(str(source), read_only=True)  # fails clearly if another process holds it
    probe.close()
    conn = open_ledger(lake_db, data_path=data_path)
    result = MigrateResult()
    try:
        conn.execute(f"ATTACH {sql_literal(source.resolve())} AS {SOURCE} (READ_ONLY)")
        result.calls_in_file = int(fetch_one(
            conn.execute(f"SELECT count(*) FROM {SOURCE}.calls"))[0])
        result.file_totals = _totals(conn, f"{SOURCE}.priced_calls")
        conn.execute("BEGIN TRANSACTION")
        try:
            _copy(conn, result)
            result.lake_totals = _totals(conn, "priced_calls")
            _check(result)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return result
