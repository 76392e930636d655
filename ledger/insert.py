"""Adding calls and adjustments to the ledger: only ids it does not hold yet, so re-adding is a
no-op. Every writer ends here (spool loader, importers, demo, ``callmeter migrate``).

How a new call is written is a hook (:func:`ledger.hooks.insert_sql`): pricing registers the
insert that fills each call's cost memo on the way in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb

from . import hooks
from .schema import ADJUSTMENT_COLUMNS, CALL_COLUMNS
from .sql import fetch_one


def _count(conn: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = fetch_one(conn.execute(sql))
    return int(row[0]) if row else 0


def id_census(conn: duckdb.DuckDBPyConnection, source_sql: str) -> tuple[int, bool]:
    """Rows of ``source_sql`` and whether every one carries a call_id that no other repeats:
    when so, :func:`insert_new_calls` can skip its per-id window (``dedupe_within=False``)."""
    row = fetch_one(conn.execute(
        f"SELECT count(*), count(*) = count(call_id) AND count(*) = count(DISTINCT call_id) "
        f"FROM ({source_sql})"))
    return (int(row[0]), bool(row[1])) if row else (0, True)


# A repeated id keeps its first row in the source. A window without an order picks any row of
# its partition, and a parallel scan makes that a different one from run to run (seen: the
# spool's 3rd record kept over its 1st); ``row_number() OVER ()`` numbers the rows in the
# source's order (DuckDB's streaming window keeps insertion order) at no measurable cost.
SOURCE_ORDER = "_source_order"
FIRST_PER_ID = (f"QUALIFY row_number() OVER (PARTITION BY src.{{id}} "
                f"ORDER BY src.{SOURCE_ORDER}) = 1")


def in_source_order(source_sql: str, numbered: bool = False) -> str:
    """``source_sql`` with each row's position in it, for :data:`FIRST_PER_ID`.

    ``numbered``: the source carries its own ``_source_order`` already (an importer's rows,
    numbered where they were staged, before any join could reorder them), kept as it is."""
    if numbered:
        return source_sql
    return f"SELECT *, row_number() OVER () AS {SOURCE_ORDER} FROM ({source_sql})"


def insert_new_calls(conn: duckdb.DuckDBPyConnection, source_sql: str,
                     params: Sequence[object] | Mapping[str, object] | None = None, *,
                     dedupe_within: bool = True, numbered: bool = False) -> int:
    """Insert rows of ``source_sql`` (contract columns) whose call_id is not yet in the ledger.

    The statement comes from the registered insert builder (pricing's prices each row on the
    way in). ``dedupe_within=False`` skips the per-id window when the caller knows the source
    has no repeated id (the slowest step on large files); ``numbered``: see
    :func:`in_source_order`.
    """
    cols = ", ".join(CALL_COLUMNS)
    once = ""
    if dedupe_within:
        source_sql = in_source_order(source_sql, numbered)
        once = FIRST_PER_ID.format(id="call_id")
    # An explicit ANTI JOIN: NOT EXISTS was planned as a delim join over a complex source
    # (every row buffered, its ids grouped, joined back), ~0.8 µs a row more
    new_rows = (f"SELECT {cols} FROM ({source_sql}) src "
                f"ANTI JOIN calls c ON c.call_id = src.call_id {once}")
    before = _count(conn, "SELECT count(*) FROM calls")
    conn.execute(hooks.insert_sql(new_rows, cols, conn), params or [])
    return _count(conn, "SELECT count(*) FROM calls") - before


# The rows an insert just added (rowid above the last one before it; rows added inside an open
# transaction number from 2^55 up) and those it must not keep: an id the ledger held before, or a
# repeat of an id earlier in the same insert (the first occurrence, lowest rowid, stays).
_NEW = "(SELECT rowid AS r, call_id FROM calls WHERE rowid > $last)"
_OLD_IDS = "(SELECT call_id FROM calls WHERE rowid <= $last)"
REPEATS_SQL = f"""
WITH n AS {_NEW}
SELECT (SELECT count(*) - count(DISTINCT call_id) FROM n)
     + (SELECT count(*) FROM n SEMI JOIN {_OLD_IDS} o ON o.call_id = n.call_id)
"""
DELETE_REPEATS_SQL = f"""
DELETE FROM calls WHERE rowid IN (
  SELECT r FROM (SELECT r, call_id, row_number() OVER (PARTITION BY call_id ORDER BY r) AS k
                 FROM {_NEW}) n
  WHERE k > 1 OR call_id IN {_OLD_IDS})
"""


def is_file_ledger(conn: object) -> bool:
    """A DuckDB file, not a lake (``open_ledger`` types a LakeConnection as a DuckDB one):
    only a file's rowids follow the insert, which :func:`insert_calls_then_drop_repeats`
    counts on."""
    return isinstance(conn, duckdb.DuckDBPyConnection)


def in_rowid_order(cols: str, source_sql: str, conn: duckdb.DuckDBPyConnection,
                   numbered: bool = False, first_wins: bool = True) -> str:
    """The insert of ``source_sql`` whose rows take rowids in the source's order.

    The repeat check keeps the lowest rowid of an id, so rowids must follow the source. A plain
    insert streams rows in order, but pricing's joins against a price sheet do not keep it
    (DuckDB 1.5.5: a 300k-record load put ~2,000 rows behind later ones and kept a replayed
    record over the first), nor do an importer's joins before it (``numbered``): then the
    insert orders by the source's position, a sort of the new rows (~+30% of a 1M-record load,
    so only when needed: not when no id repeats, ``first_wins=False``)."""
    if not first_wins or (not numbered and hooks.insert_keeps_order(conn)):
        return hooks.insert_sql(f"SELECT {cols} FROM ({source_sql}) src", cols, conn)
    rows = f"SELECT {cols}, {SOURCE_ORDER} FROM ({in_source_order(source_sql, numbered)}) src"
    return f"{hooks.insert_sql(rows, cols, conn)} ORDER BY {SOURCE_ORDER}"


def insert_calls_then_drop_repeats(conn: duckdb.DuckDBPyConnection, source_sql: str,
                                   numbered: bool = False,
                                   first_wins: bool = True) -> tuple[int, int]:
    """Insert every row of ``source_sql`` (contract columns), then delete the rows whose call_id
    the ledger already held or that repeat an earlier row's; return (rows read, rows kept).

    Same rows as :func:`insert_new_calls`, in one pass over the source: no census of the ids
    beforehand, no anti-join or per-id window in the insert; the check reads only the new rows'
    ids (and the ledger's, to find known ones), the delete runs only when something repeats.
    Meant for a DuckDB file inside the caller's transaction: the deleted rows then never reach
    the file, so the ledger's rowids stay contiguous (the rollups count on that). ``numbered``:
    the rows carry their ``_source_order`` and may come out of it (:func:`in_source_order`);
    ``first_wins=False``: the caller knows no id repeats in the source, so no order is needed.
    """
    cols = ", ".join(CALL_COLUMNS)
    last = {"last": _count(conn, "SELECT coalesce(max(rowid), -1) FROM calls")}
    rows = _count(conn, in_rowid_order(cols, source_sql, conn, numbered, first_wins))
    repeats = fetch_one(conn.execute(REPEATS_SQL, last))
    if not repeats or not repeats[0]:
        return rows, rows
    dropped = fetch_one(conn.execute(DELETE_REPEATS_SQL, last))
    return rows, rows - (int(dropped[0]) if dropped else 0)


def insert_new_adjustments(conn: duckdb.DuckDBPyConnection, source_sql: str,
                           numbered: bool = False) -> int:
    """Insert rows of ``source_sql`` (adjustment columns) whose id is not yet in the ledger;
    a repeated id keeps its first row (``numbered``: see :func:`in_source_order`)."""
    cols = ", ".join(ADJUSTMENT_COLUMNS)
    before = _count(conn, "SELECT count(*) FROM adjustments")
    conn.execute(f"INSERT INTO adjustments ({cols}) "
                 f"SELECT {cols} FROM ({in_source_order(source_sql, numbered)}) src "
                 "ANTI JOIN adjustments a ON a.adjustment_id = src.adjustment_id "
                 + FIRST_PER_ID.format(id="adjustment_id"))
    return _count(conn, "SELECT count(*) FROM adjustments") - before
