"""Issue 9, property 6 — what tests/ingest/test_import_*.py do not already cover: every sample
format imported twice through the CLI (second run adds nothing), an overlapping later CSV
export, and the bad-row kinds the CSV tests leave out (each reported by line, none invented)."""

from __future__ import annotations

import re

import duckdb
import pytest
from harness import ROOT, callmeter, rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.importers import ImportOptions
from ingest.imports import import_paths
from ledger.errors import CallmeterError
from ledger.keys import KeyFingerprinter

SAMPLES = sorted((ROOT / "data" / "samples").iterdir())
COUNTS = re.compile(r"read (\d+), imported (\d+), duplicate (\d+), skipped (\d+), "
                    r"rejected (\d+)")


def counts(output: str) -> tuple[int, ...]:
    found = COUNTS.findall(output)
    assert found, output
    return tuple(sum(int(c[i]) for c in found) for i in range(5))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_format_imported_twice_adds_nothing_the_second_time(tmp_path, sample):
    db = str(tmp_path / "c.duckdb")
    first = counts(callmeter("import", str(sample), "--db", db).stdout)
    n = rows(tmp_path / "c.duckdb", "SELECT count(*) AS n FROM calls")[0]["n"]
    second = counts(callmeter("import", str(sample), "--db", db).stdout)
    assert n == first[1] > 0
    assert second[1] == 0 and second[2] >= first[1]  # every row a duplicate now
    assert rows(tmp_path / "c.duckdb", "SELECT count(*) AS n FROM calls")[0]["n"] == n


def _csv(lines: range) -> str:
    out = ["started_at,model,input_tokens,output_tokens"]
    out += [f"2025-03-01T{i // 60:02d}:{i % 60:02d}:00Z,gpt-4o,{i},{2 * i}" for i in lines]
    return "\n".join(out) + "\n"


def test_overlapping_later_export_adds_only_the_new_rows(tmp_path):
    db = str(tmp_path / "c.duckdb")
    (tmp_path / "march-1.csv").write_text(_csv(range(0, 100)))
    (tmp_path / "march-2.csv").write_text(_csv(range(50, 150)))
    assert counts(callmeter("import", str(tmp_path / "march-1.csv"), "--db", db).stdout)[1:3] \
        == (100, 0)
    assert counts(callmeter("import", str(tmp_path / "march-2.csv"), "--db", db).stdout)[1:3] \
        == (50, 50)
    got = rows(tmp_path / "c.duckdb", "SELECT count(*) AS n, sum(input_tokens) AS i, "
                                      "count(DISTINCT call_id) AS d FROM calls")[0]
    assert (got["n"], got["d"], got["i"]) == (150, 150, sum(range(150)))


BAD = """started_at,model,input_tokens,output_tokens,status,stream,charged
2025-03-01T10:00:00Z,gpt-4o,10,5,200,true,0.01
2025-03-01T10:00:01Z,gpt-4o,lots,5,200,true,0.01
2025-03-01T10:00:02Z,gpt-4o,10,5.5,200,true,0.01
2025-03-01T10:00:03Z,gpt-4o,10,5,teapot,true,0.01
2025-03-01T10:00:04Z,gpt-4o,10,5,200,maybe,0.01
2025-03-01T10:00:05Z,gpt-4o,10,5,200,true,ten cents
2025-03-01T10:00:06Z,gpt-4o,10,5,200,true,0.01,surplus
2025-03-01T10:00:07Z,gpt-4o,10
2025-03-01T10:00:08Z,gpt-4o,99999999999999999999999,5,200,true,0.01
2025-03-32T10:00:09Z,gpt-4o,10,5,200,true,0.01
2025-03-01T10:00:10Z,gpt-4o,10,5,200,false,-0.00
"""
BAD_LINES = (3, 4, 5, 6, 7, 8, 9, 10, 11)


def test_every_kind_of_bad_csv_row_is_reported_by_line_and_none_invented(tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text(BAD)
    done = callmeter("import", str(src), "--format", "csv", "--db", str(tmp_path / "c.duckdb"),
                     check=False)
    out = done.stdout + done.stderr
    read, imported, duplicate, skipped, rejected = counts(out)
    assert imported + duplicate + skipped + rejected == read
    reported = {int(m) for m in re.findall(r"rejected [^\n]*bad\.csv:(\d+):", out)}
    got = rows(tmp_path / "c.duckdb", "SELECT started_at, input_tokens, output_tokens, status, "
                                      "charged FROM calls ORDER BY started_at")
    assert [r["started_at"].second for r in got] == [0, 10], out  # lines 2 and 12 only
    assert [(r["input_tokens"], r["output_tokens"], r["status"]) for r in got] == [
        (10, 5, 200), (10, 5, 200)]
    assert reported == set(BAD_LINES), out
    assert rejected == len(BAD_LINES)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generic_csv_random_corruption_never_crashes_invents_or_hides_a_row(tmp_path_factory,
                                                                            data):
    """The generic CSV (not fuzzed by tests/ingest): bytes flipped or cut anywhere."""
    tmp = tmp_path_factory.mktemp("csvfuzz")
    raw = bytearray((ROOT / "data" / "samples" / "calls-generic.csv").read_bytes())
    for _ in range(data.draw(st.integers(1, 5))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "comma", "newline"]))
        if action == "flip":
            raw[pos] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[pos:pos + data.draw(st.integers(1, 120))]
        else:
            raw[pos:pos] = b"," if action == "comma" else b"\n"
    bad = tmp / "calls.csv"
    bad.write_bytes(bytes(raw))
    db = tmp / "c.duckdb"
    try:
        results, _ = import_paths(str(db), [bad], "csv",
                                  ImportOptions(fingerprinter=KeyFingerprinter(b"x" * 32)))
    except (CallmeterError, UnicodeError, duckdb.Error) as exc:
        assert str(exc)  # refused as a whole, with a message
        return
    res = results[0]
    assert res.imported + res.duplicates + res.skipped + res.rejected == res.read
    assert len(res.rejections) == res.rejected  # every rejected row reported
    text = bad.read_bytes().decode("utf-8", errors="replace")
    conn = duckdb.connect(str(db), read_only=True)
    try:
        got = conn.execute("SELECT model, input_tokens FROM calls").fetchall()
    finally:
        conn.close()
    assert len(got) == res.imported
    for model, tokens in got:  # nothing invented: each value is in the file
        assert model in text and (tokens == 0 or str(tokens) in text)
