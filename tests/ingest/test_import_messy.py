"""Real exports are messy (issue 18): one bad line, a legacy encoding, a BOM, gzip and zip
archives, folders, identical rows. None of them may cost the good rows of a file."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from importers_helpers import SAMPLES, options, rows, run_import

from ingest.imports import import_paths

ROOT = Path(__file__).resolve().parents[2]
NA_ITEMS = json.loads((SAMPLES / "newapi-log-page.json").read_text("utf-8"))["data"]["items"]


def newapi_lines(n: int) -> list[bytes]:
    """``n`` distinct new-api consume records (type 2, a request id each) as JSON Lines."""
    base = next(i for i in NA_ITEMS if i["type"] == 2 and "task_id" not in i["other"])
    out = []
    for i in range(n):
        item = dict(base, id=i + 1, created_at=1772324100 + i, request_id=f"req-{i:06d}",
                    token_name="研发-张三")
        out.append(json.dumps(item, ensure_ascii=False).encode("utf-8"))
    return out


def generic_csv_lines(n: int) -> list[bytes]:
    head = b"started_at,model,key_label,endpoint,status,input_tokens,output_tokens,charged"
    body = [f"2025-03-03T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z,gpt-4o,"
            f"研发-张三,chat,200,{100 + i},{i % 50},0.001".encode() for i in range(n)]
    return [head, *body]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMETER_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "callmeter.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_one_line_not_utf8_in_20k_is_rejected_alone(tmp_path, kind):
    lines = newapi_lines(20_000) if kind == "jsonl" else generic_csv_lines(20_000)
    bad = 10_001 if kind == "jsonl" else 10_002          # the file's line number
    lines[bad - 1] = lines[bad - 1].replace("研发".encode(), "研发".encode("gbk"))
    path = tmp_path / f"export.{kind}"
    path.write_bytes(b"\n".join(lines) + b"\n")
    db = tmp_path / "ledger.duckdb"
    out = cli("import", str(path), "--db", str(db), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"rejected {path}:{bad}: not UTF-8 text" in out.stdout
    assert "CSV Error" not in out.stdout + out.stderr
    assert rows(db, "SELECT count(*) FROM calls") == [(19_999,)]
    again = cli("import", str(path), "--db", str(db), cwd=tmp_path)
    assert "imported 0" in again.stdout


def test_rejected_line_numbers_count_the_dropped_line(tmp_path):
    lines = generic_csv_lines(10)
    lines[3] = lines[3].replace("研发".encode(), "研发".encode("gbk"))      # line 4
    lines[7] = lines[7].replace(b",gpt-4o,", b",,")                        # line 8: no model
    path = tmp_path / "calls.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    r = run_import(tmp_path / "l.duckdb", path)
    assert [line for line, _ in r.rejections] == [4, 8]
    assert "model" in r.rejections[1][1]
    assert r.imported == 8 and r.read == 10


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_whole_file_in_a_legacy_encoding_is_detected(tmp_path, encoding):
    text = (SAMPLES / "newapi-usage-log.csv").read_text("utf-8")
    plain = tmp_path / "utf8.csv"
    plain.write_text(text, "utf-8")
    legacy = tmp_path / "excel.csv"
    legacy.write_bytes(text.encode(encoding))
    want = run_import(tmp_path / "a.duckdb", plain)
    got = run_import(tmp_path / "b.duckdb", legacy)
    assert any("gb18030" in n for n in got.notes)
    assert (got.imported, got.rejected) == (want.imported, want.rejected)
    labels = "SELECT key_label, model, input_tokens FROM calls ORDER BY ALL"
    assert rows(tmp_path / "b.duckdb", labels) == rows(tmp_path / "a.duckdb", labels)
    assert ("研发-张三",) in rows(tmp_path / "b.duckdb", "SELECT DISTINCT key_label FROM calls")


def test_encoding_option_wins_over_detection(tmp_path):
    lines = generic_csv_lines(5)
    path = tmp_path / "latin.csv"
    path.write_bytes(b"\n".join(lines).decode("utf-8").replace("研发-张三", "Zoë").encode(
        "cp1252") + b"\n")
    r = run_import(tmp_path / "l.duckdb", path, encoding="cp1252")
    assert r.imported == 5
    assert rows(tmp_path / "l.duckdb", "SELECT DISTINCT key_label FROM calls") == [("Zoë",)]


def test_unknown_encoding_is_one_clear_line(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_bytes(b"\n".join(generic_csv_lines(2)) + b"\n")
    out = cli("import", str(path), "--encoding", "klingon", "--db", str(tmp_path / "l.duckdb"),
              cwd=tmp_path)
    assert out.returncode == 1
    assert "unknown encoding 'klingon'" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("name", ["newapi-log-page.json", "newapi-usage-log.csv",
                                  "calls-generic.csv", "openai-responses.jsonl",
                                  "litellm-spend-logs.json"])
def test_utf8_bom_is_skipped(tmp_path, name):
    plain = run_import(tmp_path / "a.duckdb", SAMPLES / name)
    bom = tmp_path / name
    bom.write_bytes(b"\xef\xbb\xbf" + (SAMPLES / name).read_bytes())
    got = run_import(tmp_path / "b.duckdb", bom)
    assert (got.imported, got.rejected, got.read) == (plain.imported, plain.rejected, plain.read)
    assert got.imported > 0


def test_utf16_export_is_read(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_bytes((SAMPLES / "calls-generic.csv").read_text("utf-8").encode("utf-16"))
    r = run_import(tmp_path / "l.duckdb", path)
    assert r.imported == 4 and r.rejected == 0


def test_gzip_exports_are_read_as_their_inner_format(tmp_path):
    for name in ("calls-generic.csv", "otlp-traces.jsonl", "newapi-log-page.json"):
        gz = tmp_path / f"{name}.gz"
        gz.write_bytes(gzip.compress((SAMPLES / name).read_bytes()))
        want = run_import(tmp_path / f"{name}.plain.duckdb", SAMPLES / name)
        got = run_import(tmp_path / f"{name}.duckdb", gz)
        assert got.file == str(gz)
        assert (got.format, got.imported) == (want.format, want.imported) and got.imported > 0


def test_zip_imports_every_member_and_says_which(tmp_path):
    archive = tmp_path / "exports.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(SAMPLES / "calls-generic.csv", "march/calls.csv")
        z.write(SAMPLES / "newapi-log-page.json", "page.json")
        z.writestr("page.json.gz", gzip.compress((SAMPLES / "oneapi-log-page.json").read_bytes()))
        z.writestr("__MACOSX/._page.json", b"\x00\x05junk")
        z.writestr("../../evil.csv", (SAMPLES / "calls-generic.csv").read_bytes())
    db = tmp_path / "l.duckdb"
    results, _ = import_paths(str(db), [archive], "auto", options())
    labels = [r.file for r in results]
    # a member named to climb out of the folder is not extracted at all
    assert labels == [f"{archive}:march/calls.csv", f"{archive}:page.json",
                      f"{archive}:page.json.gz"]
    assert all(r.imported > 0 or r.duplicates > 0 for r in results)
    assert not (tmp_path.parent / "evil.csv").exists() and not (tmp_path / "evil.csv").exists()


def test_folder_imports_its_files_and_recursive_goes_deeper(tmp_path):
    folder = tmp_path / "exports"
    (folder / "older").mkdir(parents=True)
    (folder / "calls.csv").write_bytes((SAMPLES / "calls-generic.csv").read_bytes())
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    (folder / "older" / "page.json").write_bytes((SAMPLES / "newapi-log-page.json").read_bytes())
    db = tmp_path / "l.duckdb"
    flat, _ = import_paths(str(db), [folder], "auto", options())
    assert [r.file for r in flat] == [str(folder / "calls.csv")]
    deep, _ = import_paths(str(db), [folder], "auto", options(), recursive=True)
    assert [r.file for r in deep] == [str(folder / "calls.csv"), str(folder / "older/page.json")]
    assert deep[1].imported > 0 and deep[0].imported == 0


def test_empty_folder_and_unreadable_member_are_one_line_each(tmp_path):
    (tmp_path / "empty").mkdir()
    out = cli("import", str(tmp_path / "empty"), "--db", str(tmp_path / "l.duckdb"), cwd=tmp_path)
    assert out.returncode == 1 and "a folder with no files to import" in out.stderr
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.csv").write_bytes((SAMPLES / "calls-generic.csv").read_bytes())
    (folder / "notes.txt").write_text("meeting notes, not an export\n")
    out = cli("import", str(folder), "--db", str(tmp_path / "l.duckdb"), cwd=tmp_path)
    assert out.returncode == 0
    assert "imported 4" in out.stdout and "notes.txt: cannot tell its format" in out.stderr
    assert "Traceback" not in out.stderr


def test_identical_rows_without_an_id_are_two_calls(tmp_path):
    head, first, second = generic_csv_lines(2)
    path = tmp_path / "calls.csv"
    path.write_bytes(b"\n".join([head, first, first, first, second]) + b"\n")
    db = tmp_path / "l.duckdb"
    assert run_import(db, path).imported == 4
    assert run_import(db, path).imported == 0
    ids = [r[0] for r in rows(db, "SELECT call_id FROM calls ORDER BY call_id")]
    assert len(set(ids)) == 4 and sum(i.endswith(("#2", "#3")) for i in ids) == 2


def test_identical_rows_with_their_own_id_stay_one_call(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text("call_id,started_at,model,input_tokens\nc1,2025-03-03T10:00:00Z,gpt-4o,5\n"
                    "c1,2025-03-03T10:00:00Z,gpt-4o,5\n", "utf-8")
    assert run_import(tmp_path / "l.duckdb", path).imported == 1


@pytest.mark.parametrize("name", ["openai-responses.jsonl", "otlp-traces.jsonl",
                                  "litellm-spend-logs.csv"])
def test_other_formats_keep_a_repeated_line_per_their_ids(tmp_path, name):
    """A line repeated verbatim: formats with a request id keep one call, none collapse
    two distinct calls (the same class of defect as the generic CSV's)."""
    src = (SAMPLES / name).read_bytes().splitlines()
    header = [src[0]] if name.endswith(".csv") else []
    body = src[1:] if header else src
    path = tmp_path / name
    path.write_bytes(b"\n".join(header + body + body[:1]) + b"\n")
    once = run_import(tmp_path / "a.duckdb", SAMPLES / name)
    twice = run_import(tmp_path / "b.duckdb", path)
    assert twice.imported == once.imported
