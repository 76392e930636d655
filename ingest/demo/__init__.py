"""``callmeter demo``: a realistic synthetic history, written through the real ingest path.

The calls are sampled with numpy (:mod:`.generate`), handed to DuckDB as Arrow tables, joined to
the keys and models in SQL, and inserted by :func:`ingest.loader.insert_new_calls` after
:func:`ingest.normalise.normalised_select`, exactly like spool segments and imports. Keys are
made-up ``sk-`` strings fingerprinted with the ledger's own secret; the keys themselves are
never stored.

Re-running replaces: the demo's rows (``source = 'demo'``) are deleted and rebuilt in one
transaction, so a ledger never holds two demo histories. Call ids are ``demo:<seed>:<n>`` with
``n`` the call's position in time order, so the same arguments give the same ids and totals.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from ledger import (
    USAGE_SOURCES,
    KeyFingerprinter,
    fetch_one,
    insert_new_calls,
    key_hint,
    sql_literal,
)

from ..normalise import normalised_select
from .generate import MODEL_NAMES, generate
from .habits import HABITS, IMAGE_SIZES, MODELS, USAGE_FLAG_INTERRUPTED, model_base

__all__ = ["DemoResult", "build_demo", "demo_end", "demo_keys", "demo_models"]

_USAGE = f"{list(USAGE_SOURCES)}[g.usage + 1]"  # the generator's codes: 0, 1, 2

DEMO_ROWS_SQL = f"""
SELECT printf('demo:%d:%09d', CAST($seed AS BIGINT), g.idx) AS call_id,
  'demo' AS source, g.started_at, g.latency_ms, g.ttft_ms,
  k.key_id, k.key_hint, k.key_label,
  md.endpoint, md.model, NULL AS base_model, NULL AS billing_mode,
  g.stream, g.status, 1 AS requests,
  g.input_tokens, g.cached_tokens, g.output_tokens, g.reasoning_tokens,
  g.images, g.characters, g.audio_seconds,
  {_USAGE} AS usage_source, NULL AS charged, k.tags,
  {list(IMAGE_SIZES)}[g.image_size + 1] AS image_size,
  CASE WHEN g.usage = 1 THEN {sql_literal(USAGE_FLAG_INTERRUPTED)} END AS usage_flag,
  NULL AS cache_write_tokens, NULL AS cache_write_long_tokens
FROM _demo_calls g
JOIN _demo_keys k ON k.w = g.w
JOIN _demo_models md ON md.m = g.m
"""


@dataclass
class DemoResult:
    calls: int
    deleted: int
    seconds: float
    start: datetime
    end: datetime

    def summary(self) -> str:
        rate = self.calls / self.seconds if self.seconds else 0
        return (f"demo: {self.calls:,} calls from {self.start:%Y-%m-%d %H:%M} to "
                f"{self.end:%Y-%m-%d %H:%M} UTC on {len(HABITS)} keys, written in "
                f"{self.seconds:.1f} s ({rate:,.0f} calls/s)"
                + (f"; replaced {self.deleted:,} earlier demo calls" if self.deleted else ""))


def demo_end(now: datetime | None = None) -> datetime:
    """Default end of the history: the start of the current UTC hour."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.replace(minute=0, second=0, microsecond=0)


def made_up_key(seed: int, index: int) -> str:
    return "sk-demo" + hashlib.sha256(f"callmeter-demo:{seed}:{index}".encode()).hexdigest()[:40]


def demo_keys(seed: int, fingerprinter: KeyFingerprinter) -> pa.Table:
    """One row per demo key: fingerprint, hint, label and tags (never the key itself)."""
    keys = [made_up_key(seed, i) for i in range(len(HABITS))]
    return pa.table({
        "w": pa.array(range(len(HABITS)), pa.int16()),
        "key_id": [fingerprinter.fingerprint(k) for k in keys],
        "key_hint": [key_hint(k) for k in keys],
        "key_label": [h.label for h in HABITS],
        "tags": pa.array([list(h.tags.items()) or None for h in HABITS],
                         pa.map_(pa.string(), pa.string())),
    })


def demo_models() -> pa.Table:
    return pa.table({
        "m": pa.array(range(len(MODEL_NAMES)), pa.int16()),
        "model": list(MODEL_NAMES),
        "endpoint": [MODELS[model_base(m)][0] for m in MODEL_NAMES],
    })


def build_demo(conn: duckdb.DuckDBPyConnection, *, calls: int, days: int, seed: int,
               fingerprinter: KeyFingerprinter, end: datetime | None = None) -> DemoResult:
    """Replace the ledger's demo rows with a fresh history of ``calls`` calls over ``days``."""
    if calls < 0 or days < 1:
        raise ValueError("the demo needs calls >= 0 and days >= 1")
    end = demo_end(end)
    began = time.perf_counter()
    conn.register("_demo_keys", demo_keys(seed, fingerprinter))
    conn.register("_demo_models", demo_models())
    params = {"seed": seed}
    rows_sql = normalised_select(DEMO_ROWS_SQL)
    conn.execute("BEGIN TRANSACTION")
    try:
        deleted = fetch_one(conn.execute("DELETE FROM calls WHERE source = 'demo'"))[0]
        written = 0
        for table in generate(calls, days, seed, end):
            conn.register("_demo_calls", table)
            written += insert_new_calls(conn, rows_sql, params)
            conn.unregister("_demo_calls")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        for name in ("_demo_keys", "_demo_models"):
            conn.unregister(name)
    start = end.fromtimestamp(end.timestamp() - days * 86400, UTC)
    return DemoResult(written, deleted, time.perf_counter() - began, start, end)
