"""Numbered, append-only schema migrations, recorded in the ledger and run at every open.

Never edit a migration that has shipped: add a new one. A ledger that records a migration this
code does not know was written by a newer callmeter, and opening it fails with a clear message.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import UTC, datetime

import duckdb

from .errors import LedgerTooNew
from .schema import create_adjustments_sql

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def m001_calls(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS calls (
            call_id VARCHAR, source VARCHAR, started_at TIMESTAMPTZ,
            latency_ms INTEGER, ttft_ms INTEGER,
            key_id VARCHAR, key_hint VARCHAR, key_label VARCHAR,
            endpoint VARCHAR, model VARCHAR, base_model VARCHAR, billing_mode VARCHAR,
            stream BOOLEAN, status SMALLINT, requests INTEGER,
            input_tokens BIGINT, cached_tokens BIGINT, output_tokens BIGINT,
            reasoning_tokens BIGINT, images INTEGER, characters INTEGER,
            audio_seconds DOUBLE, usage_source VARCHAR, charged DECIMAL(38,12),
            tags MAP(VARCHAR, VARCHAR), image_size VARCHAR, usage_flag VARCHAR
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS imports (
            import_id VARCHAR, file VARCHAR, format VARCHAR, started_at TIMESTAMPTZ,
            read_rows BIGINT, imported BIGINT, duplicates BIGINT, skipped BIGINT,
            rejected BIGINT, rejected_file VARCHAR
        )
        """
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS spool_loads (segment VARCHAR, loaded_at TIMESTAMPTZ, "
        "rows BIGINT, inserted BIGINT)"
    )


def m006_adjustments(conn: duckdb.DuckDBPyConnection) -> None:
    """``adjustments``: refunds, task settlements, fees and billed lines — money, not calls."""
    conn.execute(create_adjustments_sql())


def m007_cache_write_tokens(conn: duckdb.DuckDBPyConnection) -> None:
    """Prompt-cache writes, which Anthropic (1.25x / 2x input) and OpenAI bill apart from input:
    ``cache_write_tokens`` ⊆ input and the part written with the longer retention (Anthropic's
    1-hour cache, OpenAI's 12-hour one), ``cache_write_long_tokens`` ⊆ cache_write_tokens."""
    for name in ("cache_write_tokens", "cache_write_long_tokens"):
        conn.execute(f"ALTER TABLE calls ADD COLUMN IF NOT EXISTS {name} BIGINT DEFAULT 0")


def _lazy(target: str) -> Migration:
    """A migration that lives in another package (``'pricing.schema:m002_prices'``)."""

    def run(conn: duckdb.DuckDBPyConnection) -> None:
        module, _, name = target.partition(":")
        getattr(importlib.import_module(module), name)(conn)

    run.__name__ = target.rpartition(":")[2]
    return run


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_calls", m001_calls),
    ("m002_prices", _lazy("pricing.schema:m002_prices")),
    ("m003_priced_calls", _lazy("pricing.schema:m003_priced_calls")),
    ("m004_budgets", _lazy("pricing.budgets:m004_budgets")),
    ("m005_cost_memo", _lazy("pricing.schema:m005_cost_memo")),
    ("m006_adjustments", m006_adjustments),
    ("m007_cache_write_tokens", m007_cache_write_tokens),
    ("m008_cache_write_prices", _lazy("pricing.schema:m008_cache_write_prices")),
]


def applied_migrations(conn: duckdb.DuckDBPyConnection) -> list[str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR, applied_at TIMESTAMPTZ)"
    )
    return [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]


def migrate(conn: duckdb.DuckDBPyConnection, where: str = "ledger") -> list[str]:
    """Bring the ledger up to date; return the names of the migrations that ran."""
    done = set(applied_migrations(conn))
    known = {name for name, _ in MIGRATIONS}
    unknown = sorted(done - known)
    if unknown:
        raise LedgerTooNew(
            f"{where} was written by a newer callmeter (it has migration {unknown[-1]}, "
            f"this version knows up to {MIGRATIONS[-1][0]}); upgrade callmeter to open it"
        )
    ran = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            step(conn)
            conn.execute(
                "INSERT INTO _migrations VALUES (?, ?)", [name, datetime.now(UTC)]
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        ran.append(name)
    return ran
