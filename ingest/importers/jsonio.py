"""Reading JSON logs with DuckDB's own readers: JSON Lines, API documents, and their shapes.

Two shapes reach the importers. JSON Lines (one record per line, possibly millions of them) are
read as plain text lines by ``read_csv`` and parsed in SQL, so a torn or broken line becomes a
rejected row with its line number instead of an error for the whole file. A JSON document (an
API page such as ``{"data": {"items": [...]}}`` or a top-level list) is small by nature; it is
read whole by ``read_text`` and its records unnested in SQL.
"""

from __future__ import annotations

import csv
import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from ledger import ImportFormatError, fetch_one, sql_literal


def first_line(head: str) -> str:
    for line in head.splitlines():
        if line.strip():
            return line.strip()
    return ""


TORN_LINES_LOOKED_PAST = 32
"""How many torn lines at the top of a JSON Lines file may hide its first good record."""


def first_record(head: str) -> dict[str, Any] | None:
    """The first good record when the file is JSON Lines, else None.

    Torn records at the top (lines a cut, a corrupted byte or a legacy encoding left unable
    to parse) do not hide the file's shape: the first line that parses decides, provided it is
    an object that starts its line, as a JSON Lines record does (a pretty-printed document's
    nested objects are indented). A pretty-printed document's opening line (``{``, ``[``,
    ``{"data": [``, ``{"object": "list",``) is not a record, and only the file's first line can
    be one, so that line alone says "a document".
    """
    lines = [line for line in head.splitlines() if line.strip()][:TORN_LINES_LOOKED_PAST + 1]
    for i, line in enumerate(lines):
        text = line.strip()
        try:
            value = json.loads(text)
        except ValueError:
            if i == 0 and opens_document(text, lines[1] if len(lines) > 1 else ""):
                return None
            continue          # a torn record: the next line decides
        if i and not line.startswith("{"):
            return None       # an indented value: inside a document
        return value if isinstance(value, dict) else None
    return None


def opens_document(first: str, second: str) -> bool:
    """Whether a first line that does not parse opens a pretty-printed document: it opens an
    object or list and ends in one (``{"data": [``), or ends with a comma and the next line is
    indented or closes it, as a record cut after a comma is not followed by."""
    if "\ufffd" in first or not first.startswith(("{", "[")):
        return False
    if first.endswith(("{", "[")):
        return True
    return first.endswith(",") and (not second or second[:1] in (" ", "\t", '"', "]", "}"))


def is_json_document(head: str) -> bool:
    """True when the file starts like one JSON document (an object or list spanning lines)."""
    return head.lstrip().startswith(("{", "[")) and first_record(head) is None


def looks_like_json(head: str) -> bool:
    """True when the file is JSON (one document or JSON Lines, torn leading lines or not)
    rather than CSV: the choice between a format module's two readers."""
    return head.lstrip()[:1] in ("{", "[") or first_record(head) is not None


def is_json_lines(head: str, record_keys: set[str]) -> bool:
    """True when the first line is a whole JSON object holding one of ``record_keys``."""
    rec = first_record(head)
    return rec is not None and bool(record_keys & set(rec))


def lines_sql(path: Path, numbered: bool = True) -> str:
    """``(_line, _json)`` for every non-blank line of a text file, as text (never fails to read).

    ``numbered=False`` leaves ``_line`` NULL: numbering is a serial window over the whole file
    (about half the staging time), needed only to report rejected rows (see base._stage).
    """
    line = "row_number() OVER ()" if numbered else "CAST(NULL AS BIGINT)"
    return (
        f"SELECT {line} AS _line, _json FROM read_csv("
        f"{sql_literal(path)}, columns={{'_json': 'VARCHAR'}}, header=false, delim='\\x01', "
        "quote='', escape='', auto_detect=false, strict_mode=false, null_padding=true)"
    )


STREAM_ABOVE = 16 << 20
"""A JSON document larger than this (bytes) is streamed item by item (ijson) instead of parsed
whole: DuckDB's JSON functions hold the document and every item at once (a 95 MB page of 400k
items went past the import's 1 GB cap)."""
ITEMS = "_import_items"


def document_items_sql(conn: duckdb.DuckDBPyConnection, path: Path,
                       item_paths: tuple[str, ...]) -> str:
    """``(_line, _json)`` for the records of one JSON document (``_line`` is the item number).

    ``item_paths`` are JSON paths to the record list tried in order (``$.data.items``,
    ``$.data``, ``$``); the first one that is an array wins. Raise ImportFormatError when the
    document is not valid JSON or holds no list of records.
    """
    if path.stat().st_size > STREAM_ABOVE:
        return streamed_items_sql(conn, path, item_paths)
    src = f"read_text({sql_literal(path)})"
    valid, = fetch_one(conn.execute(f"SELECT json_valid(content) FROM {src}"))
    if not valid:
        raise ImportFormatError(f"{path}: not a valid JSON document (truncated or corrupted?)")
    cases = " ".join(
        f"WHEN json_type(content, '{p}') = 'ARRAY' THEN json_extract(content, '{p}[*]')"
        for p in item_paths
    )
    found, = fetch_one(conn.execute(
        f"SELECT CASE {cases} END IS NOT NULL FROM {src}"))
    if not found:
        raise ImportFormatError(f"{path}: a JSON document without a list of records at "
                                + " or ".join(item_paths))
    return (f"SELECT generate_subscripts(items, 1) AS _line, CAST(unnest(items) AS VARCHAR) "
            f"AS _json FROM (SELECT CASE {cases} END AS items FROM {src})")


def _ijson_prefix(path: Path, item_paths: tuple[str, ...]) -> str | None:
    """The ijson prefix of the first of ``item_paths`` that is an array in the document."""
    import ijson

    wanted = {p.removeprefix("$").removeprefix("."): p for p in item_paths}
    found: set[str] = set()
    with open(path, "rb") as fh:
        try:
            for prefix, event, _ in ijson.parse(fh):
                if event == "start_array" and prefix in wanted:
                    found.add(prefix)
                    if prefix == next(iter(wanted)):
                        break
        except ijson.JSONError:
            pass
    return next((p for p in wanted if p in found), None)


def _plain(value: Any) -> Any:
    """ijson's Decimal numbers as JSON numbers, exactly (an int, or a float that prints the
    same digits), else as text: a price like 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def streamed_items_sql(conn: duckdb.DuckDBPyConnection, path: Path,
                       item_paths: tuple[str, ...]) -> str:
    """The records of a large JSON document, one at a time (ijson) into a temp table.

    Items are written as JSON Lines to a temporary file and read back by :func:`lines_sql`, so
    memory holds one item (and DuckDB's buffers, which spill under the import's cap). A
    document cut short keeps the items before the cut and says so.
    """
    import ijson

    prefix = _ijson_prefix(path, item_paths)
    if prefix is None:
        raise ImportFormatError(f"{path}: not a valid JSON document with a list of records at "
                                + " or ".join(item_paths) + " (truncated or corrupted?)")
    item = f"{prefix}.item" if prefix else "item"
    with tempfile.TemporaryDirectory(prefix="callmeter-items-") as tmp:
        lines = Path(tmp) / "items.jsonl"
        torn = False
        with open(path, "rb") as src, open(lines, "w", encoding="utf-8") as dst:
            try:
                for value in ijson.items(src, item):
                    dst.write(json.dumps(_plain(value), ensure_ascii=False) + "\n")
            except (ijson.JSONError, ijson.IncompleteJSONError):
                torn = True
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {ITEMS} AS {lines_sql(lines)}")
    if torn:
        conn.execute(f"INSERT INTO {ITEMS} SELECT coalesce(max(_line), 0) + 1, NULL FROM {ITEMS}")
    return f"SELECT _line, _json FROM {ITEMS}"


def reader_sql(conn: duckdb.DuckDBPyConnection, path: Path, head: str,
               record_keys: set[str], item_paths: tuple[str, ...], numbered: bool = True) -> str:
    """Lines when the file is JSON Lines of records, else the records of one document."""
    if is_json_lines(head, record_keys):
        return lines_sql(path, numbered)
    return document_items_sql(conn, path, item_paths)


BROKEN_LINE = ("CASE WHEN _json IS NULL OR NOT json_valid(_json) THEN 'not valid JSON (a truncated "
               "or corrupted line)' WHEN json_type(_json) <> 'OBJECT' THEN 'not a JSON object' END")


def json_columns_sql(source_sql: str, paths: dict[str, str]) -> str:
    """``_line``, ``_broken`` (why the record is unreadable) and one text column per JSON path.

    All paths are extracted in one parse of the record; an object value comes back as its JSON
    text and a JSON string as the string itself (so ``other`` works either way).
    """
    plist = "[" + ", ".join("'" + p + "'" for p in paths.values()) + "]"
    cols = ", ".join(f'_v[{i + 1}] AS "{name}"' for i, name in enumerate(paths))
    return (f"SELECT _line, _broken, {cols} FROM (SELECT _line, _broken, "
            f"CASE WHEN _broken IS NULL THEN json_extract_string(_json, {plist}) END AS _v "
            f"FROM (SELECT _line, _json, {BROKEN_LINE} AS _broken FROM ({source_sql})))")


def csv_delimiter(header_line: str) -> str:
    """The separator of a header line: the most frequent of , ; tab |."""
    return max((",", ";", "\t", "|"), key=header_line.count)


def csv_rows_sql(conn: duckdb.DuckDBPyConnection, path: Path, columns: tuple[str, ...],
                 header: set[str], delim: str = ",", numbered: bool = True) -> str:
    """``_line``, ``_broken`` and ``columns`` (text; NULL when the header lacks one) of a CSV.

    A well-formed file is read by DuckDB's parallel strict reader (checked with one cheap
    counting pass); a file with a torn or ragged row falls back to the lenient reader, which pads
    short rows with NULLs and drops surplus fields, so the rows whose field count differs from
    the header's are found with :func:`ragged_lines` and get a ``_broken`` reason: the importer
    rejects them by line and imports the rest instead of failing the file.

    ``numbered=False`` is the fast path for a file that ends with a line end: the strict reader
    without the counting pass and without line numbers (``_line`` NULL). A ragged file makes the
    statement reading it fail; the caller then stages the file again numbered (base._stage).
    """
    base = (f"read_csv({sql_literal(path)}, header=true, all_varchar=true, "
            f"delim={delim!r}, quote='\"', escape='\"'")
    strict = base + ")"
    cols = ", ".join(f'"{c}"' if c in header else f'CAST(NULL AS VARCHAR) AS "{c}"'
                     for c in columns)
    if not numbered and ends_with_newline(path):
        return (f"SELECT CAST(NULL AS BIGINT) AS _line, CAST(NULL AS VARCHAR) AS _broken, "
                f"{cols} FROM {strict}")
    broken = "CAST(NULL AS VARCHAR)"
    try:
        fetch_one(conn.execute(f"SELECT count(*) FROM {strict}"))
        reader = strict
    except duckdb.Error:
        reader = base + ", strict_mode=false, null_padding=true)"
        broken = ragged_sql(conn, path, delim)
    rows = (f"SELECT row_number() OVER () + 1 AS _line, {broken} AS _broken, "
            f"{cols} FROM {reader}")
    if not ends_with_newline(path):  # an interrupted export: its last row is cut short
        return (f"WITH r AS ({rows}) SELECT * REPLACE (CASE WHEN _line = (SELECT max(_line) "
                f"FROM r) THEN {TORN!r} ELSE _broken END AS _broken) FROM r")
    return rows


RAGGED = "_import_ragged"


def ragged_lines(path: Path, delim: str = ",") -> tuple[int, list[int]]:
    """The header's field count and the ``_line`` of every row whose field count differs.

    ``_line`` counts as DuckDB's reader does (header = 1, blank lines skipped). Python's csv
    module reads the file once, streamed; called only when DuckDB's strict reader has refused
    the file, because the lenient reader that takes over pads a short row with NULLs and drops
    surplus fields without a word. A field the csv module cannot read (an unterminated quote
    running past its field size limit) ends the scan: DuckDB's reader reports that file.
    """
    out: list[int] = []
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delim, quotechar='"', doublequote=True)
        try:
            header = next((row for row in reader if row), [])
            line = 1
            for row in reader:
                if row:
                    line += 1
                    if len(row) != len(header):
                        out.append(line)
        except csv.Error:
            pass
    return len(header), out


def ragged_sql(conn: duckdb.DuckDBPyConnection, path: Path, delim: str = ",") -> str:
    """``_broken`` for a CSV read by the lenient reader: the rows without the header's width.

    The lines go to a temp table (one bound list, however many) rather than into the SQL text.
    """
    width, lines = ragged_lines(path, delim)
    if not lines:
        return "CAST(NULL AS VARCHAR)"
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {RAGGED} AS SELECT unnest(?::BIGINT[]) AS line",
                 [lines])
    reason = sql_literal(f"the row does not have the header's {width} fields")
    return f"CASE WHEN _line IN (SELECT line FROM {RAGGED}) THEN {reason} END"


TORN = "the last line is cut short (no line end): a truncated file?"


def ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        if fh.tell() == 0:
            return True
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"
