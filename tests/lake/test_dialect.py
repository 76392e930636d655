"""The ledger's own SQL on a real DuckLake lake (PostgreSQL catalog, Parquet data)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import duckdb
import pytest

from ledger import insert_new_calls
from ledger.connect import open_ledger
from ledger.dialect import NO_OP, for_lake
from ledger.errors import LedgerError
from ledger.lake import connect_lake, statement_kind
from ledger.migrations import applied_migrations, registered

pytestmark = pytest.mark.lake

ROWS_SQL = """
SELECT * FROM (VALUES
  ('c1', 'csv', TIMESTAMPTZ '2025-03-01 10:00:00+00', 'gpt-4o', 'gpt-4o', 'token',
   1000, 0, 100, MAP {'team': 'search'}),
  ('c2', 'csv', TIMESTAMPTZ '2025-03-01 11:00:00+00', 'gpt-4o-c', 'gpt-4o', 'request',
   10, 0, 10, MAP {'team': 'etl'}),
  ('c2', 'csv', TIMESTAMPTZ '2025-03-01 11:00:00+00', 'gpt-4o-c', 'gpt-4o', 'request',
   10, 0, 10, MAP {'team': 'etl'})
) v(call_id, source, started_at, model, base_model, billing_mode, input_tokens, cached_tokens,
    output_tokens, tags)
"""


def calls_sql(rows_sql: str = ROWS_SQL) -> str:
    from ingest.normalise import normalised_select
    from ledger.schema import CALL_COLUMNS

    given = {"call_id", "source", "started_at", "model", "base_model", "billing_mode",
             "input_tokens", "cached_tokens", "output_tokens", "tags"}
    cols = [c if c in given else f"NULL AS {c}" for c in CALL_COLUMNS]
    return normalised_select(f"SELECT {', '.join(cols)} FROM ({rows_sql})")


def test_open_ledger_migrates_a_new_lake_and_reopens_it(lake):
    conn = open_ledger(lake.db, data_path=lake.data_path)
    assert applied_migrations(conn) == sorted(name for name, _ in registered())
    assert conn.execute("SELECT current_database()").fetchone() == ("lake",)
    conn.close()
    again = open_ledger(lake.db)  # the catalog remembers the data path
    assert again.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(registered())
    again.close()


def test_a_new_lake_without_data_path_says_what_is_missing(lake):
    with pytest.raises(LedgerError, match="--data-path"):
        connect_lake(lake.db)


def test_anti_join_insert_with_qualify_map_and_priced_calls_view(lake):
    conn = open_ledger(lake.db, data_path=lake.data_path)
    assert insert_new_calls(conn, calls_sql()) == 2  # c2 appears twice in one batch
    assert insert_new_calls(conn, calls_sql()) == 0
    conn.execute("INSERT INTO prices (model, effective_from, input, output) "
                 "VALUES ('gpt-4o', DATE '2025-01-01', 2.5, 10)")
    conn.execute("INSERT INTO prices (model, effective_from, request) "
                 "VALUES ('gpt-4o-c', DATE '2025-01-01', 0.02)")
    got = dict(conn.execute("SELECT call_id, cost FROM priced_calls").fetchall())
    # c1: 1000 × 2.5/1M + 100 × 10/1M = 0.0025 + 0.001; c2: one request at 0.02
    assert got == {"c1": Decimal("0.0035"), "c2": Decimal("0.02")}
    assert conn.execute("SELECT tags['team'] FROM calls WHERE call_id = 'c1'").fetchone() == (
        "search",)
    conn.close()


def test_constraints_and_indexes_are_adapted_in_one_place(lake):
    assert for_lake("CREATE INDEX ix ON calls(call_id)") == NO_OP
    assert for_lake("CREATE TABLE t (a INT PRIMARY KEY, b VARCHAR UNIQUE, c INT, "
                    "PRIMARY KEY (a, c))") == "CREATE TABLE t (a INT, b VARCHAR, c INT)"
    conn = open_ledger(lake.db, data_path=lake.data_path)
    conn.execute("CREATE TABLE keyed (k VARCHAR PRIMARY KEY, v INT NOT NULL)")
    conn.execute("CREATE INDEX keyed_v ON keyed(v)")
    conn.execute("INSERT INTO keyed VALUES ('a', 1)")
    assert conn.execute("SELECT * FROM keyed").fetchall() == [("a", 1)]
    with pytest.raises(LedgerError, match="ledger/dialect.py"):
        conn.execute("CREATE SEQUENCE s")
    conn.close()


def test_statement_kinds():
    assert statement_kind("  BEGIN TRANSACTION") == "begin"
    assert statement_kind("commit") == "end"
    assert statement_kind("-- note\nINSERT INTO calls SELECT 1") == "write"
    assert statement_kind("CREATE OR REPLACE TEMP TABLE _s AS SELECT 1") == "read"
    assert statement_kind("COPY (SELECT 1) TO 'x.csv'") == "read"
    assert statement_kind("COPY calls FROM 'x.parquet'") == "write"
    assert statement_kind("BEGIN; DELETE FROM prices; COMMIT;") == "write"


def test_a_reader_sees_new_calls_on_its_next_query(lake):
    reader = open_ledger(lake.db, data_path=lake.data_path)
    writer = open_ledger(lake.db)
    assert reader.execute("SELECT count(*) FROM calls").fetchone()[0] == 0
    insert_new_calls(writer, calls_sql())
    assert reader.execute("SELECT count(*) FROM calls").fetchone()[0] == 2
    assert reader.cursor().execute("SELECT count(*) FROM priced_calls").fetchone()[0] == 2
    reader.close()
    writer.close()


def test_anti_join_races_without_the_lock_and_not_with_it(lake):
    """Why the writer lock exists: DuckLake lets two concurrent appends both commit."""
    open_ledger(lake.db, data_path=lake.data_path).close()
    a, b = connect_lake(lake.db), connect_lake(lake.db)
    raw_a, raw_b = a._conn, b._conn  # bypass the lock to show the race
    for raw in (raw_a, raw_b):
        raw.execute("BEGIN TRANSACTION")
        insert_new_calls(raw, calls_sql())
    raw_a.execute("COMMIT")
    raw_b.execute("COMMIT")  # DuckLake retries the commit: appends never conflict
    assert a.execute("SELECT count(*), count(DISTINCT call_id) FROM calls").fetchone() == (4, 2)

    # Through LakeConnection the second transaction waits for the first, then sees its rows.
    a.execute("DELETE FROM calls")
    inserted = {}
    a.execute("BEGIN TRANSACTION")
    inserted["a"] = insert_new_calls(a, calls_sql())

    def second():
        b.execute("BEGIN TRANSACTION")  # blocks on the lock until a commits
        inserted["b"] = insert_new_calls(b, calls_sql())
        b.execute("COMMIT")

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.5)
    assert "b" not in inserted
    a.execute("COMMIT")
    t.join(30)
    assert inserted == {"a": 2, "b": 0}
    assert a.execute("SELECT count(*), count(DISTINCT call_id) FROM calls").fetchone() == (2, 2)
    a.close()
    b.close()


def test_the_raw_connection_is_plain_duckdb(lake):
    conn = open_ledger(lake.db, data_path=lake.data_path)
    assert isinstance(conn._conn, duckdb.DuckDBPyConnection)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    conn.close()


def test_budget_upserts_keep_one_row_per_target_on_a_lake(lake):
    from pricing.budgets import Budget, list_budgets, set_budget

    conn = open_ledger(lake.db, data_path=lake.data_path)
    set_budget(conn, Budget("total", "all", Decimal("100")))
    set_budget(conn, Budget("total", "all", Decimal("150"), note="raised"))
    assert [(b.scope, b.target, b.monthly, b.note) for b in list_budgets(conn)] == [
        ("total", "all", Decimal("150"), "raised")]
    conn.close()


def test_dashboard_rollup_builds_on_a_lake(lake):
    from pricing import rollup

    conn = open_ledger(lake.db, data_path=lake.data_path)
    insert_new_calls(conn, calls_sql())
    rollup.ensure(conn)
    rollup.refresh(conn)
    assert conn.execute(f"SELECT sum(calls) FROM {rollup.TABLE}").fetchone()[0] == 2
    conn.close()
