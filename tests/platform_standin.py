"""A local stand-in for a new-api or one-api console, one of four builds, over real HTTP.

Each build answers the routes callmeter uses the way that build's code does (read 2026-12):

``newapi`` — piexian/new-api (merges QuantumNous/new-api) commit 77fdac2, 2026-08-18:
  ``controller/log.go`` GetUserLogs / GetAllLogs / GetLogByKey and ``common/page_info.go``
  GetPageQuery (``p`` from 1, ``page_size`` default ItemsPerPage 10, capped at 100, answer
  ``{"data": {"page", "page_size", "total", "items"}}``); ``model/log.go`` GetUserLogs (newest
  id first, ``start_timestamp ≤ created_at ≤ end_timestamp``), formatUserLogs and
  assignDisplayLogIds (the user routes number rows by position, ``startIdx + i + 1``, and drop
  ``admin_info``, ``audit_info``, ``stream_status`` from ``other``), ensureLogRequestId (every
  row has a ``request_id``); ``controller/pricing.go`` GetPricing behind ``TryUserAuth``, which
  reads only the session, so an access token is an anonymous visitor: ``group_ratio`` lists
  every group at its base ratio (since 2026-05-27, commit 128023b) and never a user's special
  ratio; ``controller/misc.go`` GetStatus (``quota_per_unit`` and the display currency);
  ``middleware/auth.go`` (access token + ``New-Api-User``; a bad token is HTTP 200
  ``success: false``).
``newapi-2025`` — the same repository before commit 3570bc2 (2026-02-04): user routes show
  ``id % 1024``, rows have no ``request_id``; GetPricing lists only the groups an anonymous
  user may use (``GetUserUsableGroups("")``), so a private group is absent.
``newapi-2024`` — the same repository at 5efdabf (2024-05): ``p`` from 0, ``page_size``
  honoured, the answer a bare ``data`` list without a total, ``id % 1024``.
``oneapi`` — songquanpeng/one-api 8df4a26 (2025-02-21; ``model/log.go`` and
  ``controller/log.go`` of 2025-01-31): ``p`` from 0, always ItemsPerPage (10) rows, bare list,
  no total, ``Omit("id")`` (every id 0); type 5 is a channel test; no ``/api/pricing``.

Tests script faults (429 with Retry-After, 500, 401, 403), rows arriving while a sync pages
(``after_log_page``), and a broken fork that ignores ``p``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from platform_logs import go_json, request_id

TOKEN = "at-standin-0123456789abcdef"
ADMIN_TOKEN = "at-standin-admin-0000000000"
USER_ID = "42"
API_KEYS = {"sk-standin-team-a-0001": 7}      # an sk- key for /api/log/token → token id
BASE_TS = 1_746_000_000          # 2025-04-30 08:00:00 UTC
BUILDS = ("newapi", "newapi-2025", "newapi-2024", "oneapi")
_AUTO = object()
USER_OTHER_DROPPED = ("admin_info", "audit_info", "stream_status")   # formatUserLogs


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    body: dict | None = None


@dataclass
class Seen:
    at: float
    path: str
    params: dict[str, str]
    status: int


@dataclass
class StandIn:
    build: str = "newapi"
    rows: list[dict] = field(default_factory=list)
    pricing: dict = field(default_factory=dict)     # "data" entries of /api/pricing
    group: str = "default"                           # the account's group
    group_ratios: dict = field(default_factory=lambda: {"default": 1})
    public_groups: tuple[str, ...] = ("default",)    # UserUsableGroups
    quota_per_unit: Decimal = Decimal(500_000)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    after_log_page: Callable[[int], None] | None = None
    ignore_paging: bool = False       # a broken fork: always the first page
    url: str = ""
    _next_id: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=lambda: random.Random(15))

    # --- rows ------------------------------------------------------------------------------

    def add(self, created_at: int, *, log_type: int = 2, model: str = "gpt-4o-mini",
            prompt: int = 100, completion: int = 20, quota: int | None = None,
            token_name: str = "team-a", token_id: int = 7, other: dict | None = None,
            content: str = "模型倍率 0.08，补全倍率 4.00", use_time: int = 2,
            req_id: object = _AUTO, **extra) -> dict:
        """Append one row as the build's RecordConsumeLog / RecordErrorLog /
        RecordTaskBillingLog writes it (its id is the next autoincrement)."""
        with self._lock:
            row_id = self._next_id
            self._next_id += 1
        if quota is None:
            quota = prompt + completion * 4
        if log_type == 5 and self.build != "oneapi":
            quota, prompt, completion = 0, 0, 0                # RecordErrorLog
        row = self._oneapi_row(row_id, created_at, log_type, model, prompt, completion, quota,
                               token_name, content, use_time) if self.build == "oneapi" else \
            self._newapi_row(row_id, created_at, log_type, model, prompt, completion, quota,
                             token_name, token_id, other, content, use_time)
        if req_id is _AUTO:
            req_id = request_id(created_at, self._rng) if self.build in ("newapi", "oneapi") \
                else None
        if req_id:
            row["request_id"] = req_id        # json:"request_id,omitempty" in new-api
        row.update(extra)
        with self._lock:
            self.rows.append(row)
        return row

    def _newapi_row(self, row_id, created_at, log_type, model, prompt, completion, quota,
                    token_name, token_id, other, content, use_time) -> dict:
        oth = {"model_ratio": 0.075, "completion_ratio": 4, "group_ratio": 1,
               "model_price": -1, "frt": 420, "admin_info": {"use_channel": ["3"]}}
        oth.update(other or {})
        return {"_id": row_id, "id": row_id, "user_id": int(USER_ID), "created_at": created_at,
                "type": log_type, "content": content, "username": "finance",
                "token_name": token_name, "model_name": model, "quota": quota,
                "prompt_tokens": prompt, "completion_tokens": completion,
                "use_time": use_time, "is_stream": False, "channel": 3,
                "channel_name": "openai-main", "token_id": token_id, "group": self.group,
                "ip": "", "user_agent": "", "other": go_json(oth)}

    def _oneapi_row(self, row_id, created_at, log_type, model, prompt, completion, quota,
                    token_name, content, use_time) -> dict:
        return {"_id": row_id, "id": row_id, "user_id": int(USER_ID), "created_at": created_at,
                "type": log_type, "content": content, "username": "finance",
                "token_name": token_name, "model_name": model, "quota": quota,
                "prompt_tokens": prompt, "completion_tokens": completion, "channel": 3,
                "elapsed_time": use_time * 1000, "is_stream": False,
                "system_prompt_reset": False}

    def refund(self, created_at: int, task_id: str, quota: int, *, model: str = "sora-2",
               reason: str = "任务失败") -> dict:
        """task_billing.go RefundTaskQuota → RecordTaskBillingLog(LogTypeRefund)."""
        return self.add(created_at, log_type=6, model=model, prompt=0, completion=0,
                        quota=quota, content="", use_time=0,
                        other={"task_id": task_id, "reason": reason, "model_price": 0.3,
                               "group_ratio": 1})

    def settlement(self, created_at: int, task_id: str, pre: int, actual: int, *,
                   model: str = "sora-2") -> dict:
        """task_billing.go RecalculateTaskQuota when the final cost is higher: a type 2 row of
        the difference (lower: a type 6 refund of it)."""
        delta = actual - pre
        other = {"task_id": task_id, "pre_consumed_quota": pre, "actual_quota": actual,
                 "model_price": -1, "model_ratio": 2.5, "group_ratio": 1}
        if delta < 0:
            return self.add(created_at, log_type=6, model=model, prompt=0, completion=0,
                            quota=-delta, content="token重算", use_time=0, other=other)
        return self.add(created_at, log_type=2, model=model, prompt=0, completion=0,
                        quota=delta, content="token重算", use_time=0, other=other)

    def fee(self, created_at: int, quota: int, *, model: str = "grok-imagine-image",
            token_name: str = "team-a", token_id: int = 7) -> dict:
        """service/violation_fee.go ChargeViolationFeeIfNeeded (same commit): a Grok request
        failed on a content check, so RecordConsumeLog writes a type 2 row of the fee, no
        tokens, ``Content`` "Violation fee charged" and ``other`` exactly the fee's map."""
        row = self.add(created_at, log_type=2, model=model, prompt=0, completion=0,
                       quota=quota, token_name=token_name, token_id=token_id,
                       content="Violation fee charged", use_time=1)
        row["other"] = go_json({
            "violation_fee": True, "violation_fee_code": "violation_fee.grok.csam",
            "fee_quota": quota, "base_amount": 0.05, "fee_amount": "0.05",
            "fee_source": "configured_amount", "group_ratio": 1, "status_code": 400,
            "upstream_error_type": "invalid_request_error",
            "upstream_error_code": "violation_fee.grok.csam",
            "violation_fee_marker": "Failed check: SAFETY_CHECK_TYPE"})
        return row

    def fail(self, path: str, *faults: Fault) -> None:
        self.faults.setdefault(path, []).extend(faults)

    def calls(self) -> list[dict]:
        return [r for r in self.rows if r["type"] in (2, 5)]

    # --- answers ---------------------------------------------------------------------------

    def _user_view(self, row: dict, position: int) -> dict:
        out = {k: v for k, v in row.items() if k != "_id"}
        if self.build == "oneapi":
            out["id"] = 0                                   # GetUserLogs Omit("id")
            return out
        out["channel_name"] = ""
        other = json.loads(row["other"]) if row.get("other") else None
        if isinstance(other, dict):
            for key in USER_OTHER_DROPPED:
                other.pop(key, None)
            out["other"] = go_json(other)
        out["id"] = position if self.build == "newapi" else row["_id"] % 1024
        return out

    def _select(self, q: dict[str, str], user_only: bool = True) -> list[dict]:
        log_type = int(q.get("type") or 0)
        start = int(q.get("start_timestamp") or 0)
        end = int(q.get("end_timestamp") or 0)
        with self._lock:
            rows = [r for r in self.rows
                    if (log_type == 0 or r["type"] == log_type)
                    and (start == 0 or r["created_at"] >= start)
                    and (end == 0 or r["created_at"] <= end)]
        return sorted(rows, key=lambda r: r["_id"], reverse=True)

    def log_self(self, q: dict[str, str]) -> dict:
        rows = self._select(q)
        if self.build in ("newapi", "newapi-2025"):
            p = 1 if self.ignore_paging else max(_int(q.get("p")), 1)
            size = _int(q.get("page_size")) or 10
            size = min(size, 100)
            start = (p - 1) * size
            page = [self._user_view(r, start + i + 1)
                    for i, r in enumerate(rows[start:start + size])]
            return {"success": True, "message": "",
                    "data": {"page": p, "page_size": size, "total": len(rows), "items": page}}
        p = 0 if self.ignore_paging else max(_int(q.get("p")), 0)
        size = 10 if self.build == "oneapi" else min(_int(q.get("page_size")) or 10, 100)
        page = [self._user_view(r, 0) for r in rows[p * size:(p + 1) * size]]
        return {"success": True, "message": "", "data": page}

    def log_all(self, q: dict[str, str]) -> dict:
        """GetAllLogs (admin): real ids, ``other`` whole; newest created_at first."""
        rows = sorted(self._select(q), key=lambda r: (r["created_at"], r["_id"]), reverse=True)
        full = [dict({k: v for k, v in r.items() if k != "_id"}, id=r["_id"]) for r in rows]
        if self.build in ("newapi", "newapi-2025"):
            p, size = max(_int(q.get("p")), 1), min(_int(q.get("page_size")) or 10, 100)
            return {"success": True, "message": "", "data": {
                "page": p, "page_size": size, "total": len(full),
                "items": full[(p - 1) * size:p * size]}}
        p, size = max(_int(q.get("p")), 0), 10
        return {"success": True, "message": "", "data": full[p * size:(p + 1) * size]}

    def log_token(self, token_id: int) -> dict:
        """GetLogByKey: the key's newest 1000 rows (MaxRecentItems), a bare list."""
        rows = [r for r in self._select({}) if r.get("token_id") == token_id][:1000]
        return {"success": True, "message": "",
                "data": [self._user_view(r, i + 1) for i, r in enumerate(rows)]}

    def status(self) -> dict:
        data = {"version": "v0.standin", "system_name": "stand-in",
                "quota_per_unit": _number(self.quota_per_unit), "display_in_currency": True}
        if self.build != "oneapi":
            data.update(quota_display_type="CNY", usd_exchange_rate=7.3, price=7.3)
        return {"success": True, "message": "", "data": data}

    def pricing_page(self) -> dict:
        """GetPricing for an anonymous visitor (an access token is one, see the docstring)."""
        if self.build == "newapi":
            usable = dict.fromkeys(self.public_groups, "") | {
                g: "" for g in self.group_ratios if g not in ("", "auto")}
            data = [e for e in self.pricing.get("data", [])
                    if "all" in e.get("enable_groups", [])
                    or any(g in usable for g in e.get("enable_groups", []))]
        else:
            usable = dict.fromkeys(self.public_groups, "")
            data = list(self.pricing.get("data", []))
        ratios = {g: r for g, r in self.group_ratios.items() if g in usable}
        return {"success": True, "data": data, "group_ratio": ratios, "usable_group": usable}


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


class _Handler(BaseHTTPRequestHandler):
    standin: StandIn

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        s = self.standin
        url = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        status, body, headers = self._answer(url.path.rstrip("/") or "/", q)
        s.seen.append(Seen(time.monotonic(), url.path, q, status))
        if url.path == "/api/log/self" and status == 200 and s.after_log_page:
            # rows that arrive after this page was read, before the client asks for the next
            s.after_log_page(sum(1 for x in s.seen if x.path == url.path and x.status == 200))
        self._send(status, body, headers)

    def _answer(self, path: str, q: dict[str, str]) -> tuple[int, dict, dict]:
        s = self.standin
        queue = s.faults.get(path)
        if queue:
            f = queue.pop(0)
            hdr = {"Retry-After": f.retry_after} if f.retry_after else {}
            return f.status, f.body or {"success": False, "message": f"fault {f.status}"}, hdr
        if path == "/api/status":
            return 200, s.status(), {}
        if path == "/api/pricing" and s.build != "oneapi":
            return 200, s.pricing_page(), {}
        if path == "/api/log/token" and s.build != "oneapi":
            key = (self.headers.get("Authorization") or "").replace("Bearer ", "", 1)
            if key not in API_KEYS:
                return 200, {"success": False, "message": "无效的令牌"}, {}
            return 200, s.log_token(API_KEYS[key]), {}
        if path not in ("/api/log/self", "/api/log", "/api/user/self"):
            return 404, {"success": False, "message": "not found"}, {}
        refusal = self._auth(admin=path == "/api/log")
        if refusal:
            return refusal
        if path == "/api/log/self":
            return 200, s.log_self(q), {}
        if path == "/api/log":
            return 200, s.log_all(q), {}
        return 200, {"success": True, "message": "",
                     "data": {"id": int(USER_ID), "username": "finance", "group": s.group}}, {}

    def _auth(self, admin: bool = False) -> tuple[int, dict, dict] | None:
        token = (self.headers.get("Authorization") or "").replace("Bearer ", "", 1)
        if not token:
            return 401, {"success": False,
                         "message": "无权进行此操作，未登录且未提供 access token"}, {}
        if token != (ADMIN_TOKEN if admin else TOKEN) and not (admin is False and
                                                                token == ADMIN_TOKEN):
            return 200, {"success": False, "message": "无权进行此操作，access token 无效"}, {}
        if self.standin.build == "oneapi":
            return None                       # one-api's UserAuth has no New-Api-User header
        user = self.headers.get("New-Api-User")
        if not user:
            return 401, {"success": False, "message": "无权进行此操作，未提供 New-Api-User"}, {}
        if user != USER_ID:
            return 401, {"success": False,
                         "message": "无权进行此操作，New-Api-User 与登录用户不匹配"}, {}
        return None


def serve(standin: StandIn) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start the stand-in on a free loopback port; ``standin.url`` is its base address."""
    handler = type("Handler", (_Handler,), {"standin": standin})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    standin.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
