"""callmeter dashboard entry: open the ledger, check the login, draw the filters, route pages.

Run with ``callmeter dashboard`` (or ``streamlit run dashboard/app.py`` with CALLMETER_DB set).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import pricing  # noqa: E402
from dashboard import auth, queries  # noqa: E402
from dashboard.connection import get_ledger  # noqa: E402
from dashboard.context import Context, set_context  # noqa: E402
from dashboard.filters import sidebar_filters  # noqa: E402
from dashboard.throttle import LoginThrottle, client_address, throttle_keys  # noqa: E402
from ledger import CallmeterError, Settings, settings_from_env  # noqa: E402

HERE = Path(__file__).resolve().parent
PAGES = HERE / "app_pages"


def _user(settings: Settings) -> auth.User:
    """The logged-in user; draws the login form and stops the run when there is none."""
    try:
        users = (auth.load_users(settings.dashboard_users_file)
                 if settings.dashboard_users_file else None)
    except auth.AuthConfigError as exc:
        st.error(str(exc))
        st.stop()
    configured = bool(users or settings.dashboard_password)
    if not auth.login_required(st.get_option("server.address"), configured=configured):
        return auth.User("local", "finance")
    if not configured:
        st.error("This dashboard listens beyond localhost, so it needs a login: set "
                 "CALLMETER_DASHBOARD_PASSWORD or CALLMETER_USERS_FILE (see docs/dashboard.md), "
                 "or bind to 127.0.0.1.")
        st.stop()
    if "user" in st.session_state:
        user: auth.User = st.session_state["user"]
        return user
    st.title("callmeter")
    with st.form("login"):
        name = st.text_input("User", disabled=not users)
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in"):
            _sign_in(name, password, users, settings.dashboard_password)
    st.stop()


@st.cache_resource
def _throttle() -> LoginThrottle:
    """One throttle for the whole server process (every session's attempts count)."""
    return LoginThrottle()


def _sign_in(name: str, password: str, users: dict[str, dict[str, Any]] | None,
             shared_password: str | None) -> None:
    """Check one attempt, unless the user name or the client has failed too often lately."""
    client = client_address(st.context.ip_address, dict(st.context.headers or {}))
    keys = throttle_keys(name, client)
    wait = _throttle().wait(keys)
    if wait > 0:
        st.error(f"Too many failed sign-ins; try again in {int(wait // 60) + 1} min.")
        return
    found = auth.login(name, password, users=users, shared_password=shared_password)
    if found:
        _throttle().succeeded(keys)
        st.session_state["user"] = found
        st.rerun()
    _throttle().failed(keys)
    st.error("Wrong user or password.")


def _page(name: str, title: str, icon: str, **kw: Any) -> st.Page:
    return st.Page(str(PAGES / f"{name}.py"), title=title, icon=icon, **kw)


def main() -> None:
    pricing.install()  # the dashboard is an entry point: pricing's steps before any ledger opens
    st.set_page_config(page_title="callmeter", page_icon="💸", layout="wide")
    settings = settings_from_env()
    user = _user(settings)
    try:
        ledger = get_ledger(settings.db)
        marker = ledger.refresh()
    except CallmeterError as exc:
        st.error(f"Cannot open the ledger {settings.db}: {exc}")
        st.stop()
    ctx = Context(ledger=ledger, marker=marker, user=user)
    summary = queries.ledger_summary(ledger, marker)
    if summary["rows"] == 0:
        set_context(ctx)
        nav = st.navigation([_page("first_run", "Welcome", ":material/waving_hand:", default=True),
                             _page("data", "Data", ":material/database:"),
                             _page("prices", "Prices", ":material/sell:")])
        nav.run()
        return
    options = queries.filter_options(ledger, marker)
    scope = None
    if not user.sees_all_keys:
        wanted = set(user.keys)  # fingerprint, hint (sk-…fc65) or label, as docs/dashboard.md
        hints = options.get("key_hints", {})
        scope = tuple(k for k, label in options["keys"].items()
                      if k in wanted or label in wanted or hints.get(k) in wanted)
        options = {**options, "keys": {k: v for k, v in options["keys"].items() if k in scope}}
    last = summary["last"] or datetime.now(UTC)
    ctx.filters, ctx.display = sidebar_filters(
        options, last.astimezone(UTC).date(), queries.sheet_currency(ledger, marker), scope)
    ctx.options = options
    set_context(ctx)
    st.sidebar.caption(f"{summary['calls']:,} calls in the ledger · signed in as {user.name}")
    nav = st.navigation({
        "Spend": [_page("overview", "Overview", ":material/insights:", default=True),
                  _page("models", "Models", ":material/memory:"),
                  _page("keys", "Keys", ":material/key:"),
                  _page("key_detail", "Key detail", ":material/manage_search:", url_path="key")],
        "Save": [_page("billing", "Billing modes", ":material/balance:"),
                 _page("recommendations", "Recommendations", ":material/lightbulb:"),
                 _page("finance", "Finance", ":material/receipt_long:")],
        "Setup": [_page("prices", "Prices", ":material/sell:"),
                  _page("data", "Data", ":material/database:")],
    })
    nav.run()


main()
