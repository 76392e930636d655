"""DuckLake ledgers: the same SQL on a PostgreSQL catalog plus Parquet files, many writers.

``--db 'ducklake:postgres:dbname=callmeter host=db.internal' --data-path /mnt/lake/`` opens a
DuckDB connection with the lake attached as ``lake`` and made the default (``USE lake``), so
migrations, the loader's anti-join, ``priced_calls`` and the dashboard's queries run as they
are. The connection comes wrapped in :class:`LakeConnection`, which takes the lake's writer
lock around every write transaction (see :mod:`ledger.lake_lock` for the guarantee) and passes
statements through :func:`ledger.dialect.for_lake`.

Extensions load offline from the PyPI packages ``duckdb-extension-postgres`` and
``duckdb-extension-ducklake`` (``-httpfs`` for an ``s3://`` data path) when installed; the
postgres file must be named ``postgres_scanner.duckdb_extension`` for ``LOAD``, so it is linked
under that name in a private cache folder. Without those packages, DuckDB's ``INSTALL`` is used
(network access needed).
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import duckdb

from .dialect import explain_refusal, for_lake
from .errors import LedgerError
from .lake_lock import WriterLock, redact
from .sql import sql_literal

Call = Callable[[str, Any], Any]  # a DuckDB method: execute, executemany, sql

__all__ = ["LAKE_ALIAS", "LakeConnection", "connect_lake", "parse_target", "load_extensions"]

LAKE_ALIAS = "lake"
REMOTE_PREFIXES = ("s3://", "s3a://", "gs://", "gcs://", "r2://", "az://", "azure://",
                   "abfss://", "http://", "https://")
# DuckLake's own commit retry (for appends racing non-callmeter writers); defaults are 10/100ms.
RETRY_SETTINGS = {"ducklake_max_retry_count": 100, "ducklake_retry_wait_ms": 50,
                  "ducklake_retry_backoff": 1.5}
STATEMENT_RETRIES = 5

_BEGIN = re.compile(r"^(BEGIN|START\s+TRANSACTION)\b", re.I)
_END = re.compile(r"^(COMMIT|END|ROLLBACK|ABORT)\b", re.I)
_WHOLE_TX = re.compile(r";\s*(COMMIT|END)\s*;?\s*$", re.I)
_WRITE = re.compile(
    r"^(INSERT|UPDATE|DELETE|MERGE|CREATE|DROP|ALTER|TRUNCATE|COMMENT|CALL|CHECKPOINT"
    r"|COPY\s+[\w.\"]+\s+FROM)\b", re.I)
_TEMP = re.compile(r"^CREATE\s+(OR\s+REPLACE\s+)?TEMP(ORARY)?\b", re.I)
_COMMENTS = re.compile(r"^(\s+|--[^\n]*\n?|/\*.*?\*/)+", re.S)


def statement_kind(sql: str) -> str:
    """``begin``, ``end``, ``write`` (outside a transaction this takes the lock) or ``read``."""
    head = _COMMENTS.sub("", sql, count=1)
    if _BEGIN.match(head):
        return "write" if _WHOLE_TX.search(head) else "begin"
    if _END.match(head):
        return "end"
    if _WRITE.match(head) and not _TEMP.match(head):
        return "write"
    return "read"


def parse_target(db: str) -> tuple[str, str]:
    """``ducklake:postgres:dbname=x`` → (``postgres``, ``dbname=x``); others → (kind, rest)."""
    if not db.startswith("ducklake:"):
        raise LedgerError(f"not a DuckLake target: {redact(db)!r} (want 'ducklake:postgres:…')")
    rest = db[len("ducklake:"):]
    kind, sep, tail = rest.partition(":")
    if sep and kind in ("postgres", "sqlite", "duckdb", "mysql"):
        return kind, tail
    return "duckdb", rest


def _packaged_extension(name: str) -> Path | None:
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(root.glob(f"extensions/v{duckdb.__version__}/{name}.duckdb_extension"))
    return found[0] if found else None


def _cache_dir() -> Path:
    folder = Path.home() / ".cache" / "callmeter" / f"duckdb-{duckdb.__version__}"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def _load_name(name: str, packaged: Path) -> Path:
    """The path to LOAD: DuckDB names an extension by its file name (postgres_scanner)."""
    if name != "postgres":
        return packaged
    link = _cache_dir() / "postgres_scanner.duckdb_extension"
    if not (link.is_symlink() and link.resolve() == packaged.resolve()):
        tmp = link.with_name(f"{link.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(packaged)
        os.replace(tmp, link)
    return link


def load_extensions(conn: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
    """Load DuckDB extensions, offline from their PyPI packages when installed."""
    for name in names:
        packaged = _packaged_extension(name)
        try:
            if packaged is not None:
                conn.execute(f"LOAD {sql_literal(_load_name(name, packaged))}")
            else:
                conn.execute(f"INSTALL {name}")
                conn.execute(f"LOAD {name}")
        except duckdb.Error as exc:
            raise LedgerError(
                f"cannot load DuckDB's {name} extension ({exc}); install it offline with "
                f"pip install duckdb-extension-{name}=={duckdb.__version__} "
                "(or pip install 'callmeter[lake]')"
            ) from exc


def _data_path(data_path: str | None) -> str | None:
    if not data_path:
        return None
    if data_path.startswith(REMOTE_PREFIXES):
        return data_path if data_path.endswith("/") else data_path + "/"
    local = Path(data_path).expanduser().resolve()
    local.mkdir(parents=True, exist_ok=True)
    return str(local) + "/"


def _attach(conn: duckdb.DuckDBPyConnection, db: str, data_path: str | None,
            read_only: bool) -> None:
    options = []
    if data_path:
        options.append(f"DATA_PATH {sql_literal(data_path)}")
    if read_only:
        options.append("READ_ONLY")
    opts = f" ({', '.join(options)})" if options else ""
    try:
        conn.execute(f"ATTACH {sql_literal(db)} AS {LAKE_ALIAS}{opts}")
    except duckdb.Error as exc:
        hint = ""
        if "DATA_PATH" in str(exc) and not data_path:
            hint = "; a new lake needs --data-path (a folder or s3:// prefix for its Parquet files)"
        raise LedgerError(f"cannot open the lake {redact(db)}: {redact(str(exc))}{hint}") from exc
    conn.execute(f"USE {LAKE_ALIAS}")


def connect_lake(db: str, data_path: str | None = None, *, read_only: bool = False,
                 lock_timeout: float = 300.0) -> LakeConnection:
    """Open the DuckLake ledger named by ``db`` (``ducklake:postgres:<libpq conninfo>``), migrated.

    ``data_path`` is needed when the lake is created; afterwards the catalog remembers it.
    """
    kind, conninfo = parse_target(db)
    path = _data_path(data_path)
    names = ("ducklake",) + (("postgres",) if kind == "postgres" else ())
    if path and path.startswith(REMOTE_PREFIXES):
        names += ("httpfs",)
    raw = duckdb.connect()
    try:
        load_extensions(raw, names)
        for name, value in RETRY_SETTINGS.items():
            raw.execute(f"SET {name} = {value}")
        conn = LakeConnection(raw, WriterLock(conninfo if kind == "postgres" else None,
                                              lock_timeout))
        if read_only:
            _attach(raw, db, path, read_only=True)
            return conn
        # attaching may create the catalog; two first opens at once must not both create it
        with conn.lock:
            _attach(raw, db, path, read_only=False)
            from .migrations import migrate

            # a LakeConnection has the DuckDBPyConnection methods migrations call
            migrate(cast(duckdb.DuckDBPyConnection, conn), where=redact(db))
    except BaseException:
        raw.close()
        raise
    return conn


class LakeConnection:
    """A DuckDB connection to a lake whose writes hold the writer lock; reads pass straight on.

    Behaves like :class:`duckdb.DuckDBPyConnection` (unknown attributes are delegated);
    ``cursor()`` returns another LakeConnection sharing the lock, already ``USE lake``.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, lock: WriterLock, *,
                 root: bool = True) -> None:
        self._conn = conn
        self.lock = lock
        self._root = root
        self._in_tx = False

    def execute(self, query: str, parameters: object = None) -> duckdb.DuckDBPyConnection:
        return cast(duckdb.DuckDBPyConnection, self._run(self._conn.execute, query, parameters))

    def executemany(self, query: str, parameters: object = None) -> duckdb.DuckDBPyConnection:
        return cast(duckdb.DuckDBPyConnection,
                    self._run(self._conn.executemany, query, parameters))

    def sql(self, query: str, **kwargs: Any) -> duckdb.DuckDBPyRelation | None:
        if statement_kind(query) == "read":
            return self._conn.sql(query, **kwargs)
        return cast(duckdb.DuckDBPyRelation | None,
                    self._run(lambda q, _p: self._conn.sql(q, **kwargs), query, None))

    def _run(self, call: Call, query: str, parameters: object) -> Any:
        kind = statement_kind(query)
        query = for_lake(query)
        if kind == "begin":
            return self._begin(call, query, parameters)
        if kind == "end":
            return self._end(call, query, parameters)
        if kind == "write" and not self._in_tx:
            with self.lock:
                return self._retrying(call, query, parameters)
        return self._call(call, query, parameters)

    def _call(self, call: Call, query: str, parameters: object) -> Any:
        try:
            return call(query, parameters)
        except duckdb.NotImplementedException as exc:
            hint = explain_refusal(str(exc))
            if hint:
                raise LedgerError(f"{exc}\n{hint}") from exc
            raise

    def _begin(self, call: Call, query: str, parameters: object) -> Any:
        self.lock.acquire()
        try:
            result = call(query, parameters)
        except BaseException:
            self.lock.release()
            raise
        self._in_tx = True
        return result

    def _end(self, call: Call, query: str, parameters: object) -> Any:
        held, self._in_tx = self._in_tx, False
        try:
            return call(query, parameters)
        except duckdb.TransactionException as exc:
            if not held and "no transaction is active" in str(exc):
                return self._conn  # the failed COMMIT before this ROLLBACK ended it already
            if _is_conflict(exc):
                raise LedgerError(
                    f"the lake refused this commit because another writer changed the same "
                    f"data ({exc}); nothing was written — run the command again") from exc
            raise
        finally:
            if held:
                self.lock.release()

    def _retrying(self, call: Call, query: str, parameters: object) -> Any:
        wait = 0.05
        for attempt in range(STATEMENT_RETRIES + 1):
            try:
                return self._call(call, query, parameters)
            except duckdb.TransactionException as exc:
                if attempt == STATEMENT_RETRIES or not _is_conflict(exc):
                    raise
            time.sleep(wait)
            wait *= 2
        raise AssertionError("unreachable")

    def cursor(self) -> LakeConnection:
        cur = self._conn.cursor()
        cur.execute(f"USE {LAKE_ALIAS}")
        return LakeConnection(cur, self.lock, root=False)

    def close(self) -> None:
        if self._in_tx:
            self._in_tx = False
            self.lock.release()
        self._conn.close()
        if self._root:
            self.lock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __enter__(self) -> LakeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_conflict(exc: Exception) -> bool:
    text = str(exc).lower()
    return "conflict" in text or "retry" in text
