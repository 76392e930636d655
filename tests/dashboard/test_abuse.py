"""The dashboard against an attacker (issue 18): password guessing, timing probes, crafted
URLs. AppTest runs the real app on a real ledger; nothing of ours is mocked."""

from __future__ import annotations

import time

import pytest
from streamlit import config as st_config

from dashboard import auth
from dashboard.throttle import LoginThrottle, client_address, throttle_keys


def sign_in(app, password: str, user: str | None = None) -> list[str]:
    if user is not None:
        app.text_input[0].input(user)
    app.text_input[1].input(password)
    app.button[0].click()
    app.run()
    return [e.value for e in app.error]


def test_guessing_is_throttled_and_the_right_password_then_waits(app, monkeypatch):
    st_config.set_option("server.address", "0.0.0.0")
    monkeypatch.setenv("CALLMETER_DASHBOARD_PASSWORD", "s3cret")
    app.run()
    for guess in range(5):
        assert "Wrong user or password." in sign_in(app, f"guess{guess}")
    errors = sign_in(app, "s3cret")
    assert any("Too many failed sign-ins" in e for e in errors)
    assert "user" not in app.session_state and not app.metric


def test_unknown_and_known_users_take_the_same_time(tmp_path):
    users_file = tmp_path / "users.toml"
    stored = auth.hash_password("pw", iterations=200_000)
    users_file.write_text(f'[users.ann]\npassword = "{stored}"\nrole = "finance"\n')
    users = auth.load_users(users_file)
    auth.login("nobody", "x", users=users, shared_password=None)   # the dummy hash, made once

    def timed(name: str) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            assert auth.login(name, "wrong", users=users, shared_password=None) is None
            best = min(best, time.perf_counter() - start)
        return best

    known, unknown = timed("ann"), timed("nobody")
    assert 0.5 < unknown / known < 2, (known, unknown)      # before: 146 ms vs 13 ms


def test_shared_password_is_checked_through_a_hash():
    assert auth.login("", "s3cret", users=None, shared_password="s3cret") is not None
    assert auth.login("", "s3cre", users=None, shared_password="s3cret") is None
    assert auth.shared_hash("s3cret").startswith("pbkdf2_sha256$")


def test_throttle_counts_per_user_and_per_client():
    t = LoginThrottle(max_failures=3, window=60)
    for i in range(3):
        t.failed(throttle_keys(f"user{i}", "10.0.0.9"), now=100 + i)     # one client, 3 names
    assert t.wait(throttle_keys("someone", "10.0.0.9"), now=103) == pytest.approx(57)
    assert t.wait(throttle_keys("someone", "10.0.0.1"), now=103) == 0
    for client in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):                   # one name, 3 clients
        t.failed(throttle_keys("Ann", client), now=200)
    assert t.wait(throttle_keys("ann", "4.4.4.4"), now=201) > 0
    assert t.wait(throttle_keys("ann", "4.4.4.4"), now=261) == 0          # the window passed
    t.succeeded(throttle_keys("user0", "10.0.0.9"))
    assert t.wait(throttle_keys("x", "10.0.0.9"), now=104) == 0


def test_client_address_trusts_forwarded_for_only_from_a_local_proxy():
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}
    assert client_address("127.0.0.1", headers) == "203.0.113.7"
    assert client_address("198.51.100.2", headers) == "198.51.100.2"
    assert client_address(None, {}) is None


PAGES = ("app_pages/overview.py", "app_pages/models.py", "app_pages/keys.py",
         "app_pages/billing.py", "app_pages/recommendations.py", "app_pages/finance.py",
         "app_pages/prices.py", "app_pages/data.py")


@pytest.mark.parametrize(("params", "says"), [
    ({"rate": "Infinity"}, "must be a number above 0"),
    ({"rate": "1e30"}, "must be a number above 0"),
    ({"rate": "-1"}, "must be a number above 0"),
    ({"rate": "NaN"}, "must be a number above 0"),
    ({"rate": "abc"}, "is not a number"),
    ({"to": "9999-12-31"}, "is outside"),
    ({"from": "0001-01-01"}, "is outside"),
    ({"from": "yesterday"}, "is not a date"),
    ({"tz": "Mars/Olympus"}, "is not a time zone"),
    ({"cur": "X" * 500}, "Currency must be a short label"),
])
def test_crafted_url_parameters_are_refused_with_a_message(app, params, says):
    app.query_params.update(params)
    app.run()
    assert not app.exception, app.exception
    warnings = [w.value for w in app.sidebar.warning]
    assert any(says in w for w in warnings), warnings
    spend = {m.label: m.value for m in app.metric}["Spend"]
    assert not spend.startswith("-") and "inf" not in spend.lower() and "nan" not in spend.lower()
    for page in PAGES:
        app.switch_page(page)
        app.run()
        assert not app.exception, (page, app.exception)


def test_a_rate_typed_in_the_sidebar_is_checked_the_same_way(app):
    app.run()
    app.sidebar.text_input(key="f_rate").input("-5")
    app.run()
    assert not app.exception
    assert any("must be a number above 0" in w.value for w in app.sidebar.warning)
    assert not {m.label: m.value for m in app.metric}["Spend"].startswith("-")


def test_callmeter_dashboard_sends_security_headers(tmp_path, ledger_path):
    """The real server started by `callmeter dashboard`: every answer forbids framing."""
    import os
    import socket
    import subprocess
    import sys

    import httpx
    from dashboard_ledger import ROOT

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMETER_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "callmeter.cli", "dashboard", "--db",
                             ledger_path, "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.3)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        for answer in (health, page):
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"
            assert answer.headers["x-content-type-options"] == "nosniff"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize(("name", "want"), [
    ("../../etc/passwd", "passwd"), ("C:\\Users\\x\\..\\evil.csv", "evil.csv"),
    (".bashrc", "bashrc"), ("..", "upload"), ("", "upload"), ("a\x00b\n.csv", "a_b_.csv"),
    ("研发 export.csv", "研发 export.csv"), ("/", "upload"),
])
def test_uploaded_names_stay_inside_their_folder(tmp_path, name, want):
    from dashboard.files import inside, safe_filename

    assert safe_filename(name) == want
    assert inside(tmp_path, name).parent == tmp_path
