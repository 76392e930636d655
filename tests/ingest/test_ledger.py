"""The ledger file: migrations recorded and re-run at every open, upgrades, newer ledgers, --db."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ledger.connect import open_ledger
from ledger.errors import LedgerTooNew
from ledger.migrations import m001_calls, migrate, registered
from ledger.schema import CALL_COLUMNS
from pricing.queries import PRICES_VERSION_SQL

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CALLMETER_")}
    full["PYTHONPATH"] = str(ROOT)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "callmeter.cli", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=120)


def migration_names(conn: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]


def test_new_ledger_records_every_migration_and_reopening_runs_none(tmp_path):
    db = tmp_path / "deep" / "er" / "ledger.duckdb"
    conn = open_ledger(str(db))
    assert db.is_file()
    assert migration_names(conn) == [name for name, _ in registered()]
    cols = conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_name = 'calls' ORDER BY ordinal_position").fetchall()
    # contract columns first, then pricing's cost memo (pricing.memo)
    assert [c for c, _ in cols if not c.startswith("memo_")] == list(CALL_COLUMNS)
    conn.close()

    conn = open_ledger(str(db))
    assert migrate(conn) == []
    assert conn.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(registered())
    conn.close()


def test_old_ledger_with_only_the_first_migration_is_upgraded_and_keeps_its_calls(tmp_path):
    db = str(tmp_path / "old.duckdb")
    conn = duckdb.connect(db)  # what the first release wrote, made by hand
    m001_calls(conn)
    conn.execute("CREATE TABLE _migrations (name VARCHAR, applied_at TIMESTAMPTZ)")
    conn.execute("INSERT INTO _migrations VALUES ('m001_calls', now())")
    conn.execute("INSERT INTO calls (call_id, source, started_at, model) "
                 "VALUES ('old-1', 'csv', TIMESTAMPTZ '2025-01-02 03:04:05+00', 'gpt-4o')")
    conn.close()

    conn = open_ledger(db)
    assert migration_names(conn) == [name for name, _ in registered()]
    assert conn.execute("SELECT call_id FROM calls").fetchall() == [("old-1",)]
    assert conn.execute("SELECT count(*) FROM prices").fetchone()[0] == 0
    assert conn.execute("SELECT call_id FROM priced_calls").fetchall() == [("old-1",)]
    conn.close()


def test_ledger_from_before_cache_writes_is_upgraded_and_its_memo_recomputed(tmp_path):
    """m007/m008 on a ledger written before them: the new columns read 0, and memoised costs
    are recomputed under the new formula even when the prices did not change (a count_tokens
    call memoised as unpriced becomes the non-billable 0 it is)."""
    db = str(tmp_path / "before.duckdb")
    conn = open_ledger(db)
    conn.execute("INSERT INTO calls (call_id, source, started_at, endpoint, model, base_model, "
                 "billing_mode, status, requests, input_tokens) VALUES ('count', 'proxy', "
                 "TIMESTAMPTZ '2026-01-02 00:00:00+00', 'count_tokens', 'claude-x', 'claude-x', "
                 "'token', 200, 1, 5202)")
    # back to what the previous release wrote: no cache-write columns, the old migrations, and
    # the memo of the old formula (an unknown model: unpriced) under the current prices version
    conn.execute("DROP VIEW priced_calls")
    for table, cols in (("calls", ("cache_write_tokens", "cache_write_long_tokens")),
                        ("prices", ("cache_write", "cache_write_long"))):
        for col in cols:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {col}")
    conn.execute("DELETE FROM _migrations WHERE name IN ('m007_cache_write_tokens', "
                 "'m008_cache_write_prices')")
    conn.execute(f"UPDATE calls SET memo_cost = NULL, memo_priced = false, "
                 f"memo_prices_version = ({PRICES_VERSION_SQL})")
    conn.close()

    conn = open_ledger(db)
    assert migration_names(conn) == [name for name, _ in registered()]
    assert conn.execute("SELECT cache_write_tokens, cache_write_long_tokens, cost, priced "
                        "FROM priced_calls").fetchall() == [(0, 0, 0, True)]
    conn.close()


def test_a_ledger_from_a_newer_callmeter_is_refused_with_a_clear_message(tmp_path):
    db = str(tmp_path / "new.duckdb")
    open_ledger(db).close()
    conn = duckdb.connect(db)
    conn.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', now())")
    conn.close()

    with pytest.raises(LedgerTooNew, match="m999_from_the_future") as err:
        open_ledger(db)
    assert "newer callmeter" in str(err.value) and "upgrade callmeter" in str(err.value)

    done = run_cli("load", "--db", db, cwd=tmp_path)
    assert done.returncode == 2
    assert "newer callmeter" in done.stderr and "Traceback" not in done.stderr
    conn = duckdb.connect(db, read_only=True)  # and the file was left as it was
    assert "m999_from_the_future" in migration_names(conn)
    conn.close()


def test_db_flag_environment_and_default_with_parent_folders_created(tmp_path):
    done = run_cli("load", cwd=tmp_path)  # neither: data/callmeter.duckdb under the cwd
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "callmeter.duckdb").is_file()

    env_db = tmp_path / "from" / "env" / "l.duckdb"
    done = run_cli("load", cwd=tmp_path, env={"CALLMETER_DB": str(env_db)})
    assert done.returncode == 0, done.stderr
    assert env_db.is_file()

    flag_db = tmp_path / "from" / "flag" / "l.duckdb"
    done = run_cli("load", "--db", str(flag_db), cwd=tmp_path,
                   env={"CALLMETER_DB": str(tmp_path / "not-this.duckdb")})
    assert done.returncode == 0, done.stderr
    assert flag_db.is_file() and not (tmp_path / "not-this.duckdb").exists()
