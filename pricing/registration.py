"""``pricing.install()``: register pricing's steps with the ledger core, once per process.

The ledger core sits below pricing and never imports it. Pricing's migrations, the priced insert
(each new call's cost memo filled on the way in) and the rollup append after a load reach the
core through its registration points (``ledger.migrations.register``, ``ledger.hooks``). Every
entry point calls this before it opens a ledger: the CLI (``callmeter.cli.main``), the dashboard
(``dashboard/app.py``) and the tests' fixtures. A ledger opened without it is refused
(``ledger.migrations.check_complete``), so a forgotten call cannot leave a ledger half-built.

This module imports only SQL and DuckDB (no pandas), so ``callmeter load`` starts fast.
"""

from __future__ import annotations

from ledger import derive_tables, on_calls_added, register_migration, set_insert_builder

from . import rollup
from .memo import priced_insert_sql, sheet_has_rows
from .schema import MIGRATIONS


def install() -> None:
    """Register pricing's migrations and hooks with the ledger core (idempotent)."""
    for step in MIGRATIONS:
        register_migration(step.__name__, step)
    # with a sheet the insert joins the price periods, which reorders rows (DuckDB 1.5.5)
    set_insert_builder(priced_insert_sql, keeps_order=lambda conn: not sheet_has_rows(conn))
    on_calls_added(rollup.append_new_calls)
    derive_tables(*rollup.TABLES, rollup.STATE)
