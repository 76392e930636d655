"""Append-only spool segments: how a writer that must never wait hands calls to the ledger.

A segment is a file of JSON lines named ``<utc time>-<pid>-<seq>.jsonl.open`` while its writer
has it, renamed to ``.jsonl`` when closed (size or age limit, or process exit). Each record is
one ``write()`` of a whole line to an ``O_APPEND`` descriptor, so a ``kill -9`` loses only calls
still in flight, and at worst leaves half a last line that the loader sets aside.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

OPEN_SUFFIX = ".jsonl.open"
CLOSED_SUFFIX = ".jsonl"
# adjustments (refunds, settlements) handed over by an import while another process owns the
# ledger; a name the call segments' "*.jsonl" never matches
ADJUSTMENTS_SUFFIX = ".adjustments.ndjson"


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to the spool")


def encode_record(record: dict) -> bytes:
    return (json.dumps(record, default=_default, separators=(",", ":")) + "\n").encode()


def segment_name(seq: int, pid: int | None = None) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{stamp}-{pid or os.getpid()}-{seq:06d}"


def segment_pid(path: Path) -> int | None:
    try:
        return int(path.name.split("-")[1])
    except (IndexError, ValueError):
        return None


@dataclass
class SpoolHealth:
    """What the proxy shows on /healthz and /metrics: recording must never fail silently."""

    recording: bool = True
    records_written: int = 0
    records_dropped: int = 0
    last_error: str | None = None
    last_record_at: float | None = None
    errors: list[str] = field(default_factory=list)


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

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        self._path = self.folder / (segment_name(self._seq) + OPEN_SUFFIX)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._opened_at = time.monotonic()
        self._size = 0

    def _close_locked(self) -> None:
        if self._fd is None or self._path is None:
            return
        os.close(self._fd)
        self._fd = None
        if self._size:
            self._path.rename(self._path.with_name(self._path.name[: -len(".open")]))
        else:
            self._path.unlink(missing_ok=True)
        self._path = None

    def append(self, record: dict) -> bool:
        """Write one record; return False (and mark the spool unhealthy) if it could not be."""
        line = encode_record(record)
        with self._lock:
            now = time.monotonic()
            try:
                if self._fd is not None and (self._size >= self.max_bytes
                                             or now - self._opened_at >= self.max_seconds):
                    self._close_locked()
                if self._fd is None:
                    if not self.health.recording and now < self._retry_at:
                        raise OSError(self.health.last_error or "spool unavailable")
                    self._open()
                written = os.write(self._fd, line)  # type: ignore[arg-type]
                if written != len(line):  # disk full mid-line: take the half line back
                    os.ftruncate(self._fd, self._size)  # type: ignore[arg-type]
                    raise OSError(f"short write ({written} of {len(line)} bytes): disk full?")
            except OSError as exc:
                self._fail(f"{exc.__class__.__name__}: {exc}", now)
                return False
            self._size += len(line)
            self.health.recording = True
            self.health.records_written += 1
            self.health.last_record_at = time.time()
            return True

    def _fail(self, message: str, now: float) -> None:
        self.health.recording = False
        self.health.records_dropped += 1
        self.health.last_error = message
        self._retry_at = now + 1.0
        if self._fd is not None:
            try:  # close (rename) the segment so its records get loaded while we keep running
                self._close_locked()
            except OSError:
                self._fd = None
                self._path = None

    def rotate_if_due(self) -> None:
        """Close the segment when it is old enough, so an idle writer's calls get loaded."""
        with self._lock:
            if self._fd is not None and time.monotonic() - self._opened_at >= self.max_seconds:
                try:
                    self._close_locked()
                except OSError as exc:
                    self._fail(str(exc), time.monotonic())

    def close(self) -> None:
        with self._lock:
            try:
                self._close_locked()
            except OSError as exc:
                self._fail(str(exc), time.monotonic())
