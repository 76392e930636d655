"""Issue 9, properties 7-9: no secret at rest, a keyed fingerprint, the dashboard's guards,
injection payloads, and a proxy that only ever talks to its configured upstream."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
import pytest
from harness import KEY_MARKER, ROOT, CliProxy, callmeter, env, free_port, leaks, rows, test_key
from upstream import UpstreamServer

from dashboard import auth

KEY = test_key("security")
PROMPT = f"a private prompt {KEY_MARKER}prompt"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": PROMPT}]}
AUTH = {"Authorization": f"Bearer {KEY}"}


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while part := s.recv(65536):
            data += part
    return data


@pytest.fixture(scope="module")
def session(upstream, tmp_path_factory):
    """One proxy process (access log on, written to a file) used the ways a key can arrive."""
    folder = tmp_path_factory.mktemp("security")
    db = folder / "callmeter.duckdb"
    with CliProxy(upstream.url, db) as px:
        for header in ("Authorization", "api-key", "x-api-key"):
            value = f"Bearer {KEY}" if header == "Authorization" else KEY
            httpx.post(px.url + "/chat/completions", json=CHAT, headers={header: value})
        httpx.post(px.url + f"/chat/completions?key={KEY}", json=CHAT, headers=AUTH)
        httpx.post(px.url + "/chat/completions", json=CHAT | {"stream": True}, headers=AUTH)
        for behaviour in ("status=401", "status=500", "malformed", "cut_after=1"):
            try:
                httpx.post(px.url + "/chat/completions", json=CHAT | {"stream": True},
                           headers=AUTH | {"X-Upstream-Behaviour": behaviour})
            except httpx.RemoteProtocolError:
                pass
        httpx.post(px.url + "/chat/completions", content=b'{"broken": "' + KEY.encode(),
                   headers=AUTH | {"Content-Type": "application/json"})
        httpx.post(px.url + "/embeddings", json={"model": "text-embedding-3-small",
                                                 "input": PROMPT}, headers=AUTH)
        log_path = px.log_path
    bad = folder / "calls.csv"  # a log whose bad rows carry a key in a free-text column
    bad.write_text("started_at,model,input_tokens,key_label\n"
                   f"2025-03-02T10:00:00Z,gpt-4o,12,fine\n"
                   f"not-a-time,gpt-4o,12,{KEY}\n"
                   f"2025-03-02T11:00:00Z,gpt-4o,lots,{KEY}\n")
    callmeter("load", "--db", str(db))
    callmeter("import", str(bad), "--db", str(db), check=False)
    bad.unlink()  # the test's own input, not a file callmeter wrote
    callmeter("report", "--month", time.strftime("%Y-%m"), "--format", "csv",
              "--out", str(folder / "report.csv"), "--db", str(db))
    yield folder, db, log_path


def test_no_key_prompt_or_authorization_in_any_file_callmeter_wrote(session):
    folder, db, log_path = session
    names = {p.name for p in folder.rglob("*") if p.is_file()}
    assert "callmeter.duckdb" in names and "report.csv" in names and log_path.name in names
    log = log_path.read_text()
    assert log.count('"status"') >= 9  # the access log did log the calls
    assert "private prompt" not in log and "Hello world" not in log  # never bodies
    found = leaks(folder, extra=(b"private prompt", b"Hello world"))
    assert not found, found


def test_no_secret_anywhere_in_this_test_run_so_far(request):
    """The same scan the session runs at its end, over every test's files up to now."""
    base = request.config._tmp_path_factory.getbasetemp()
    assert not leaks(base, ROOT / "data")


def test_fingerprint_is_an_hmac_under_a_0600_install_secret(session):
    folder, db, _ = session
    secret_file = folder / "callmeter.secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = bytes.fromhex(secret_file.read_text().strip())
    ids = {r["key_id"] for r in rows(db, "SELECT DISTINCT key_id FROM calls "
                                         "WHERE source = 'proxy'")}
    expected = "k1:" + hmac.new(secret, KEY.encode(), hashlib.sha256).hexdigest()[:24]
    assert ids == {expected}
    # an attacker hashing guessed (here: the very) keys without the secret gets nowhere
    plain = hashlib.sha256(KEY.encode()).hexdigest()
    guesses = {plain[:24], hmac.new(b"", KEY.encode(), hashlib.sha256).hexdigest()[:24],
               hashlib.sha256(("k1:" + KEY).encode()).hexdigest()[:24]}
    assert expected[3:] not in guesses and expected[3:] not in plain


def test_two_installs_give_the_same_key_different_fingerprints(upstream, tmp_path):
    ids = []
    for name in ("a", "b"):
        db = tmp_path / name / "callmeter.duckdb"
        db.parent.mkdir()
        with CliProxy(upstream.url, db, access_log=False) as px:
            httpx.post(px.url + "/chat/completions", json=CHAT, headers=AUTH)
        callmeter("load", "--db", str(db))
        ids.append(rows(db, "SELECT key_id FROM calls")[0]["key_id"])
    assert ids[0] != ids[1]


# -- dashboard ---------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_dashboard_refuses_to_listen_beyond_localhost_without_a_password(tmp_path, host):
    done = callmeter("dashboard", "--host", host, "--port", str(free_port()), "--db",
                     str(tmp_path / "c.duckdb"), check=False, timeout=60)
    assert done.returncode != 0
    assert "without a password" in done.stdout + done.stderr
    assert not (tmp_path / "c.duckdb").exists()  # refused before touching anything


def test_passwords_are_stored_hashed_and_plain_ones_refused(tmp_path):
    stored = auth.hash_password("correct horse")
    assert "correct horse" not in stored and stored.startswith("pbkdf2_sha256$600000$")
    assert auth.verify_password("correct horse", stored)
    assert not auth.verify_password("correct hors", stored)
    assert auth.hash_password("correct horse") != stored  # salted
    users = tmp_path / "users.toml"
    users.write_text('[users.eve]\npassword = "plain-text"\nrole = "finance"\n')
    with pytest.raises(auth.AuthConfigError, match="hashed"):
        auth.load_users(users)


OWNER_CALLS = """
INSERT INTO calls (call_id, source, started_at, latency_ms, ttft_ms, key_id, key_hint, key_label,
                   endpoint, model, base_model, billing_mode, stream, status, requests,
                   input_tokens, cached_tokens, output_tokens, reasoning_tokens, images,
                   characters, audio_seconds, usage_source, tags)
SELECT 'c' || i, 'csv', TIMESTAMPTZ '2025-03-01 00:00:00+00' + i * INTERVAL 97 MINUTE, 100, 50,
       CASE WHEN i % 3 = 0 THEN 'k1:aaa' ELSE 'k1:bbb' END,
       CASE WHEN i % 3 = 0 THEN 'sk-…aaaa' ELSE 'sk-…bbbb' END,
       CASE WHEN i % 3 = 0 THEN 'search-bot' ELSE 'ads-bot' END,
       'chat', 'gpt-4o', 'gpt-4o', 'token', false, 200, 1, 100, 0, 20, 0, 0, 0, 0.0,
       'reported', MAP {'team': CASE WHEN i % 3 = 0 THEN 'search' ELSE 'ads' END}
FROM range(0, 300) t(i)
"""


def build_owner_ledger(path: Path) -> str:
    """300 calls in March 2025: a third on bob's key k1:aaa, the rest on alice's k1:bbb."""
    from ledger.connect import open_ledger

    conn = open_ledger(str(path))
    try:
        conn.execute(OWNER_CALLS)
    finally:
        conn.close()
    return str(path)


@pytest.fixture
def dashboard_ledger(tmp_path, monkeypatch):
    path = build_owner_ledger(tmp_path / "ledger.duckdb")
    monkeypatch.setenv("CALLMETER_DB", path)
    monkeypatch.delenv("CALLMETER_DASHBOARD_PASSWORD", raising=False)
    monkeypatch.delenv("CALLMETER_USERS_FILE", raising=False)
    import streamlit as st
    from streamlit import config as st_config

    st_config.set_option("server.address", "127.0.0.1")
    yield path
    st.cache_data.clear()
    st.cache_resource.clear()


def test_key_owner_cannot_reach_another_owners_keys_through_the_query_layer(dashboard_ledger):
    from dashboard import queries
    from dashboard.connection import open_dashboard_ledger
    from dashboard.filters import Filters
    from ledger.config import settings_from_env

    ledger = open_dashboard_ledger(settings_from_env(dashboard_ledger))
    try:
        ledger.refresh(force=True)
        march = dict(start=date(2025, 3, 1), end=date(2025, 3, 31))
        everyone = queries.totals(ledger, ledger.marker, Filters(**march))["calls"]
        bob = Filters(**march, scope_keys=("k1:aaa",))
        own = queries.totals(ledger, ledger.marker, bob)["calls"]
        # bob asks for alice's key by id (as a shared URL could): he gets nothing
        theirs = queries.totals(ledger, ledger.marker, bob.with_keys(("k1:bbb",)))["calls"]
        assert 0 < own < everyone and not theirs
        table = queries.keys_table(ledger, ledger.marker, bob)
        assert set(table["key_id"]) == {"k1:aaa"}
    finally:
        ledger.conn.close()


SQL_PAYLOADS = ("x' OR '1'='1", "'; DROP TABLE calls; --", "gpt-4o' --", "1) OR (1=1",
                "k1:aaa' UNION SELECT * FROM calls --", "\\'; SELECT 1; --")


def test_sql_payloads_in_every_filter_match_nothing_and_harm_nothing(dashboard_ledger):
    from dashboard import queries
    from dashboard.connection import open_dashboard_ledger
    from dashboard.filters import Filters
    from ledger.config import settings_from_env

    ledger = open_dashboard_ledger(settings_from_env(dashboard_ledger))
    try:
        ledger.refresh(force=True)
        before = ledger.conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        for evil in SQL_PAYLOADS:
            f = Filters(date(2025, 3, 1), date(2025, 3, 31), keys=(evil,), models=(evil,),
                        endpoints=(evil,), modes=(evil,), tags=(f"{evil}={evil}",))
            assert queries.totals(ledger, ledger.marker, f)["calls"] == 0
            assert queries.breakdown(ledger, ledger.marker, f, ("model",)).empty
            scoped = Filters(date(2025, 3, 1), date(2025, 3, 31), scope_keys=(evil,))
            assert queries.totals(ledger, ledger.marker, scoped)["calls"] == 0
            with pytest.raises(ValueError):
                queries.group_expr(evil, {})
        assert ledger.conn.execute("SELECT count(*) FROM calls").fetchone()[0] == before
    finally:
        ledger.conn.close()


def _app_test():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.query_params.update({"from": "2025-03-01", "to": "2025-03-31", "tz": "UTC"})
    return at


@pytest.mark.parametrize("page", ["app_pages/prices.py", "app_pages/data.py"])
def test_uploaded_file_names_cannot_write_outside_or_break_the_page(dashboard_ledger, tmp_path,
                                                                    page):
    stem = f"escaped-{os.getpid()}-{time.time_ns()}.csv"
    target = tmp_path / stem
    tmp = Path(tempfile.gettempdir())
    places = [target, tmp / stem, tmp.parent / stem, Path("/") / stem]
    names = [f"../../{stem}", f"../{stem}", f"/tmp/x/../{stem}", f"a/../../{stem}", str(target),
             f"../../../../../..{target}", "..", "../", "", "."]
    if page.endswith("prices.py"):  # Streamlit itself refuses names without .csv there
        names = [n for n in names if n.endswith(".csv")]
    content = (ROOT / "data" / "prices.csv").read_bytes()
    try:
        for name in names:
            at = _app_test()
            at.run()
            at.switch_page(page)
            at.run()
            at.file_uploader[0].set_value((name, content, "text/csv"))
            at.run()
            for button in at.button:
                if button.label == "Import":
                    button.click()
                    at.run()
            assert not at.exception, (name, [e.value for e in at.exception])
            escaped = [str(p) for p in places if p.exists()]
            assert not escaped, f"upload named {name!r} wrote {escaped}"
    finally:
        for place in places:
            place.unlink(missing_ok=True)


# -- proxy -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def canary():
    """A second server standing for "elsewhere": the proxy must never reach it."""
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def px(upstream, tmp_path_factory):
    db = tmp_path_factory.mktemp("proxy_guard") / "callmeter.duckdb"
    with CliProxy(upstream.url, db) as proxy:
        yield proxy


def test_requests_only_ever_reach_the_configured_upstream(px, upstream, canary):
    elsewhere = f"127.0.0.1:{canary.port}".encode()
    attempts = [
        b"GET http://" + elsewhere + b"/v1/models HTTP/1.1\r\nHost: " + elsewhere,
        b"GET //" + elsewhere + b"/v1/models HTTP/1.1\r\nHost: x",
        b"GET /v1/models HTTP/1.1\r\nHost: " + elsewhere,
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: " + elsewhere +
        b"\r\nForwarded: host=" + elsewhere,
        b"GET /v1/../../../http://" + elsewhere + b"/v1/models HTTP/1.1\r\nHost: x",
        b"GET /v1/models@" + elsewhere + b"/v1/models HTTP/1.1\r\nHost: x",
        b"GET /v1/%2e%2e/%2e%2e/" + elsewhere + b"/v1/models HTTP/1.1\r\nHost: x",
        b"GET /v1/..%2f..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x",
        b"GET /v1/models\\..\\..\\x HTTP/1.1\r\nHost: x",
        b"CONNECT " + elsewhere + b" HTTP/1.1\r\nHost: " + elsewhere,
    ]
    for attempt in attempts:
        before = len(upstream.requests)
        reply = raw_request(px.port, attempt + b"\r\nConnection: close\r\n\r\n")
        status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else None
        assert status is None or status < 500 or status == 502, (attempt, reply[:200])
        if len(upstream.requests) > before:
            assert upstream.requests[-1].headers["host"] == f"127.0.0.1:{upstream.port}"
    assert not canary.requests, [r.path for r in canary.requests]


def test_hop_by_hop_headers_are_not_forwarded(px, upstream):
    r = httpx.post(px.url + "/chat/completions", json=CHAT, headers=AUTH | {
        "Connection": "keep-alive, X-Secret-Hop", "X-Secret-Hop": "1", "Keep-Alive": "5",
        "Proxy-Authorization": "Basic c2VjcmV0", "Upgrade": "h2c", "TE": "trailers",
        "Proxy-Connection": "keep-alive"})
    assert r.status_code == 200
    seen = upstream.requests[-1].headers
    for name in ("x-secret-hop", "keep-alive", "proxy-authorization", "upgrade", "te",
                 "proxy-connection"):
        assert name not in seen, name


def test_listens_on_loopback_only_by_default(upstream, tmp_path):
    port = free_port()
    args = [sys.executable, "-m", "callmeter.cli", "proxy", "--upstream", upstream.url,
            "--port", str(port), "--db", str(tmp_path / "c.duckdb"), "--no-access-log"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        listening: list[str] = []
        while not listening and time.monotonic() < deadline:
            time.sleep(0.1)
            for table in ("/proc/net/tcp", "/proc/net/tcp6"):
                for line in Path(table).read_text().splitlines()[1:]:
                    local, state = line.split()[1], line.split()[3]
                    if state == "0A" and int(local.split(":")[1], 16) == port:
                        listening.append(local.split(":")[0])
        assert listening == ["0100007F"], listening  # 127.0.0.1 and nothing else
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_metrics_and_health_carry_no_key(px):
    httpx.post(px.url + "/chat/completions", json=CHAT, headers=AUTH)
    for path in ("/metrics", "/healthz"):
        text = httpx.get(px.origin + path).text
        assert KEY not in text and KEY_MARKER not in text and "Bearer" not in text


def test_secret_file_is_created_0600_even_with_a_loose_umask(upstream, tmp_path):
    db = tmp_path / "callmeter.duckdb"
    old = os.umask(0)
    try:
        with CliProxy(upstream.url, db, access_log=False):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "callmeter.secret").stat().st_mode) == 0o600
