"""Who may see the dashboard: a shared password or a users file with hashed passwords and roles.

Roles: ``finance`` sees every key; ``owner`` sees only the keys listed for them (by key id, hint
or label). A login is required whenever the server listens beyond localhost; with no password
configured the dashboard then refuses to serve. Users file (TOML)::

    [users.alice]
    password = "pbkdf2_sha256$600000$<salt hex>$<hash hex>"   # python -m dashboard.auth
    role = "finance"

    [users.bob]
    password = "pbkdf2_sha256$..."
    role = "owner"
    keys = ["sk-…a1b2", "search-bot"]
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import secrets
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("finance", "owner")
LOCAL_ADDRESSES = ("localhost", "127.0.0.1", "::1")
ITERATIONS = 600_000


class AuthConfigError(ValueError):
    """The users file or password setting cannot be used."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    keys: tuple[str, ...] = ()  # key ids, hints or labels (owners only)

    @property
    def sees_all_keys(self) -> bool:
        return self.role == "finance"


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None
                  ) -> str:
    """PBKDF2-SHA256 hash in the form ``pbkdf2_sha256$iterations$salt$hash`` (hex)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Check ``password`` against a stored hash (or a plain value, compared as SHA-256 digests
    so neither its length nor its content shows in the time taken)."""
    if not stored.startswith("pbkdf2_sha256$"):
        return hmac.compare_digest(hashlib.sha256(password.encode()).digest(),
                                   hashlib.sha256(stored.encode()).digest())
    try:
        _, iterations, salt, digest = stored.split("$")
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt),
                                  int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def load_users(path: Path) -> dict[str, dict[str, Any]]:
    """Read and check a users file; raises AuthConfigError naming the problem."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AuthConfigError(f"users file {path}: {exc}") from exc
    users: dict[str, dict[str, Any]] = data.get("users", {})
    for name, entry in users.items():
        if not str(entry.get("password", "")).startswith("pbkdf2_sha256$"):
            raise AuthConfigError(f"users file {path}: {name} needs a hashed password "
                                  "(python -m dashboard.auth)")
        if entry.get("role") not in ROLES:
            raise AuthConfigError(f"users file {path}: {name} role must be one of {ROLES}")
    return users


_SHARED_HASHES: dict[str, str] = {}
_DUMMY_HASHES: dict[int, str] = {}


def _iterations(stored: str) -> int:
    try:
        return int(stored.split("$")[1])
    except (IndexError, ValueError):
        return ITERATIONS


def dummy_hash(users: dict[str, dict[str, Any]]) -> str:
    """A hash no password matches, at the users file's own cost: an unknown user name is
    checked against it, so the time taken does not say whether the user exists."""
    cost = max((_iterations(str(e.get("password", ""))) for e in users.values()),
               default=ITERATIONS)
    if cost not in _DUMMY_HASHES:
        _DUMMY_HASHES[cost] = hash_password(secrets.token_hex(16), iterations=cost)
    return _DUMMY_HASHES[cost]


def shared_hash(shared_password: str) -> str:
    """The shared password (a setting, in plain) hashed once per process with a random salt,
    so every attempt costs the same PBKDF2 work as a users-file login."""
    if shared_password not in _SHARED_HASHES:
        _SHARED_HASHES[shared_password] = hash_password(shared_password)
    return _SHARED_HASHES[shared_password]


def login(username: str, password: str, *, users: dict[str, dict[str, Any]] | None,
          shared_password: str | None) -> User | None:
    """The user these credentials belong to, or None (in the same time either way)."""
    if users:
        entry = users.get(username)
        stored = str(entry["password"]) if entry else dummy_hash(users)
        if verify_password(password, stored) and entry:
            return User(username, entry["role"], tuple(entry.get("keys", ())))
        return None
    if shared_password and verify_password(password, shared_hash(shared_password)):
        return User(username or "finance", "finance")
    return None


def login_required(address: str | None, *, configured: bool) -> bool:
    """A login is required when one is configured or the server listens beyond localhost."""
    return configured or (address or "0.0.0.0") not in LOCAL_ADDRESSES


def main() -> None:
    """``python -m dashboard.auth``: print the hash of a password for the users file."""
    pw = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass()
    print(hash_password(pw))


if __name__ == "__main__":
    main()
