"""Append-only spool segments: how a writer that must never wait hands calls to the ledger.

A segment is a file of JSON lines named ``<utc time>-w<writer id>-<seq>.jsonl.open`` while its
writer has it, renamed to ``.jsonl`` when closed (size or age limit, or process exit). Each
record is one ``write()`` of a whole line to an ``O_APPEND`` descriptor, so a ``kill -9`` loses
only calls still in flight, and at worst leaves half a last line that the loader sets aside.

Liveness is a lock the kernel keeps: the writer holds ``flock(LOCK_EX)`` on its open segment
for as long as it writes there, and renames or removes the segment before letting go. The
kernel releases the lock when the writer dies however it dies, in whatever PID namespace
(container) it ran; a loader takes an open segment only once it holds that lock itself
(:func:`ingest.loader.recover_abandoned`). PIDs are not used: in containers they repeat and
lie. Segments of the older writer (``<time>-<pid>-<seq>``, no lock) are still recognised.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

OPEN_SUFFIX = ".jsonl.open"
CLOSED_SUFFIX = ".jsonl"
# adjustments (refunds, settlements) handed over by an import while another process owns the
# ledger; a name the call segments' "*.jsonl" never matches
ADJUSTMENTS_SUFFIX = ".adjustments.ndjson"
RETRY_SECONDS = 0.5     # after a write error, how soon a call tries the disk again
MAX_ERROR_TEXT = 300    # /healthz shows the last error, bounded


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to the spool")


def encode_record(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, default=_default, separators=(",", ":")) + "\n").encode()


def segment_name(seq: int, writer: str | None = None) -> str:
    """``<utc time>-w<writer id>-<seq>``: unique across processes and containers."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{stamp}-w{writer or secrets.token_hex(4)}-{seq:06d}"


def segment_pid(path: Path) -> int | None:
    """The PID in an older writer's segment name (``<time>-<pid>-<seq>``), else None."""
    try:
        return int(path.name.split("-")[1])
    except (IndexError, ValueError):
        return None


def lock_segment(fd: int) -> bool:
    """Take the segment's writer lock without waiting; False when another holder has it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@dataclass
class SpoolHealth:
    """What the proxy shows on /healthz and /metrics: recording must never fail silently."""

    recording: bool = True
    records_written: int = 0
    records_dropped: int = 0
    last_error: str | None = None
    last_record_at: float | None = None
    errors: list[str] = field(default_factory=list)  # unused; kept for the public shape


class SpoolWriter:
    """Appends records to this process's current segment, rotating by size and age."""

    def __init__(self, folder: Path, *, max_bytes: int = 64 * 1024 * 1024,
                 max_seconds: float = 60.0) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.health = SpoolHealth()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._size = 0
        self._seq = 0
        self._retry_at = 0.0
        self._writer = secrets.token_hex(4)
        # one descriptor kept in reserve: when the process runs out (a flood of client
        # connections), it is given up to open the next segment, so a served call is recorded
        self._reserve: int | None = _reserve_fd()

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        path = self.folder / (segment_name(self._seq, self._writer) + OPEN_SUFFIX)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE) or self._reserve is None:
                raise
            os.close(self._reserve)
            self._reserve = None
            fd = os.open(path, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held until the segment is closed
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                os.close(fd)
                raise
            # a file system without locks: loaders there never take an open segment
        self._fd, self._path = fd, path
        self._opened_at = time.monotonic()
        self._size = 0

    def _close_locked(self) -> None:
        """Rename (or remove, when empty) the segment *while still holding its lock*, then
        close it: a loader never sees an unlocked ``.open`` file of a live writer."""
        fd, path = self._fd, self._path
        if fd is None or path is None:
            return
        self._fd = self._path = None
        try:
            if self._size:
                path.rename(path.with_name(path.name[: -len(".open")]))
            else:
                path.unlink(missing_ok=True)
        finally:
            os.close(fd)
            if self._reserve is None:
                self._reserve = _reserve_fd()

    def append(self, record: dict[str, Any]) -> bool:
        """Write one record; return False (and mark the spool unhealthy) if it could not be."""
        line = encode_record(record)
        with self._lock:
            now = time.monotonic()
            if self._fd is None and not self.health.recording and now < self._retry_at:
                self.health.records_dropped += 1  # the disk was tried moments ago
                return False
            try:
                if self._fd is not None and (self._size >= self.max_bytes
                                             or now - self._opened_at >= self.max_seconds):
                    self._close_locked()
                if self._fd is None:
                    self._open()
                fd = self._fd
                if fd is None:  # (_open sets it or raises)
                    raise OSError("no spool segment open")
                written = os.write(fd, line)
                if written != len(line):  # disk full mid-line: take the half line back
                    os.ftruncate(fd, self._size)
                    raise OSError(f"short write ({written} of {len(line)} bytes): disk full?")
            except OSError as exc:
                self._fail(f"{exc.__class__.__name__}: {exc}", now)
                return False
            self._size += len(line)
            self.health.recording = True
            self.health.records_written += 1
            self.health.last_record_at = time.time()
            return True

    def _fail(self, message: str, now: float, dropped: int = 1) -> None:
        self.health.recording = False
        self.health.records_dropped += dropped
        self.health.last_error = message[:MAX_ERROR_TEXT]
        self._retry_at = now + RETRY_SECONDS
        if self._fd is not None:
            try:  # close (rename) the segment so its records get loaded while we keep running
                self._close_locked()
            except OSError:
                pass  # the descriptor is closed; the loader recovers the file (lock released)

    def rotate_if_due(self) -> None:
        """Close the segment when it is old enough, so an idle writer's calls get loaded."""
        with self._lock:
            if self._fd is not None and time.monotonic() - self._opened_at >= self.max_seconds:
                try:
                    self._close_locked()
                except OSError as exc:
                    self._fail(str(exc), time.monotonic(), dropped=0)

    def close(self) -> None:
        with self._lock:
            try:
                self._close_locked()
            except OSError as exc:
                self._fail(str(exc), time.monotonic(), dropped=0)

    def __del__(self) -> None:
        reserve = getattr(self, "_reserve", None)
        if reserve is not None:
            os.close(reserve)


def _reserve_fd() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
