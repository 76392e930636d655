"""Login throttling: a few failed sign-ins per user name and per client, then a wait.

Without it a script can try a hundred passwords a second. Each failure is counted under the
user name typed and under the client's address; once either has ``max_failures`` failures
within ``window`` seconds, sign-ins for it are refused (without checking the password) until
the oldest of those failures is ``window`` old. A success clears the user's and client's count.
The price of a per-user lock is that someone guessing can make a real user wait too: the
wait is bounded by ``window`` and the user can ask an admin (docs/dashboard.md).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60.0


@dataclass
class LoginThrottle:
    max_failures: int = MAX_FAILURES
    window: float = WINDOW_SECONDS
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, keys: Iterable[str], now: float | None = None) -> float:
        """Seconds before any of ``keys`` may try again (0: may try now)."""
        now = time.monotonic() if now is None else now
        longest = 0.0
        with self._lock:
            for key in keys:
                recent = self._recent(key, now)
                if len(recent) >= self.max_failures:
                    longest = max(longest, recent[-self.max_failures] + self.window - now)
        return longest

    def failed(self, keys: Iterable[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        recent = self._failures.setdefault(key, deque(maxlen=self.max_failures * 4))
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        return recent


def throttle_keys(user_name: str, client: str | None) -> tuple[str, str]:
    """The counters one attempt counts under: the user name typed and the client."""
    return f"user:{user_name.strip().lower()}", f"client:{client or 'unknown'}"


def client_address(peer: str | None, headers: Mapping[str, str]) -> str | None:
    """The client's address: the peer's, or, when the peer is a reverse proxy on this machine
    (loopback), the last address it appended to ``X-Forwarded-For`` (a client can forge the
    earlier ones, not that one)."""
    forwarded = headers.get("X-Forwarded-For") or headers.get("x-forwarded-for") or ""
    if peer in ("127.0.0.1", "::1") and forwarded.strip():
        return forwarded.split(",")[-1].strip() or peer
    return peer
