"""Byte-level fuzzing of every line-oriented importer (issue 18).

Each example takes a valid file, then breaks some of its lines (bytes that are not UTF-8, a
line saved in GBK, a line cut short) and maybe puts a BOM in front. Whatever the mutation:

- no crash, and the file is read (not refused as a whole);
- nothing invented: every imported call is one the intact file imports too;
- every good row the mutation did not touch is imported (the intact file without the broken
  lines imports nothing the broken file lacks);
- every broken line is reported, by its line number, and nothing else is rejected that the
  intact file does not reject.

A file whose every non-ASCII line is broken may be taken for a legacy encoding (that is the
rule, text_encoding); then the import must say so in its notes, and only the first property
and the crash check apply.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from importers_helpers import SAMPLES, rows, run_import

NA_ITEM = next(i for i in json.loads((SAMPLES / "newapi-log-page.json").read_text("utf-8"))
               ["data"]["items"] if i["type"] == 2 and "task_id" not in i["other"])


def newapi_jsonl() -> list[bytes]:
    return [json.dumps(dict(NA_ITEM, id=i, created_at=1772324100 + i, request_id=f"r{i:04d}",
                            token_name=f"研发-{i}"), ensure_ascii=False).encode()
            for i in range(1, 16)]


def generic_csv() -> list[bytes]:
    return [b"started_at,model,key_label,input_tokens,output_tokens,charged"] + [
        f"2025-03-03T10:{i:02d}:00Z,gpt-4o,研发-{i},{100 + i},{i},0.001".encode()
        for i in range(15)]


FILES = {  # name -> (lines, header lines that are never broken)
    "newapi.jsonl": (newapi_jsonl(), 0),
    "calls.csv": (generic_csv(), 1),
    "newapi-usage-log.csv": ((SAMPLES / "newapi-usage-log.csv").read_bytes().splitlines(), 1),
    "openai-responses.jsonl": ((SAMPLES / "openai-responses.jsonl").read_bytes().splitlines(), 0),
    "litellm-spend-logs.csv": ((SAMPLES / "litellm-spend-logs.csv").read_bytes().splitlines(), 1),
    "otlp-traces.jsonl": ((SAMPLES / "otlp-traces.jsonl").read_bytes().splitlines(), 0),
}


def broken(line: bytes, how: str, at: int, csv: bool) -> bytes:
    """``line`` broken so that no reader can take it as a good row."""
    if how == "gbk" and not line.isascii():
        return line.decode("utf-8").encode("gb18030")
    if how == "cut":   # before the last separator (CSV) / the closing brace (JSON)
        end = (line.split(b'"')[0] if csv else line).rfind(b"," if csv else b"}")
        if end > 12:     # a cut leaves a dozen bytes at least (a lone "{" opens a document)
            return line[:12 + at % (end - 12)]
    pos = at % len(line)
    return line[:pos] + b"\xff\xc3(" + line[pos:]


def ids_and_rejections(db, result) -> tuple[set[str], set[int]]:
    return ({r[0] for r in rows(db, "SELECT call_id FROM calls")},
            {line for line, _ in result.rejections})


# A fixed seed, so CI runs the same examples each time; seeds 0, 4 and 5 found the torn
# leading lines defect (test_torn_leading_lines_lose_only_themselves keeps it fixed).
@seed(2)
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_broken_lines_cost_only_themselves(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("fuzz")
    name = data.draw(st.sampled_from(sorted(FILES)))
    lines, header = FILES[name]
    csv = name.endswith(".csv")
    body = range(header, len(lines))
    chosen = data.draw(st.sets(st.sampled_from(body), min_size=1, max_size=min(4, len(body))))
    mutated = list(lines)
    for i in chosen:
        how = data.draw(st.sampled_from(["bytes", "gbk", "cut"]))
        mutated[i] = broken(lines[i], how, data.draw(st.integers(0, 10_000)), csv)
    bom = b"\xef\xbb\xbf" if data.draw(st.booleans()) else b""

    def write(path_name: str, content: list[bytes], prefix: bytes = b""):
        path = tmp / path_name
        path.write_bytes(prefix + b"\n".join(content) + b"\n")
        return path

    intact = run_import(tmp / "intact.duckdb", write("intact-" + name, lines))
    rest = run_import(tmp / "rest.duckdb",
                      write("rest-" + name, [x for i, x in enumerate(lines) if i not in chosen]))
    got = run_import(tmp / "got.duckdb", write(name, mutated, bom))

    if got.error is not None:   # only when no line is left to tell the format by
        assert len(chosen) == len(body) and name in got.error and "\n" not in got.error
        return
    intact_ids, intact_rejected = ids_and_rejections(tmp / "intact.duckdb", intact)
    rest_ids, _ = ids_and_rejections(tmp / "rest.duckdb", rest)
    got_ids, got_rejected = ids_and_rejections(tmp / "got.duckdb", got)
    assert len(got.rejections) == got.rejected
    if any(note.startswith("read as") for note in got.notes):   # taken for a legacy encoding
        return
    assert got_ids <= intact_ids                                # nothing invented
    assert rest_ids <= got_ids                                  # untouched good rows all in
    broken_lines = {i + 1 for i in chosen}                      # 1-based file lines
    assert broken_lines <= got_rejected                         # every broken line reported
    assert got_rejected <= broken_lines | intact_rejected


def test_an_otlp_jsonl_file_whose_first_line_is_torn_keeps_the_rest(tmp_path):
    """Found by the fuzz above: a cut first line made the whole file read as one broken
    document, so every good span after it was lost."""
    lines = (SAMPLES / "otlp-traces.jsonl").read_bytes().splitlines(keepends=True)
    intact, torn = tmp_path / "intact.jsonl", tmp_path / "torn.jsonl"
    intact.write_bytes(b"".join(lines[1:]))
    torn.write_bytes(lines[0][:12] + b"\n" + b"".join(lines[1:]))
    want = run_import(tmp_path / "a.duckdb", intact)
    got = run_import(tmp_path / "b.duckdb", torn)
    assert got.error is None and got.imported == want.imported > 0
    assert [line for line, _ in got.rejections] == [1]


JSON_LINES = sorted(name for name in FILES if name.endswith(".jsonl"))


@pytest.mark.parametrize("how", ["bytes", "gbk", "cut"])
@pytest.mark.parametrize("name", JSON_LINES)
def test_torn_leading_lines_lose_only_themselves(tmp_path, name, how):
    """Found by the fuzz above (seeds 0, 4, 5): with the first two lines of a JSON Lines export
    torn, the format was no longer recognised, or the file was read as one broken document, and
    every good row after them was lost. Both torn lines are reported; every other row goes in."""
    lines, _ = FILES[name]
    good = lines[1:] if len(lines) < 4 else lines[2:]
    torn = [broken(lines[0], how, 0, False), broken(lines[1 % len(lines)], how, 3000, False)]
    want_path, got_path = tmp_path / ("rest-" + name), tmp_path / name
    want_path.write_bytes(b"\n".join(good) + b"\n")
    got_path.write_bytes(b"\n".join(torn + good) + b"\n")
    want = run_import(tmp_path / "want.duckdb", want_path)
    got = run_import(tmp_path / "got.duckdb", got_path)
    assert got.error is None, got.error
    want_ids, _ = ids_and_rejections(tmp_path / "want.duckdb", want)
    got_ids, got_rejected = ids_and_rejections(tmp_path / "got.duckdb", got)
    assert want_ids and want_ids <= got_ids
    if any(note.startswith("read as") for note in got.notes):
        return   # an all-ASCII file with two undecodable lines is taken for a legacy encoding
    assert got_ids == want_ids
    assert {1, 2} <= got_rejected


def test_a_pretty_printed_document_is_still_one_document(tmp_path):
    """The other side of looking past torn lines: a document whose first line opens it
    (``{"data": [``) and whose records sit one per line is not taken for JSON Lines."""
    items = [json.loads(line) for line in newapi_jsonl()[:3]]
    path = tmp_path / "page.json"
    path.write_text('{"data": {"items": [\n' + ",\n".join(json.dumps(i) for i in items)
                    + "\n]}}\n", "utf-8")
    got = run_import(tmp_path / "a.duckdb", path)
    assert got.error is None and got.imported == 3 and not got.rejections
