"""A new-api row's call_id is the same from every route and every moment: the admin log (real
ids), the user log (``id % 1024`` on older builds, page positions that shift on current ones) and
the per-key log. Exports are fetched over HTTP from the stand-in console of each build."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from importers_helpers import rows, run_import

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from platform_standin import (  # noqa: E402
    ADMIN_TOKEN,
    API_KEYS,
    BASE_TS,
    TOKEN,
    USER_ID,
    StandIn,
    serve,
)

QPU = Decimal(500_000)


@pytest.fixture
def console(request):
    s = StandIn(build=request.param)
    server, _ = serve(s)
    yield s
    server.shutdown()
    server.server_close()


def _export(s: StandIn, path: str, token: str, out: Path, **params) -> Path:
    """Every page of a route, saved as the console's JSON."""
    items, p = [], 1 if s.build in ("newapi", "newapi-2025") else 0
    with httpx.Client(base_url=s.url, headers={"Authorization": token,
                                               "New-Api-User": USER_ID}) as http:
        while True:
            data = http.get(path, params={"p": p, "page_size": 10, **params}).json()["data"]
            page = data if isinstance(data, list) else data["items"]
            items += page
            if not page or path == "/api/log/token" or len(page) < 10:
                break
            p += 1
    out.write_text(json.dumps({"success": True, "data": {"items": items}}, ensure_ascii=False))
    return out


def _month(s: StandIn) -> None:
    for i in range(23):
        s.add(BASE_TS + 60 * i, prompt=100 + i)
    for _ in range(3):                       # three equal calls in one second
        s.add(BASE_TS + 5000, prompt=42, completion=7)
    s.add(BASE_TS + 5100, log_type=5, other={"status_code": 429})
    s.refund(BASE_TS + 5200, "task-9", 30_000)


@pytest.mark.parametrize("console", ["newapi", "newapi-2025"], indirect=True)
def test_user_admin_and_key_exports_meet_on_the_same_call_ids(tmp_path, console):
    _month(console)
    db = tmp_path / "l.duckdb"
    user = run_import(db, _export(console, "/api/log/self", TOKEN, tmp_path / "self.json"),
                      quota_per_unit=QPU)
    assert (user.imported, user.adjustments) == (27, 1)       # 23 + 3 equal + 1 error
    admin = run_import(db, _export(console, "/api/log/", ADMIN_TOKEN, tmp_path / "admin.json"),
                       quota_per_unit=QPU)
    assert (admin.imported, admin.adjustments, admin.duplicates) == (0, 0, 28)
    key = next(iter(API_KEYS))
    by_key = run_import(db, _export(console, "/api/log/token", key, tmp_path / "key.json"),
                        quota_per_unit=QPU)
    assert by_key.imported == 0 and by_key.duplicates == by_key.read
    assert rows(db, "SELECT count(*) FROM calls WHERE input_tokens = 42") == [(3,)]


@pytest.mark.parametrize("console", ["newapi"], indirect=True)
def test_page_positions_shift_as_calls_arrive_and_nothing_doubles(tmp_path, console):
    """Current builds number user-log rows 1..N by position: a later export numbers the same
    rows differently, and must still add only the new calls."""
    _month(console)
    db = tmp_path / "l.duckdb"
    first = _export(console, "/api/log/self", TOKEN, tmp_path / "first.json")
    run_import(db, first, quota_per_unit=QPU)
    for i in range(12):
        console.add(BASE_TS + 9000 + i, prompt=900 + i)
    second = _export(console, "/api/log/self", TOKEN, tmp_path / "second.json")
    before = {r["request_id"]: r["id"] for r in json.loads(first.read_text())["data"]["items"]}
    after = {r["request_id"]: r["id"] for r in json.loads(second.read_text())["data"]["items"]}
    assert all(after[k] != before[k] for k in before)          # every old row was renumbered
    res = run_import(db, second, quota_per_unit=QPU)
    assert (res.imported, res.adjustments, res.duplicates) == (12, 0, 28)


@pytest.mark.parametrize("console", ["newapi"], indirect=True)
def test_old_rows_without_request_id_on_a_current_build(tmp_path, console):
    """Rows logged before new-api had request ids, served today with position ids: equal rows
    of one second are still distinct calls, and the admin export meets them."""
    for _ in range(2):
        console.add(BASE_TS, prompt=5, completion=5, req_id=None)
    console.add(BASE_TS + 1, prompt=6, req_id=None)
    db = tmp_path / "l.duckdb"
    user = run_import(db, _export(console, "/api/log/self", TOKEN, tmp_path / "self.json"),
                      quota_per_unit=QPU)
    admin = run_import(db, _export(console, "/api/log/", ADMIN_TOKEN, tmp_path / "admin.json"),
                       quota_per_unit=QPU)
    assert (user.imported, admin.imported, admin.duplicates) == (3, 0, 3)
