"""A local stand-in for a new-api console: ``/api/log/self``, ``/api/pricing``, ``/api/user/self``.

It behaves like new-api where sync depends on it: newest-first offset paging over ``created_at``
in ``[start_timestamp, end_timestamp]`` (inclusive), ``page_size`` capped at 100, ids shown as
``id % 1024``, ``other`` as a JSON string, a missing token answered 401, a wrong token answered
200 with ``success: false``, and a wrong ``New-Api-User`` answered 401. Tests script faults
(429 with Retry-After, 500, 401, 403) and rows that arrive while a sync is paging.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

TOKEN = "at-standin-0123456789abcdef"
USER_ID = "42"
BASE_TS = 1_746_000_000          # 2025-04-30 08:00:00 UTC


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
    rows: list[dict] = field(default_factory=list)
    pricing: dict = field(default_factory=dict)
    group: str = "default"
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    after_log_page: Callable[[int], None] | None = None
    ignore_paging: bool = False       # a broken fork: always the first page
    url: str = ""
    _next_id: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, created_at: int, *, log_type: int = 2, model: str = "gpt-4o-mini",
            prompt: int = 100, completion: int = 20, quota: int | None = None,
            token_name: str = "team-a", other: dict | None = None, **extra) -> dict:
        """Append one log row the way new-api records it (its id is the next autoincrement)."""
        with self._lock:
            row_id = self._next_id
            self._next_id += 1
        if quota is None:
            quota = prompt + completion * 4
        oth = {"model_ratio": 0.075, "completion_ratio": 4, "group_ratio": 1,
               "model_price": -1, "frt": 420}
        oth.update(other or {})
        row = {"_id": row_id, "id": row_id % 1024, "user_id": int(USER_ID),
               "created_at": created_at, "type": log_type,
               "content": "模型倍率 0.08，补全倍率 4.00", "username": "finance",
               "token_name": token_name, "token_id": 7, "model_name": model,
               "quota": quota if log_type == 2 else 0, "prompt_tokens": prompt,
               "completion_tokens": completion, "use_time": 2, "is_stream": False,
               "channel": 3, "channel_name": "", "group": self.group,
               "request_id": f"req-{row_id:06d}", "other": json.dumps(oth)}
        row.update(extra)
        with self._lock:
            self.rows.append(row)
        return row

    def fail(self, path: str, *faults: Fault) -> None:
        self.faults.setdefault(path, []).extend(faults)

    def calls(self) -> list[dict]:
        return [r for r in self.rows if r["type"] in (2, 5)]

    # --- answers ---------------------------------------------------------------------------

    def log_self(self, q: dict[str, str]) -> dict:
        p = 1 if self.ignore_paging else max(int(q.get("p") or 1), 1)
        size = int(q.get("page_size") or 10)
        size = 10 if size < 1 else min(size, 100)
        log_type = int(q.get("type") or 0)
        start = int(q.get("start_timestamp") or 0)
        end = int(q.get("end_timestamp") or 0)
        with self._lock:
            rows = [r for r in self.rows
                    if (log_type == 0 or r["type"] == log_type)
                    and (start == 0 or r["created_at"] >= start)
                    and (end == 0 or r["created_at"] <= end)]
        rows.sort(key=lambda r: r["_id"], reverse=True)
        page = [{k: v for k, v in r.items() if k not in ("_id", "user_id")}
                for r in rows[(p - 1) * size: p * size]]
        return {"success": True, "message": "",
                "data": {"page": p, "page_size": size, "total": len(rows), "items": page}}


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
        status, body, headers = self._answer(url.path, q)
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
        if path not in ("/api/log/self", "/api/pricing", "/api/user/self"):
            return 404, {"success": False, "message": "not found"}, {}
        if path != "/api/pricing":
            refusal = self._auth()
            if refusal:
                return refusal
        if path == "/api/log/self":
            return 200, s.log_self(q), {}
        if path == "/api/user/self":
            return 200, {"success": True, "message": "",
                         "data": {"id": int(USER_ID), "username": "finance",
                                  "group": s.group}}, {}
        return 200, s.pricing, {}

    def _auth(self) -> tuple[int, dict, dict] | None:
        token = self.headers.get("Authorization")
        if not token:
            return 401, {"success": False,
                         "message": "无权进行此操作，未登录且未提供 access token"}, {}
        if token.replace("Bearer ", "", 1) != TOKEN:
            return 200, {"success": False, "message": "无权进行此操作，access token 无效"}, {}
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
