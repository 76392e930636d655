"""Keyed fingerprints of API keys: what the ledger stores instead of a key.

A plain hash of a key could be reversed by hashing guessed or leaked keys, so the fingerprint is
an HMAC-SHA256 under a per-install secret kept in a 0600 file beside the ledger.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .config import Settings, ledger_home, settings_from_env

SECRET_FILE_NAME = "callmeter.secret"


def load_or_create_secret(path: Path) -> bytes:
    """Read the install secret, creating it (mode 0600) on first use."""
    path = Path(path)
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value.hex().encode() + b"\n")
    finally:
        os.close(fd)
    return value


class KeyFingerprinter:
    """Turns a secret key (or a platform's key id) into a stable, non-reversible id."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def fingerprint(self, key: str) -> str:
        digest = hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()
        return "k1:" + digest[:24]


def fingerprinter_for(db: str, settings: Settings | None = None) -> KeyFingerprinter:
    """The fingerprinter of the install that owns ``db``: the secret beside the ledger, or
    ``$CALLMETER_SECRET_FILE``. Every writer (proxy, import, sync, demo) uses this one."""
    settings = settings or settings_from_env(db)
    path = settings.secret_file or ledger_home(db) / SECRET_FILE_NAME
    return KeyFingerprinter(load_or_create_secret(path))


def key_hint(key: str) -> str:
    """``sk-…abcd``: enough for a person to recognise a key, never enough to use it."""
    key = key.strip()
    prefix = "sk-" if key.startswith("sk-") else ""
    return f"{prefix}…{key[-4:]}" if len(key) >= 8 else "…"


def bearer_key(authorization: str | None) -> str | None:
    """The key inside an ``Authorization: Bearer …`` header, if any."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return authorization.strip() or None
