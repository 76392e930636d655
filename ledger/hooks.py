"""Where a layer above the ledger core adds its steps to the core's work.

The core (this package) imports nothing of callmeter's above it. When it must run a step that
belongs higher up, the higher layer registers the step here, once, before any ledger opens
(``pricing.install()`` does; every entry point calls it): the way llm collects migrations with
``MIGRATIONS.append`` and datasette's plugins register hooks.

- :func:`set_insert_builder`: how new calls are written into ``calls`` (pricing fills the cost
  memo on the way in). Without one, a plain ``INSERT`` is used.
- :func:`on_calls_added`: steps run after a load added calls (pricing appends to its rollups).
- :func:`derive_tables`: tables built from ``calls`` that a copy between ledgers must not copy
  (``callmeter migrate``); they are brought up to date by the hooks above instead.

Migrations have their own registration point: :func:`ledger.migrations.register`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # hints only: `callmeter proxy` installs pricing and never loads DuckDB
    import duckdb

InsertBuilder = Callable[[str, str, "duckdb.DuckDBPyConnection | None"], str]
"""``(new_rows_sql, columns, conn) -> INSERT statement`` adding those rows to ``calls``; ``conn``
(when given) is the connection the statement will run on, so a builder can pick a cheaper
statement for the ledger's state (pricing: no price sheet, nothing to join). The statement ends
with its ``SELECT … FROM (new_rows_sql)``, so a caller may append ``ORDER BY`` a column of the
new rows (:func:`ledger.insert.in_rowid_order` does)."""

KeepsOrder = Callable[["duckdb.DuckDBPyConnection"], bool]
"""Whether the registered builder's statement, on this ledger, inserts the new rows in their
order (a plain insert streams them; a join may reorder them)."""

CallsAdded = Callable[["duckdb.DuckDBPyConnection"], object]
"""A step run after calls were added (its result is ignored)."""


def plain_insert_sql(new_rows_sql: str, columns: str,
                     conn: duckdb.DuckDBPyConnection | None = None) -> str:
    """``INSERT INTO calls`` of ``new_rows_sql`` (the ``columns`` given), nothing derived."""
    return f"INSERT INTO calls ({columns}) SELECT {columns} FROM ({new_rows_sql})"


def _streams(conn: duckdb.DuckDBPyConnection) -> bool:
    return True


_insert_builder: InsertBuilder = plain_insert_sql
_keeps_order: KeepsOrder = _streams
_calls_added: list[CallsAdded] = []
_derived: set[str] = set()


def set_insert_builder(builder: InsertBuilder, keeps_order: KeepsOrder = _streams) -> None:
    """Make ``builder`` write every new call (the last registration wins); ``keeps_order``
    says when its statement inserts rows in the order they come (see :data:`KeepsOrder`)."""
    global _insert_builder, _keeps_order
    _insert_builder, _keeps_order = builder, keeps_order


def insert_keeps_order(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether :func:`insert_sql` on ``conn`` keeps the new rows' order (rowids follow it)."""
    return _keeps_order(conn)


def insert_sql(new_rows_sql: str, columns: str,
               conn: duckdb.DuckDBPyConnection | None = None) -> str:
    """The statement that inserts ``new_rows_sql`` into ``calls``, as registered."""
    return _insert_builder(new_rows_sql, columns, conn)


def on_calls_added(step: CallsAdded) -> CallsAdded:
    """Run ``step(conn)`` after every load that added calls; registering twice runs it once."""
    if step not in _calls_added:
        _calls_added.append(step)
    return step


def calls_added(conn: duckdb.DuckDBPyConnection) -> None:
    """Run the registered steps (in registration order) after calls were added."""
    for step in list(_calls_added):
        step(conn)


def derive_tables(*names: str) -> None:
    """Declare ``names`` as built from ``calls``: never copied from one ledger to another."""
    _derived.update(names)


def derived_tables() -> frozenset[str]:
    return frozenset(_derived)
