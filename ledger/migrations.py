"""Numbered, append-only schema migrations, recorded in the ledger and run at every open.

Never edit a migration that has shipped: add a new one. A ledger that records a migration this
code does not know was written by a newer callmeter, and opening it fails with a clear message.

Each layer registers its own migrations with :func:`register` (the ledger core's are below;
pricing's ``prices``, ``priced_calls``, budgets, the cost memo and the rollups are registered by
``pricing.install()``). Numbers are shared by every layer and run in order, so ``mNNN`` is taken
once in the whole code base; a gap in the numbers means a layer's migrations were never
registered, and :func:`migrate` refuses to touch a ledger then (see docs/architecture.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # hints only: `callmeter proxy` installs pricing and never loads DuckDB
    import duckdb

from .errors import LedgerError, LedgerTooNew
from .schema import create_adjustments_sql

Migration = Callable[["duckdb.DuckDBPyConnection"], None]

_NAME = re.compile(r"^m(\d{3})_[a-z0-9_]+$")
_REGISTERED: dict[str, Migration] = {}


def register(name: str, step: Migration) -> None:
    """Add migration ``name`` (``mNNN_what``). Registering the same step again is a no-op; a
    number taken by another step is a programming error."""
    match = _NAME.match(name)
    if not match:
        raise ValueError(f"migration name {name!r} is not mNNN_name")
    number = match.group(1)
    for other, other_step in _REGISTERED.items():
        if other[1:4] == number and (other != name or other_step is not step):
            raise ValueError(f"migration number {number} is taken by {other}")
    _REGISTERED[name] = step


def migration(step: Migration) -> Migration:
    """Decorator: :func:`register` a function under its own name."""
    register(step.__name__, step)
    return step


def registered() -> list[tuple[str, Migration]]:
    """Every registered migration, in the order they run (by number)."""
    return sorted(_REGISTERED.items())


def check_complete() -> None:
    """Raise :class:`LedgerError` when the registered numbers have a gap (a layer's migrations
    are missing: its ``install()`` was never called) or nothing above the core registered."""
    numbers = [int(name[1:4]) for name, _ in registered()]
    missing = [n for n in range(1, (max(numbers) if numbers else 0) + 1) if n not in numbers]
    if missing or len(numbers) <= len(CORE):
        gap = ", ".join(f"m{n:03d}" for n in missing) or "every migration above the core"
        raise LedgerError(
            f"callmeter's schema is incomplete ({gap} not registered): an entry point opened "
            "a ledger before installing the layers above the ledger core; call "
            "pricing.install() first (the CLI, the dashboard and the tests' fixtures do)")


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


CORE = (m001_calls, m006_adjustments, m007_cache_write_tokens)
for _step in CORE:
    migration(_step)


def applied_migrations(conn: duckdb.DuckDBPyConnection) -> list[str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR, applied_at TIMESTAMPTZ)"
    )
    rows = conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()
    return [str(r[0]) for r in rows]


def migrate(conn: duckdb.DuckDBPyConnection, where: str = "ledger") -> list[str]:
    """Bring the ledger up to date; return the names of the migrations that ran."""
    check_complete()
    steps = registered()
    done = set(applied_migrations(conn))
    unknown = sorted(done - {name for name, _ in steps})
    if unknown:
        raise LedgerTooNew(
            f"{where} was written by a newer callmeter (it has migration {unknown[-1]}, "
            f"this version knows up to {steps[-1][0]}); upgrade callmeter to open it"
        )
    ran: list[str] = []
    for name, step in steps:
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
