"""The lake's writer lock: why two loaders can never both insert the same ``call_id``.

DuckLake gives each transaction a snapshot and retries a losing commit by itself when the two
changes do not conflict — and two appends to ``calls`` never conflict. So two processes that
each run the loader's anti-join (``INSERT … WHERE NOT EXISTS (… call_id …)``) on the same call
at the same time would both see it absent and both commit it. callmeter closes that gap with a
PostgreSQL advisory lock in the catalog database: every callmeter write transaction on the lake
(``BEGIN`` … ``COMMIT``, or a single write statement) runs while holding it, and its snapshot
is taken after the lock is granted, so it sees every call an earlier writer committed.

Writes are serialised only for the length of one load or import transaction; readers never
wait. The lock belongs to a PostgreSQL session, so a writer killed mid-transaction releases it
when its connection drops.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from .errors import LedgerError

__all__ = ["WriterLock", "redact"]

# pg_advisory_lock key: "callmeter" as a stable 63-bit number (advisory locks are per database).
LOCK_KEY = int.from_bytes(b"callmetr", "big") & 0x7FFF_FFFF_FFFF_FFFF

_PASSWORD_RE = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.I)


def redact(text: str) -> str:
    """Hide a password written into a connection string before it reaches a message."""
    return _PASSWORD_RE.sub(r"\1***", text)


class WriterLock:
    """Re-entrant, process- and cluster-wide lock for writes to one lake.

    ``conninfo`` is the libpq connection string of a PostgreSQL catalog; ``None`` (a DuckDB or
    SQLite catalog file, which one process at a time writes anyway) gives a process-local lock.
    """

    def __init__(self, conninfo: str | None, timeout_seconds: float = 300.0) -> None:
        self.conninfo = conninfo
        self.timeout_seconds = timeout_seconds
        self._local = threading.RLock()
        self._depth = 0
        self._owner: int | None = None
        self._pg: Any = None

    def _session(self) -> Any:
        if self._pg is None:
            try:
                import psycopg
            except ImportError as exc:
                raise LedgerError(
                    "a DuckLake ledger with a PostgreSQL catalog needs psycopg for its writer "
                    "lock: pip install 'callmeter[lake]'"
                ) from exc
            try:
                self._pg = psycopg.connect(self.conninfo or "", autocommit=True,
                                           application_name="callmeter writer lock")
            except psycopg.Error as exc:
                raise LedgerError(f"cannot reach the lake's catalog: {redact(str(exc))}") from exc
        return self._pg

    def acquire(self) -> None:
        self._local.acquire()
        try:
            if self._depth == 0 and self.conninfo is not None:
                self._pg_lock()
        except BaseException:
            self._local.release()
            raise
        self._depth += 1
        self._owner = threading.get_ident()

    def _pg_lock(self) -> None:
        import psycopg

        pg = self._session()
        ms = int(self.timeout_seconds * 1000)
        try:
            pg.execute(f"SET lock_timeout = {ms}")
            pg.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        except psycopg.errors.LockNotAvailable:
            raise LedgerError(
                f"another callmeter process has been writing to the lake for over "
                f"{self.timeout_seconds:.0f} s; try again later"
            ) from None
        except psycopg.Error as exc:
            self.close()
            raise LedgerError(f"lake writer lock failed: {redact(str(exc))}") from exc

    def release(self) -> None:
        if self._depth == 0 or self._owner != threading.get_ident():
            return
        self._depth -= 1
        try:
            if self._depth == 0:
                self._owner = None
                self._pg_unlock()
        finally:
            self._local.release()

    def _pg_unlock(self) -> None:
        if self._pg is None:
            return
        import psycopg

        try:
            self._pg.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        except psycopg.Error:  # the session is gone, and the lock went with it
            self.close()

    @property
    def held(self) -> bool:
        """True when the calling thread holds the lock."""
        return self._depth > 0 and self._owner == threading.get_ident()

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        if self._pg is not None:
            try:
                self._pg.close()
            finally:
                self._pg = None
