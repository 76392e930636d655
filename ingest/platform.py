"""HTTP client for a new-api / one-api console API, and where its access token is kept.

The console API answers ``{"success": bool, "message": str, "data": ...}``. Transient failures
(429, 5xx, network errors) are retried with exponential backoff and jitter, honouring
``Retry-After``; 401 and 403 become :class:`PlatformAuthError` / :class:`PlatformForbidden`
with a message a user can act on. new-api also answers a bad access token with HTTP 200 and
``success: false``, so that body is classified the same way.

    CallmeterError
     └── PlatformError            the platform answered, but not with what we asked for
          ├── PlatformAuthError   401 / "access token 无效": the token or user id is wrong
          ├── PlatformForbidden   403 / "权限不足": the account may not read this
          └── PlatformUnavailable retries exhausted (429, 5xx, network)

The token is never logged, printed or written to the ledger: it lives in the OS keyring when
the ``keyring`` package is importable, else in a 0600 file beside the ledger.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from ledger import DEFAULT_QUOTA_PER_UNIT, CallmeterError, ledger_home, parse_quota_per_unit

__all__ = [
    "PlatformAuthError", "PlatformClient", "PlatformError", "PlatformForbidden",
    "PlatformUnavailable", "QuotaUnit", "RetryPolicy", "console_base", "forget_token",
    "load_token", "platform_status", "quota_unit", "save_token", "token_file",
]

TOKEN_FILE_NAME = "callmeter.platform-token"
KEYRING_SERVICE = "callmeter-platform"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class PlatformError(CallmeterError):
    pass


class PlatformAuthError(PlatformError):
    pass


class PlatformForbidden(PlatformError):
    pass


class PlatformUnavailable(PlatformError):
    pass


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; waits grow ``base * 2**n`` up to ``cap`` seconds, with jitter."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 300.0

    def backoff(self, retry: int) -> float:
        ceiling = min(self.cap, self.base * 2 ** retry)
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))  # "equal jitter"


def console_base(url: str) -> str:
    """The console's base URL: users paste the API base (``…/v1``); the console API is beside it."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[:-3]
    if not url.startswith(("http://", "https://")):
        raise PlatformError(f"platform URL {url!r} must start with http:// or https://")
    return url


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _refusal(status: int, message: str, url: str) -> PlatformError:
    msg = message.strip()[:200]
    lowered = msg.lower()
    if status == 401 or "access token" in lowered or "new-api-user" in lowered or "未登录" in msg:
        return PlatformAuthError(
            f"the platform refused the credentials ({status}: {msg or 'unauthorized'}) at {url}. "
            "Use the console's access token (personal settings → generate access token; not an "
            "sk- API key) with --token or CALLMETER_PLATFORM_TOKEN, and your numeric user id "
            "with --user-id or CALLMETER_PLATFORM_USER_ID.")
    if status == 403 or "权限" in msg or "forbidden" in lowered or "封禁" in msg:
        return PlatformForbidden(
            f"the platform does not allow this account to read {url} ({status}: "
            f"{msg or 'forbidden'}); ask the platform's admin, or check the user id.")
    return PlatformError(f"{url}: the platform answered {status}: {msg or 'no message'}")


class PlatformClient:
    """GETs JSON from the console API with retries. Use as a context manager."""

    def __init__(self, base_url: str, token: str | None, user_id: str | None = None, *,
                 retry: RetryPolicy | None = None, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = console_base(base_url)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.requests = 0
        self.retries = 0
        headers = {"Accept": "application/json", "User-Agent": "callmeter-sync"}
        if token:
            headers["Authorization"] = token.strip()  # new-api strips an optional "Bearer "
        if user_id not in (None, ""):
            headers["New-Api-User"] = str(user_id)
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, follow_redirects=True,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)))

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The decoded body (floats as ``Decimal``) of a successful ``GET``; raises otherwise."""
        url = self.base_url + path
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                self.requests += 1
                resp = self._http.get(path, params=params)
            except httpx.TransportError as exc:
                if last:
                    raise PlatformUnavailable(
                        f"{url}: cannot reach the platform after {attempt + 1} tries: "
                        f"{type(exc).__name__}") from None
                self._wait(self.retry.backoff(attempt))
                continue
            if resp.status_code in RETRY_STATUSES:
                if last:
                    raise PlatformUnavailable(
                        f"{url}: the platform still answers {resp.status_code} after "
                        f"{attempt + 1} tries; try again later")
                self._wait(self._delay(resp, attempt, url))
                continue
            return self._decode(resp, url)
        raise AssertionError("unreachable")

    def _delay(self, resp: httpx.Response, attempt: int, url: str) -> float:
        asked = retry_after_seconds(resp.headers.get("Retry-After"))
        if asked is not None and asked > self.retry.max_retry_after:
            raise PlatformUnavailable(
                f"{url}: the platform asks to wait {asked:.0f} s before retrying "
                f"({resp.status_code}); try again later")
        return self.retry.backoff(attempt) if not asked else asked

    def _wait(self, seconds: float) -> None:
        self.retries += 1
        self.sleep(seconds)

    @staticmethod
    def _decode(resp: httpx.Response, url: str) -> dict[str, Any]:
        try:
            body = json.loads(resp.text, parse_float=Decimal)
        except ValueError:
            body = None
        message = body.get("message", "") if isinstance(body, dict) else ""
        if resp.status_code >= 400:
            raise _refusal(resp.status_code, str(message or resp.reason_phrase), url)
        if not isinstance(body, dict):
            raise PlatformError(
                f"{url}: the answer is not the console API's JSON (is the URL the platform's "
                "base address, e.g. https://host, rather than a page of its site?)")
        if body.get("success") is False:
            raise _refusal(resp.status_code, str(message), url)
        return body


# --- the platform's quota unit ---------------------------------------------------------------

def platform_status(client: PlatformClient) -> dict[str, Any]:
    """``GET /api/status``'s data (public on new-api and one-api)."""
    data = client.get_json("/api/status").get("data")
    if not isinstance(data, dict):
        raise PlatformError(f"{client.base_url}/api/status: no data in the answer")
    return data


@dataclass(frozen=True)
class QuotaUnit:
    """Quota units per US$1 to price with; ``known`` is False when it is only the default."""

    value: Decimal
    known: bool
    notes: tuple[str, ...] = ()


def quota_unit(client: PlatformClient, configured: Decimal | None) -> QuotaUnit:
    """The platform's ``quota_per_unit`` (controller/misc.go GetStatus), or the configured one.

    A configured value wins (with a note when the platform publishes another); with neither,
    new-api's default is used and ``known`` is False, with a note that says so.
    """
    try:
        status = platform_status(client)
        published = status.get("quota_per_unit")
        platform = parse_quota_per_unit(published) if published is not None else None
        reason = "its /api/status has no quota_per_unit"
    except (PlatformError, ValueError) as exc:
        status, platform, reason = {}, None, str(exc)
    notes = []
    shown = status.get("quota_display_type")
    if shown and shown not in ("USD", "TOKENS"):
        notes.append(f"the platform's console shows money in {shown} (rate "
                     f"{status.get('usd_exchange_rate') or status.get('price')}); the ledger "
                     "keeps US dollars, as the platform bills")
    if configured is not None:
        if platform is not None and platform != configured:
            notes.append(f"the platform publishes quota_per_unit {platform:,}, but "
                         f"{configured:,} was configured and is used")
        return QuotaUnit(configured, True, tuple(notes))
    if platform is not None:
        return QuotaUnit(platform, True, tuple(notes))
    notes.append(f"quota ÷ {DEFAULT_QUOTA_PER_UNIT:,} = US$ (new-api's default): the platform "
                 f"did not say its quota_per_unit ({reason}); set CALLMETER_QUOTA_PER_UNIT if "
                 "it uses another")
    return QuotaUnit(DEFAULT_QUOTA_PER_UNIT, False, tuple(notes))


# --- token storage -------------------------------------------------------------------------

def token_file(db: str) -> Path:
    return ledger_home(db) / TOKEN_FILE_NAME


def _keyring() -> Any:
    """The ``keyring`` module and its error class, or None when it is not installed."""
    try:
        import keyring  # optional: only when the user installed it
        import keyring.errors
    except ImportError:
        return None
    return keyring


def read_json_object(path: Path) -> dict[str, Any]:
    """A small JSON state file as a dict; missing or unreadable reads as empty."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _write_tokens(path: Path, tokens: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(tokens, indent=1, sort_keys=True).encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def save_token(db: str, platform_url: str, token: str) -> str:
    """Keep ``token`` for ``platform_url``; return where (``"OS keyring"`` or the file path)."""
    key = console_base(platform_url)
    kr = _keyring()
    if kr is not None:
        try:
            kr.set_password(KEYRING_SERVICE, key, token)
            return "OS keyring"
        except kr.errors.KeyringError:  # no usable backend (headless server): use the file
            pass
    path = token_file(db)
    tokens = read_json_object(path)
    tokens[key] = token
    _write_tokens(path, tokens)
    return str(path)


def load_token(db: str, platform_url: str) -> str | None:
    """The stored token for ``platform_url``, from the keyring or the 0600 file."""
    key = console_base(platform_url)
    kr = _keyring()
    if kr is not None:
        try:
            value = kr.get_password(KEYRING_SERVICE, key)
        except kr.errors.KeyringError:  # no usable backend: "not there"
            value = None
        if value:
            return str(value)
    stored = read_json_object(token_file(db)).get(key)
    return str(stored) if stored else None


def forget_token(db: str, platform_url: str) -> None:
    key = console_base(platform_url)
    kr = _keyring()
    if kr is not None:
        try:
            kr.delete_password(KEYRING_SERVICE, key)
        except kr.errors.KeyringError:  # nothing stored there, or no backend
            pass
    path = token_file(db)
    tokens = read_json_object(path)
    if tokens.pop(key, None) is not None:
        _write_tokens(path, tokens)
