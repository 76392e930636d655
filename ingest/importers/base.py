"""The import pipeline every format shares: stage → fingerprint → check → reject → insert.

A format module only knows its own file: it exposes ``NAME``, ``detect(path, head)`` and
``stage_sql(conn, path, options)``, which returns a ``SELECT`` over DuckDB's own readers giving
every contract column plus ``_line`` (1-based line or item number), ``_reject`` (why the row is
bad, NULL when fine), ``_skip`` (why a non-call row is skipped) and ``_raw_key`` (a key or key id
to fingerprint). It may leave ``tags`` NULL and give ``_tags`` instead, a STRUCT whose non-NULL
fields become the tags MAP: that MAP is then built once per distinct value and joined in (building
a MAP on every row cost about 1 µs of an import's ~10 µs per row). With ``options.line_numbers``
False a module may leave ``_line`` NULL (see :func:`_stage`). Everything else (defaults, ids,
duplicates, the rejected-rows file, the summary) happens here, once.

A module whose log also records money that is not a call (refunds, settlements) adds ``_kind``
(NULL for a call, else an ``ledger.schema.ADJUSTMENT_KINDS`` kind), ``_task_id`` and
``_reason``: those rows go to the ``adjustments`` table, ``charged`` signed as their amount. A
module whose rows can repeat exactly (two identical calls in one second, no request id) adds
``_repeat_rank`` (the row's id in its export): rows with the same ``call_id`` and another rank
are distinct calls and get ``#2``, ``#3``... (see :func:`_number_repeats`). A module may offer
``notes(conn, stage, options)``: lines the import summary prints (e.g. an assumed unit), and
``adopt_earlier_ids(conn, stage)``: give staged rows the ids an older version stored them under.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol, runtime_checkable

import duckdb

from ledger import (
    ADJUSTMENT_COLUMNS,
    CALL_COLUMNS,
    ENDPOINTS,
    NON_BILLABLE_ENDPOINTS,
    SOURCE_ORDER,
    KeyFingerprinter,
    fetch_one,
    id_census,
    insert_new_adjustments,
    insert_new_calls,
    sql_identifier,
    sql_literal,
)
from ledger.insert import insert_calls_then_drop_repeats, is_file_ledger

from ..normalise import normalised_select

STAGE = "_import_stage"

Handoff = Callable[..., int]
"""``handoff(conn, rows_sql, table="calls")``: staged rows to the spool (ingest.imports)."""


class ImportFormat(Protocol):
    """What every format module (``ingest/importers/<format>.py``) provides; mypy checks each
    module in ``FORMATS`` against it."""

    NAME: str

    def detect(self, path: Path, head: str) -> bool:
        """Whether the file (its first 64 KiB in ``head``) is in this format."""
        ...

    def stage_sql(self, conn: duckdb.DuckDBPyConnection, path: Path,
                  options: ImportOptions) -> str:
        """A SELECT over DuckDB's readers: every contract column plus ``_line``, ``_reject``,
        ``_skip`` and ``_raw_key`` (see the module docstring)."""
        ...


@runtime_checkable
class WithNotes(Protocol):
    """A format whose import summary says something (an assumed unit)."""

    def notes(self, conn: duckdb.DuckDBPyConnection, stage: str,
              options: ImportOptions) -> list[str]: ...


@runtime_checkable
class AdoptsEarlierIds(Protocol):
    """A format whose rows an older callmeter stored under other ids."""

    def adopt_earlier_ids(self, conn: duckdb.DuckDBPyConnection, stage: str) -> None: ...


@dataclass
class ImportOptions:
    timezone: str = "UTC"
    # new-api/one-api quota units per US$1 (the site's quota_per_unit); None: not known, and the
    # newapi importer then uses the software's default and says so in the result's notes
    quota_per_unit: Decimal | None = None
    column_map: dict[str, str] = field(default_factory=dict)
    fingerprinter: KeyFingerprinter | None = None
    # DuckDB's memory cap while a file is imported; the staged rows spill to disk beyond it,
    # so a 10M-row export stays well under 2 GB of RSS (None: leave DuckDB's setting alone).
    memory_limit: str | None = "1GB"
    # Internal: False asks a format module for ``_line`` NULL (no serial numbering pass). The
    # pipeline stages that way first and numbers the file only when a row is rejected.
    line_numbers: bool = True
    # the files' text encoding (a Python codec name); None: UTF-8, else detected (text_encoding)
    encoding: str | None = None
    # The name the imports log and the result give the file (an upload's own name, where the
    # file itself sits in a temporary folder); None: its path.
    source_name: str | None = None


@dataclass
class ImportResult:
    file: str
    format: str
    read: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped: int = 0
    rejected: int = 0
    queued: int = 0
    rejected_file: str | None = None
    skipped_by: dict[str, int] = field(default_factory=dict)
    rejections: list[tuple[int, str]] = field(default_factory=list)
    adjustments: int = 0          # new rows in the adjustments table (refunds, settlements...)
    notes: list[str] = field(default_factory=list)
    error: str | None = None      # the file could not be read at all (nothing imported)

    def summary(self) -> str:
        if self.error:
            return self.error
        parts = [f"read {self.read}", f"imported {self.imported}",
                 f"duplicate {self.duplicates}", f"skipped {self.skipped}",
                 f"rejected {self.rejected}"]
        if self.adjustments:
            parts.append(f"adjustments {self.adjustments}")
        if self.queued:
            parts.append(f"queued for the ledger's owner {self.queued}")
        return f"{self.file} [{self.format}]: " + ", ".join(parts)


def head_text(path: Path, size: int = 65536) -> str:
    with open(path, "rb") as fh:
        raw = fh.read(size)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.decode("utf-8", errors="replace")


def detect_format(path: Path, formats: dict[str, ImportFormat],
                  label: str | None = None) -> ImportFormat:
    from ledger import ImportFormatError

    head = head_text(path)
    # a torn first line (cut or corrupted) must not hide the format: the rest of the head then
    # decides, for line formats (a header line or a document's opening always parses)
    rest = head.split("\n", 1)[1] if "\n" in head else ""
    for candidate in (head, rest):
        for module in formats.values():
            if candidate and module.detect(path, candidate):
                return module
    raise ImportFormatError(
        f"{label or path}: cannot tell its format; pass --format ({'|'.join(formats)})"
    )


def stage_columns(fields_sql: dict[str, str]) -> str:
    """The contract column list of a staging SELECT: given expressions, NULL for the rest."""
    out = []
    for name, typ in CALL_COLUMNS.items():
        expr = fields_sql.get(name, "NULL")
        out.append(f"CAST({expr} AS {typ}) AS {name}")
    return ",\n  ".join(out)


_COMMON_CHECKS = f"""
  CASE
    WHEN (model IS NULL OR trim(model) = '')
         AND coalesce(endpoint NOT IN ({", ".join(map(sql_literal, NON_BILLABLE_ENDPOINTS))}), true)
      THEN 'field model: missing (only model lists, token counts and probes may leave it out)'
    WHEN started_at IS NULL THEN 'field started_at: missing or not a time'
    WHEN endpoint IS NOT NULL AND endpoint NOT IN ({", ".join(map(sql_literal, ENDPOINTS))})
      THEN 'field endpoint: ''' || endpoint || ''' is not one of {"/".join(ENDPOINTS)}'
    WHEN cached_tokens > input_tokens THEN 'field cached_tokens: more than input_tokens'
    WHEN coalesce(cache_write_tokens, 0) > input_tokens - coalesce(cached_tokens, 0)
      THEN 'field cache_write_tokens: more than input_tokens less cached_tokens'
    WHEN coalesce(cache_write_long_tokens, 0) > coalesce(cache_write_tokens, 0)
      THEN 'field cache_write_long_tokens: more than cache_write_tokens'
    WHEN reasoning_tokens > output_tokens THEN 'field reasoning_tokens: more than output_tokens'
    WHEN requests IS NOT NULL AND requests < 1 THEN 'field requests: must be at least 1'
  END"""


def _stage(conn: duckdb.DuckDBPyConnection, module: ImportFormat, path: Path,
           options: ImportOptions) -> None:
    """Stage the file's rows; unnumbered first, numbered again only when a row is rejected.

    Numbering lines is a serial window over the whole file that roughly doubled staging time,
    and line numbers matter only for rejected rows: a clean file (the usual case) is staged
    once without them. A file with a rejected row, or one the fast reader refuses (a ragged
    CSV), is staged a second time with them, exactly as before.
    """
    if options.line_numbers:
        try:
            _create_stage(conn, module.stage_sql(conn, path, replace(options, line_numbers=False)))
            bad = fetch_one(conn.execute(f"SELECT count(*) FROM {STAGE} WHERE _reject IS NOT NULL "
                               "AND _skip IS NULL"))[0]
        except duckdb.Error:  # e.g. the strict CSV reader refusing a ragged row
            bad = -1
        if bad == 0:
            _fingerprint_keys(conn, options.fingerprinter)
            return
    _create_stage(conn, module.stage_sql(conn, path, options))
    _fingerprint_keys(conn, options.fingerprinter)


def _create_stage(conn: duckdb.DuckDBPyConnection, sql: str) -> None:
    # the common checks are applied in the same pass (an UPDATE would keep an undo copy); an
    # adjustment (``_kind`` set) is money, not a call: the call checks do not apply to it
    call = " AND _kind IS NULL" if "_kind" in conn.sql(sql).columns else ""
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {STAGE} AS SELECT * REPLACE (CASE WHEN _reject "
                 f"IS NULL AND _skip IS NULL{call} THEN {_COMMON_CHECKS} ELSE _reject END "
                 f"AS _reject) FROM ({sql})")


def _stage_columns(conn: duckdb.DuckDBPyConnection) -> list[str]:
    return conn.sql(f"SELECT * FROM {STAGE} LIMIT 0").columns


GOOD = "_reject IS NULL AND _skip IS NULL"


def _number_repeats(conn: duckdb.DuckDBPyConnection) -> None:
    """Give distinct rows that share a ``call_id`` ``#2``, ``#3``... by their ``_repeat_rank``.

    Two identical calls in the same second without a request id hash alike; their ids in the
    export (the admin route's row id, ``id % 1024`` or the row's position on the page) differ,
    so they are two calls. Rows with the same id are one row read twice. Done only when some
    ``call_id`` repeats (the id census), so a clean file pays nothing. The window groups rows by
    id, so the new stage is put back in the file's order (the stage's order is the file's:
    :func:`_keyed_rows_sql` numbers rows by it).
    """
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {STAGE} AS SELECT * EXCLUDE (_n, _staged) REPLACE (CASE "
        f"WHEN {GOOD} THEN call_id || CASE WHEN _n > 1 THEN '#' || _n ELSE '' END ELSE call_id "
        "END AS call_id) FROM (SELECT *, rowid AS _staged, CASE WHEN " + GOOD + " THEN "
        f"dense_rank() OVER (PARTITION BY call_id, {GOOD} ORDER BY _repeat_rank) END AS _n "
        f"FROM {STAGE}) ORDER BY _staged")


def _fingerprint_keys(conn: duckdb.DuckDBPyConnection, fp: KeyFingerprinter | None) -> None:
    # Keys are fingerprinted once per distinct value and joined in when the good rows are read
    # (good_rows_sql): updating every staged row would keep a per-row undo copy in memory, which
    # on a 10M-row file is more than the import's memory cap.
    conn.execute("CREATE OR REPLACE TEMP TABLE _import_keys (raw VARCHAR, fp VARCHAR)")
    keys = [r[0] for r in conn.execute(
        f"SELECT DISTINCT _raw_key FROM {STAGE} WHERE _raw_key IS NOT NULL AND key_id IS NULL"
    ).fetchall()]
    if keys:
        if fp is None:
            raise ValueError("an importer met key values but no fingerprinter was given")
        conn.executemany("INSERT INTO _import_keys VALUES (?, ?)",
                         [[k, fp.fingerprint(k)] for k in keys])


def write_rejections(rows: list[tuple[int, str]], file: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(file).name)
    out = folder / f"{stamp}-{name}.csv"
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["file", "line", "reason"])
    writer.writerows([file, line, reason] for line, reason in rows)
    out.write_text(buf.getvalue(), encoding="utf-8")
    return out


def good_rows_sql(tag_fields: list[str] | None = None, kinds: bool = False) -> str:
    """The staged rows that are calls, keys fingerprinted, normalised (never the raw key).

    With ``tag_fields`` (the fields of the stage's ``_tags`` STRUCT, see :func:`_build_tags`),
    ``tags`` comes from ``_import_tags`` joined on those fields. ``kinds``: the stage has a
    ``_kind`` column, and its adjustment rows are left out.
    """
    return normalised_select(_keyed_rows_sql(tag_fields, "s._kind IS NULL" if kinds else None))


def occurrences_sql(rows_sql: str) -> str:
    """``rows_sql`` with the 2nd, 3rd... of identical rows (same hashed id) as ``#2``, ``#3``.

    A row whose source gave no id gets a hash of its fields (normalise.call_id_sql); two equal
    calls in one export (same second, same tokens, no request id) hash alike but are two calls.
    Numbering the occurrence within the file keeps both, and importing the file again gives the
    same ids, so it still adds nothing. A row with its own id is left alone: the same id twice
    is one call read twice. Applied only when the stage's id census found rows without an id.
    Numbered in the file's order (``_source_order``, given where the rows were staged), so the
    same row gets the same number on every run.
    """
    return (f"SELECT * EXCLUDE (_hashed, _occ) REPLACE (CASE WHEN _occ > 1 "
            f"THEN call_id || '#' || _occ ELSE call_id END AS call_id) FROM (SELECT *, CASE WHEN "
            f"_hashed THEN row_number() OVER (PARTITION BY call_id, _hashed ORDER BY "
            f"{SOURCE_ORDER}) END AS _occ FROM ({rows_sql}))")


def _keyed_rows_sql(tag_fields: list[str] | None, where: str | None) -> str:
    """The good staged rows (and ``where``), key fingerprints and tags joined in."""
    tags, join = "", ""
    if tag_fields:
        tags = ", CASE WHEN s._tags IS NOT NULL THEN coalesce(s.tags, t.tags) END AS tags"
        on = " AND ".join(f"t.f{i} IS NOT DISTINCT FROM s._tags.{sql_identifier(f)}"
                          for i, f in enumerate(tag_fields))
        join = f" LEFT JOIN _import_tags t ON {on}"
    extra = f" AND {where}" if where else ""
    # numbered by the stage's rowid (the file's order) before the joins, which may reorder
    return (f"SELECT s.* REPLACE (coalesce(s.key_id, k.fp) AS key_id, NULL AS _raw_key{tags}), "
            f"s.call_id IS NULL AS _hashed, s.rowid AS {SOURCE_ORDER} "
            f"FROM {STAGE} s LEFT JOIN _import_keys k ON s._raw_key = k.raw{join} "
            f"WHERE s._reject IS NULL AND s._skip IS NULL{extra}")


def adjustment_rows_sql(tag_fields: list[str] | None = None) -> str:
    """The staged adjustment rows as ``adjustments`` columns (``charged`` is the signed amount),
    with their ``_source_order``."""
    src = _keyed_rows_sql(tag_fields, "s._kind IS NOT NULL")
    exprs = {"adjustment_id": "call_id", "occurred_at": "started_at", "kind": "_kind",
             "amount": "charged", "task_id": "_task_id", "reason": "_reason"}
    cols = ", ".join(f"CAST({exprs.get(c, c)} AS {t}) AS {c}"
                     for c, t in ADJUSTMENT_COLUMNS.items())
    return f"SELECT {cols}, {SOURCE_ORDER} FROM ({src})"


def _build_tags(conn: duckdb.DuckDBPyConnection) -> list[str] | None:
    """``_import_tags``: one tags MAP per distinct ``_tags`` of the good staged rows.

    Returns the STRUCT's field names, or None when the stage has no ``_tags`` column.
    """
    rel = conn.sql(f"SELECT * FROM {STAGE} LIMIT 0")
    if "_tags" not in rel.columns:
        return None
    fields = [name for name, _ in rel.types[rel.columns.index("_tags")].children]
    cols = ", ".join(f"_tags.{sql_identifier(f)} AS f{i}" for i, f in enumerate(fields))
    entries = ", ".join(f"{{'key': {sql_literal(f)}, 'value': CAST(f{i} AS VARCHAR)}}"
                        for i, f in enumerate(fields))
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _import_tags AS SELECT *, map_from_entries(list_filter("
        f"[{entries}], e -> e.value IS NOT NULL)) AS tags FROM (SELECT DISTINCT {cols} "
        f"FROM {STAGE} WHERE _reject IS NULL AND _skip IS NULL)")
    return fields


def import_file(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    module: ImportFormat,
    options: ImportOptions,
    rejected_dir: Path,
    *,
    handoff: Handoff | None = None,
    label: str | None = None,
    dropped: list[tuple[int, str]] | None = None,
) -> ImportResult:
    """Import one file through ``conn``. With ``handoff``, good rows go to the spool instead.

    ``label`` names the file in messages (``x.zip:member.csv``; default ``path``); ``dropped``
    are lines left out before reading (not decodable, see text_encoding), reported as rejected
    with the other rows' lines counted as in the original file.
    """
    with _memory_limit(conn, options.memory_limit):
        return _import_file(conn, path, module, options, rejected_dir, handoff,
                            label or str(path), dropped or [])


@contextmanager
def _memory_limit(conn: duckdb.DuckDBPyConnection, limit: str | None) -> Iterator[None]:
    if limit is None:
        yield
        return
    before = fetch_one(conn.execute("SELECT current_setting('memory_limit')"))[0]
    conn.execute(f"SET memory_limit = {sql_literal(limit)}")
    try:
        yield
    finally:  # RESET when it was the default: re-setting the rounded text would drift
        conn.execute("RESET memory_limit")
        if fetch_one(conn.execute("SELECT current_setting('memory_limit')"))[0] != before:
            conn.execute(f"SET memory_limit = {sql_literal(before)}")


def _import_file(conn: duckdb.DuckDBPyConnection, path: Path, module: ImportFormat,
                 options: ImportOptions, rejected_dir: Path, handoff: Handoff | None,
                 label: str, dropped: list[tuple[int, str]]) -> ImportResult:
    from .text_encoding import shifted

    result = ImportResult(file=options.source_name or label, format=module.NAME)
    _stage(conn, module, path, options)
    columns = _stage_columns(conn)
    kinds = "_kind" in columns
    # one id census for the whole file (calls and adjustments have distinct ids): when every
    # good row has its own id, neither insert needs its per-id window
    clean = id_census(conn, f"SELECT call_id FROM {STAGE} WHERE {GOOD}")[1]
    if not clean and "_repeat_rank" in columns:
        _number_repeats(conn)
        clean = id_census(conn, f"SELECT call_id FROM {STAGE} WHERE {GOOD}")[1]
    if handoff is None and isinstance(module, AdoptsEarlierIds):
        module.adopt_earlier_ids(conn, STAGE)     # rows an older callmeter stored under other ids
    result.read = fetch_one(conn.execute(f"SELECT count(*) FROM {STAGE}"))[0] + len(dropped)
    for reason, n in conn.execute(
        f"SELECT _skip, count(*) FROM {STAGE} WHERE _skip IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall():
        result.skipped_by[reason] = n
        result.skipped += n
    result.rejections = conn.execute(
        f"SELECT _line, _reject FROM {STAGE} WHERE _reject IS NOT NULL AND _skip IS NULL "
        "ORDER BY _line"
    ).fetchall()
    if dropped:
        result.rejections = shifted(result.rejections, dropped)
    result.rejected = len(result.rejections)
    if result.rejections:
        result.rejected_file = str(write_rejections(result.rejections, result.file, rejected_dir))
    tag_fields = _build_tags(conn)
    if isinstance(module, WithNotes):
        result.notes.extend(module.notes(conn, STAGE, options))
    rows = good_rows_sql(tag_fields, kinds)
    rows = occurrences_sql(rows) if not clean else f"SELECT * EXCLUDE (_hashed) FROM ({rows})"
    if handoff is not None:
        result.queued = handoff(conn, rows)
        if kinds:
            result.queued += handoff(conn, adjustment_rows_sql(tag_fields), "adjustments")
    else:
        conn.execute("BEGIN TRANSACTION")
        try:
            good = result.read - result.skipped - result.rejected
            result.imported = _insert(conn, rows, clean)
            if kinds:
                result.adjustments = insert_new_adjustments(
                    conn, adjustment_rows_sql(tag_fields), numbered=True)
            result.duplicates = good - result.imported - result.adjustments
            conn.execute(
                "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [stampid(), result.file, module.NAME, datetime.now(UTC), result.read,
                 result.imported, result.duplicates, result.skipped, result.rejected,
                 result.rejected_file],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    conn.execute(f"DROP TABLE IF EXISTS {STAGE}")  # the raw keys go with it
    conn.execute("DROP TABLE IF EXISTS _import_keys")
    conn.execute("DROP TABLE IF EXISTS _import_tags")
    return result


def _insert(conn: duckdb.DuckDBPyConnection, rows_sql: str, clean: bool) -> int:
    """Insert the good rows; how many were new. A DuckDB file ledger inserts every row in one
    pass and deletes the repeats after (only when there are any), as ``callmeter load`` does;
    a lake (whose row ids are not the file's) keeps the anti-join, with the per-id window only
    when an id repeats. The rows carry their place in the file; it orders the insert only when
    an id repeats (``clean`` False), the first row of it then being the one kept."""
    if is_file_ledger(conn):
        return insert_calls_then_drop_repeats(conn, rows_sql, numbered=True,
                                              first_wins=not clean)[1]
    return insert_new_calls(conn, rows_sql, dedupe_within=not clean, numbered=True)


def stampid() -> str:
    return datetime.now(UTC).strftime("imp-%Y%m%dT%H%M%S%f")
