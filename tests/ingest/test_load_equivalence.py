"""`callmeter load` in one pass equals the load it replaced, row for row, cost for cost.

The loader used to count the batch's ids first (a second JSON pass), insert through an anti-join
with a per-id window when an id repeated, and price every call through the range joins even
with no price sheet. It now inserts every record and deletes the repeats afterwards (only when
there are any), and fills the memo without the joins when the sheet is empty. The old way is
copied here as the reference; both load the same spool into their own ledger, and every calls
column (the cost memo included), every cost of ``priced_calls``, the rollups and the counts the
user is shown must agree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ingest.loader import (
    LoadResult,
    finished_segments,
    load_spool,
    raw_segments_sql,
    recover_abandoned,
    segments_sql,
)
from ledger import CALL_COLUMNS, calls_added, id_census, insert_new_calls
from ledger.connect import open_ledger
from pricing import load_prices, rollup
from pricing.memo import EMPTY_SHEET_MEMO
from pricing.queries import PRICED_COLUMNS_MEMO, PRICES_VERSION_SQL, priced_select

ROOT = Path(__file__).resolve().parents[2]
BATCH = 2  # segments per transaction: repeats across batches as well as within one


# --- the reference: the load as it was (census, anti-join + window, priced insert) ----------

def _old_insert_new_calls(conn: duckdb.DuckDBPyConnection, source_sql: str,
                          dedupe_within: bool) -> int:
    cols = ", ".join(CALL_COLUMNS)
    once = "QUALIFY row_number() OVER (PARTITION BY src.call_id) = 1" if dedupe_within else ""
    new_rows = (f"SELECT {cols} FROM ({source_sql}) src "
                f"ANTI JOIN calls c ON c.call_id = src.call_id {once}")
    memo = ", ".join(PRICED_COLUMNS_MEMO.values())
    costs = ", ".join(PRICED_COLUMNS_MEMO)
    before = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    conn.execute(f"INSERT INTO calls ({cols}, {memo}, memo_prices_version) "
                 f"SELECT {cols}, {costs}, ({PRICES_VERSION_SQL.strip()}) "
                 f"FROM ({priced_select('(' + new_rows + ')')})")
    return conn.execute("SELECT count(*) FROM calls").fetchone()[0] - before


def old_load_spool(conn: duckdb.DuckDBPyConnection, folder: Path, batch: int) -> LoadResult:
    result = LoadResult()
    recover_abandoned(folder, result)
    segments = finished_segments(folder)
    for start in range(0, len(segments), batch):
        chunk = segments[start:start + batch]
        conn.execute("BEGIN TRANSACTION")
        try:
            rows, clean = id_census(conn, raw_segments_sql(chunk))
            inserted = _old_insert_new_calls(conn, segments_sql(chunk), not clean)
            now = datetime.now(UTC)
            conn.executemany("INSERT INTO spool_loads VALUES (?, ?, ?, ?)",
                             [[p.name, now, None, None] for p in chunk])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        result.segments += len(chunk)
        result.rows += rows
        result.inserted += inserted
        result.duplicates += rows - inserted
        for p in chunk:
            p.unlink()
    if result.inserted:
        calls_added(conn)
    return result


# --- the spool ------------------------------------------------------------------------------

MODELS = [  # (model, endpoint): priced, per-request, a snapshot, unknown, media, not billed
    ("gpt-4o", "chat"), ("gpt-4o-c", "chat"), ("gpt-4o-mini", "chat"),
    ("gpt-4o-2024-08-06", "chat"), ("no-such-model", "chat"), ("gemini-2.5-pro-c", "chat"),
    ("whisper-1", "transcriptions"), ("dall-e-3", "images"), ("tts-1", "speech"),
    ("text-embedding-3-small", "embeddings"), ("", "models"), ("gpt-4o", "count_tokens"),
]


def record(i: int, day: int, **extra: object) -> dict:
    model, endpoint = MODELS[i % len(MODELS)]
    out: dict = {
        "call_id": f"px:{i:04d}", "source": "proxy",
        "started_at": f"2025-03-{day:02d}T{i % 24:02d}:{i % 60:02d}:07.5+01:00",
        "model": model, "endpoint": endpoint, "status": 429 if i % 7 == 3 else 200,
        "latency_ms": 40 + i, "stream": i % 3 == 0, "ttft_ms": 9 + i if i % 3 == 0 else None,
        "input_tokens": 100 * i + 5, "cached_tokens": 30 if i % 4 == 0 else 0,
        "output_tokens": 7 * i, "key_id": f"k1:{i % 3}", "key_hint": f"sk-…{i % 3:04d}",
        "usage_source": "reported",
    }
    if endpoint == "transcriptions":
        out["audio_seconds"] = 61.25 + i
    if endpoint == "images":
        out["images"] = 1 + i % 2
    if endpoint == "speech":
        out["characters"] = 1000 + i
    if i % 5 == 0:
        out["tags"] = {"team": "search", "app": f"bot{i % 2}"}
    if i % 6 == 0:
        out["charged"] = "0.000123456789"
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}


def keyless(n: int, day: int) -> dict:
    """A record without an id (an older writer): its id is a hash of its fields."""
    out = record(n, day)
    del out["call_id"]
    return out


def write(path: Path, records: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def first_spool(spool: Path) -> None:
    """Three closed segments (two batches) and one left open by a dead writer."""
    spool.mkdir(parents=True)
    write(spool / "20250301T000000000000-1-000001.jsonl",
          [record(i, 1) for i in range(20)]
          + [record(3, 1), keyless(500, 1), keyless(500, 1), keyless(501, 1)])
    write(spool / "20250302T000000000000-1-000002.jsonl",
          [record(i, 2) for i in range(20, 40)] + [record(5, 1), keyless(501, 1)])
    write(spool / "20250303T000000000000-1-000003.jsonl",
          [record(i, 3) for i in range(40, 60)] + [record(7, 1), record(41, 3)])
    torn = spool / f"20250304T000000000000-{dead_pid()}-000004.jsonl.open"
    write(torn, [record(i, 4) for i in range(60, 66)] + [record(20, 2)],
          tail=json.dumps(record(66, 4))[:30])  # kill -9 mid-write


def second_spool(spool: Path) -> None:
    """A replayed segment (everything known), and new calls mixed with known ones."""
    write(spool / "20250305T000000000000-1-000005.jsonl",
          [record(i, 1) for i in range(20)] + [keyless(500, 1)])
    write(spool / "20250306T000000000000-1-000006.jsonl",
          [record(i, 5) for i in range(100, 130)] + [record(100, 5), keyless(502, 5),
                                                      record(59, 3), keyless(502, 5)])
    write(spool / "20250307T000000000000-1-000007.jsonl", [record(i, 6) for i in range(130, 140)])


def bad_spool(spool: Path) -> None:
    """A segment with a line that is not JSON: the load stops, nothing of the batch is kept."""
    write(spool / "20250308T000000000000-1-000008.jsonl", [record(i, 7) for i in range(200, 205)],
          tail="this is not json\n" + json.dumps(record(205, 7)) + "\n")


# --- comparing two ledgers ------------------------------------------------------------------

def state(conn: duckdb.DuckDBPyConnection) -> dict:
    """Everything a user could tell apart: calls (memo included), costs, rollups."""
    out = {
        "calls": conn.execute("SELECT * FROM calls ORDER BY call_id").fetchall(),
        "rowids": conn.execute("SELECT count(*), max(rowid) FROM calls").fetchone(),
        "priced": conn.execute(
            "SELECT call_id, cost, cost_as_token, cost_as_request, priced, "
            "price_effective_from, currency, price_model FROM priced_calls "
            "ORDER BY call_id").fetchall(),
        "loads": conn.execute("SELECT segment FROM spool_loads ORDER BY ALL").fetchall(),
    }
    for table in rollup.TABLES:
        out[table] = conn.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    out["rollup_state"] = conn.execute(
        f"SELECT calls_rows, max_rowid, prices_marker FROM {rollup.STATE}").fetchall()
    return out


def counts(result: LoadResult) -> tuple:
    return (result.segments, result.rows, result.inserted, result.duplicates,
            [note.split(":", 1)[1] for note in result.set_aside])


@pytest.fixture(params=["no sheet", "sheet"])
def ledgers(request, tmp_path):
    """Two fresh ledgers, the same sheet (or none) in each: (old, new)."""
    conns = []
    for name in ("old", "new"):
        conn = open_ledger(str(tmp_path / f"{name}.duckdb"))
        if request.param == "sheet":
            load_prices(conn, ROOT / "data" / "prices.csv")
        rollup.refresh(conn)  # the dashboard has opened the ledger once: rollups exist
        conns.append(conn)
    yield conns
    for conn in conns:
        conn.close()


def test_the_one_pass_load_equals_the_old_load_on_the_same_spool(ledgers, tmp_path):
    old, new = ledgers
    spools = {"old": tmp_path / "spool-old", "new": tmp_path / "spool-new"}
    first_spool(spools["old"])
    shutil.copytree(spools["old"], spools["new"])  # same files, same dead writer's name

    a = old_load_spool(old, spools["old"], BATCH)
    b = load_spool(new, spools["new"], batch=BATCH)
    # 3 + 1 recovered segments; 24 + 22 + 22 + 7 records; repeats: px:0003 (same segment),
    # px:0005 (same batch), px:0007 / px:0041 / px:0020 (earlier batch or same segment), the
    # keyless 500 (twice in a segment) and 501 (across segments)
    assert counts(b) == counts(a)
    assert counts(b)[:4] == (4, 75, 68, 7) and "half a last line (30 bytes)" in b.set_aside[0]
    assert state(new) == state(old)

    second_spool(spools["old"])
    second_spool(spools["new"])
    a, b = old_load_spool(old, spools["old"], BATCH), load_spool(new, spools["new"], batch=BATCH)
    # the replayed segment: 21 known; then 30 new, px:0100 twice, the keyless 502 twice,
    # px:0059 known; then 10 new
    assert counts(b) == counts(a) == (3, 65, 41, 24, [])
    assert state(new) == state(old)
    assert old_load_spool(old, spools["old"], BATCH).segments == 0

    bad_spool(spools["old"])
    bad_spool(spools["new"])
    with pytest.raises(duckdb.InvalidInputException):
        old_load_spool(old, spools["old"], BATCH)
    with pytest.raises(duckdb.InvalidInputException):
        load_spool(new, spools["new"], batch=BATCH)
    assert state(new) == state(old)
    assert [p.name for p in finished_segments(spools["new"])] == [
        "20250308T000000000000-1-000008.jsonl"]  # kept for the user to fix, nothing lost

    for conn in (old, new):  # appended rollups sum to what a rebuild from scratch gives
        appended = _rollup_sums(conn)
        rollup.rebuild(conn)
        assert _rollup_sums(conn) == appended


def _rollup_sums(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Calls, tokens and costs per UTC day and model (appends add rows; pages sum them)."""
    return conn.execute(
        "SELECT day, model, sum(calls), sum(input_tokens), sum(output_tokens), sum(cost), "
        "sum(cost_as_token), sum(cost_as_request), sum(unpriced_calls) FROM rollup_daily "
        "GROUP BY ALL ORDER BY ALL").fetchall()


def test_a_repeated_id_keeps_its_first_record(tmp_path):
    """The same id twice in a batch with different fields (a keyless record hashed alike,
    a replayed call re-timed): the first in the spool stays. The old load's per-id window had
    no order and kept any of them (CI once saw the second segment's record win); it is held to
    the same ids and counts only."""
    kept = {}
    for name, load in (("old", lambda c, s: old_load_spool(c, s, 256)), ("new", load_spool)):
        conn = open_ledger(str(tmp_path / f"{name}.duckdb"))
        spool = tmp_path / f"spool-{name}"
        spool.mkdir()
        write(spool / "20250301T000000000000-1-000001.jsonl",
              [record(1, 1, latency_ms=111), record(2, 1), record(1, 1, latency_ms=222),
               keyless(3, 1) | {"latency_ms": 333}, keyless(3, 1) | {"latency_ms": 444}])
        write(spool / "20250302T000000000000-1-000002.jsonl", [record(1, 1, latency_ms=555)])
        result = load(conn, spool)
        assert (result.rows, result.inserted, result.duplicates) == (6, 3, 3)
        kept[name] = conn.execute(
            "SELECT call_id, latency_ms FROM calls ORDER BY call_id").fetchall()
        conn.close()
    assert [i for i, _ in kept["new"]] == [i for i, _ in kept["old"]]
    assert sorted(latency for _, latency in kept["new"]) == [42, 111, 333]


def replayed_spool(spool: Path, calls: int, gap: int) -> int:
    """One segment of ``calls`` records where every 500th is replayed ``gap`` records later,
    re-timed (latency -1): a proxy that resent a batch. Returns how many replays it holds."""
    records = [record(10 + i, 1 + i % 28) for i in range(calls)]
    replays = range(calls - gap - 1, 0, -500)
    for j in replays:  # from the end, so each insert leaves the earlier positions alone
        records.insert(j + gap, record(10 + j, 1 + j % 28, latency_ms=-1))
    write(spool / "20250301T000000000000-1-000001.jsonl", records)
    return len(replays)


@pytest.mark.parametrize("gap", [1000, 3000])
def test_with_a_price_sheet_a_replayed_record_never_wins_over_the_first(tmp_path, gap):
    """The first record of an id is the one kept, by rowid: pricing's joins against the sheet
    put rows out of the spool's order (DuckDB 1.5.5, 300k records: some thousands of rows
    behind later ones, and 6-18 of the 600 replays below kept instead of the first record), so
    the insert orders them explicitly. Held for the rowids too: they follow the spool."""
    conn = open_ledger(str(tmp_path / "ledger.duckdb"))
    load_prices(conn, ROOT / "data" / "prices.csv")
    spool = tmp_path / "spool"
    spool.mkdir()
    replays = replayed_spool(spool, 300_000, gap)
    result = load_spool(conn, spool)
    assert (result.inserted, result.duplicates) == (300_000, replays)
    assert conn.execute("SELECT count(*) FROM calls WHERE latency_ms = -1").fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FILTER (WHERE latency_ms < before) FROM "
        "(SELECT latency_ms, lag(latency_ms) OVER (ORDER BY rowid) AS before FROM calls)"
    ).fetchone() == (0,)  # record(i) has latency 40 + i: rowid order is spool order
    assert conn.execute("SELECT count(*) FROM priced_calls WHERE priced").fetchone()[0] > 0


@pytest.mark.parametrize("threads", [1, 4])
def test_the_windowed_insert_keeps_the_first_record_of_an_id_however_the_scan_runs(
        tmp_path, threads):
    """The path a lake ledger's load and every importer take (census, then the per-id window
    when an id repeats): 40 segments each replay call px:0001 with its own latency, a parallel
    scan reads them in any order, and still the first segment's record is the one kept."""
    conn = open_ledger(str(tmp_path / "ledger.duckdb"))
    conn.execute(f"SET threads = {threads}")
    paths = []
    for n in range(40):
        path = tmp_path / f"20250301T0000000000{n:02d}-1-{n:06d}.jsonl"
        write(path, [record(1, 1, latency_ms=1000 + n)]
              + [record(100 + 50 * n + i, 1) for i in range(50)])
        paths.append(path)
    rows, clean = id_census(conn, raw_segments_sql(paths))
    assert (rows, clean) == (40 * 51, False)
    assert insert_new_calls(conn, segments_sql(paths), dedupe_within=True) == 1 + 40 * 50
    assert conn.execute("SELECT latency_ms FROM calls WHERE call_id = 'px:0001'").fetchall() \
        == [(1000,)]


def test_the_empty_sheet_memo_is_what_pricing_gives_without_a_sheet(tmp_path):
    """Every kind of call (billed or not, failed, unknown model, media) priced by the range
    joins against an empty sheet gets exactly the memo the shortcut writes."""
    conn = open_ledger(str(tmp_path / "l.duckdb"))
    spool = tmp_path / "spool"
    spool.mkdir()
    write(spool / "20250301T000000000000-1-000001.jsonl",
          [record(i, 1 + i % 3) for i in range(48)]
          + [record(90, 1, status=None), record(91, 1, billing_mode=None, model="x")])
    load_spool(conn, spool)
    memo = ", ".join(PRICED_COLUMNS_MEMO.values())
    shortcut = ", ".join(f"{EMPTY_SHEET_MEMO[c]} AS {c}" for c in PRICED_COLUMNS_MEMO)
    cols = ", ".join(PRICED_COLUMNS_MEMO)
    stored = conn.execute(f"SELECT call_id, {memo} FROM calls ORDER BY call_id").fetchall()
    live = conn.execute(f"SELECT call_id, {cols} FROM ({priced_select('calls')}) "
                        "ORDER BY call_id").fetchall()
    recomputed = conn.execute(f"SELECT call_id, {shortcut} FROM calls ORDER BY call_id").fetchall()
    assert stored == live == recomputed
    assert {r[3] for r in stored} == {None, 0}  # unpriced calls stay NULL, never 0
    assert conn.execute("SELECT count(*) FROM calls WHERE memo_prices_version IS DISTINCT FROM "
                        f"({PRICES_VERSION_SQL.strip()})").fetchone()[0] == 0
    conn.close()
