"""Data page's platform sync and Prices page's sheet editor, through Streamlit's AppTest.

The sync runs against the local new-api stand-in (tests/platform_standin.py); the editor's
repricing is checked against amounts computed by hand from the test ledger's recipe
(tests/dashboard/dashboard_ledger.py).
"""

from __future__ import annotations

import stat
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from dashboard_ledger import sql

from dashboard.filters import Display
from ingest.platform import token_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from platform_standin import BASE_TS, TOKEN, USER_ID, StandIn, serve  # noqa: E402

money = Display().money


@pytest.fixture
def standin():
    s = StandIn()
    server, _ = serve(s)
    yield s
    server.shutdown()
    server.server_close()


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def open_page(app, page: str):
    app.run()
    app.switch_page(f"app_pages/{page}.py")
    app.run()
    assert not app.exception, app.exception
    return app


def sync(app, url: str, token: str, user: str = USER_ID):
    app.text_input(key="sync_url").input(url)
    app.text_input(key="sync_token").input(token)
    app.text_input(key="sync_user").input(user)
    app.button[[b.label for b in app.button].index("Sync now")].click()
    app.run()
    assert not app.exception, app.exception
    return app


def synced_rows(path: str) -> int:
    return sql(path, "SELECT count(*) FROM calls WHERE source = 'newapi'")[0][0]


# --- Data page: platform sync ------------------------------------------------------------

def test_sync_now_brings_the_platform_log_into_the_ledger(app, ledger_path, standin):
    for i in range(7):
        standin.add(BASE_TS + 60 * i, prompt=1000 + i, completion=10)
    standin.add(BASE_TS + 30, log_type=1, prompt=0, completion=0)   # a top-up, not a call
    open_page(app, "data")
    assert "Never synced." in [c.value for c in app.caption]
    sync(app, standin.url, TOKEN)

    assert synced_rows(ledger_path) == 7
    shown = metrics(app)
    assert shown["Rows added"] == "7"
    assert shown["Sync status"] == "ok"
    assert shown["Last sync"].endswith(" UTC")
    assert any("7 new row(s)" in s.value for s in app.success)
    assert shown["Rows"] == f"{600 + 7:,}"      # the ledger section sees the new rows
    # the token is kept in a 0600 file beside the ledger (no keyring here), never shown back
    tokens = token_file(ledger_path)
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert app.text_input(key="sync_token").value == ""
    assert not any(TOKEN in (e.value or "") for e in [*app.caption, *app.success, *app.markdown])
    assert not sql(ledger_path, f"SELECT count(*) FROM calls WHERE tags::VARCHAR LIKE '%{TOKEN}%'"
                   )[0][0]

    # a second run with the stored token (field left blank) adds only what is new
    standin.add(int(time.time()) - 1, prompt=5000, completion=50)   # a call made since
    app.run()
    assert any("access token is stored" in c.value for c in app.caption)
    app.button[[b.label for b in app.button].index("Sync now")].click()
    app.run()
    assert not app.exception
    assert synced_rows(ledger_path) == 8
    assert metrics(app)["Rows added"] == "1"

    # a run that finds nothing new says 0, not the rows it read again (bug 10)
    app.button[[b.label for b in app.button].index("Sync now")].click()
    app.run()
    assert not app.exception
    assert synced_rows(ledger_path) == 8
    assert metrics(app)["Rows added"] == "0"
    assert any("0 new row(s)" in s.value for s in app.success)


def test_bad_token_shows_a_message_and_is_not_stored(app, ledger_path, standin):
    standin.add(BASE_TS, prompt=10, completion=1)
    open_page(app, "data")
    sync(app, standin.url, "at-wrong-token")
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and "refused the access token or user id" in errors[0]
    assert "at-wrong-token" not in errors[0]
    assert synced_rows(ledger_path) == 0
    assert metrics(app)["Sync status"] == "error"
    assert not token_file(ledger_path).exists()


def test_unreachable_platform_is_a_message_not_a_traceback(app, ledger_path):
    open_page(app, "data")
    sync(app, "http://127.0.0.1:9", TOKEN)            # nothing listens on port 9
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and errors[0].startswith("Sync failed.")
    assert synced_rows(ledger_path) == 0


def test_key_owner_cannot_sync(app, tmp_path, monkeypatch):
    from dashboard.auth import hash_password

    users = tmp_path / "users.toml"
    users.write_text(f'[users.bob]\npassword = "{hash_password("pw", iterations=1000)}"\n'
                     f'role = "owner"\nkeys = ["search-bot"]\n')
    monkeypatch.setenv("CALLMETER_USERS_FILE", str(users))
    app.run()
    app.text_input[0].input("bob")
    app.text_input[1].input("pw")
    app.button[0].click()
    app.run()
    open_page(app, "data")
    assert "Only finance users can sync from the platform." in [c.value for c in app.caption]
    assert "Sync now" not in [b.label for b in app.button]


# --- Prices page: edit the sheet -----------------------------------------------------------

def _ok_per_request_calls() -> int:
    """By hand from the ledger recipe: call i is gpt-4o-c when i % 5 == 0, and failed (not
    charged) when i % 17 == 0 or i % 31 == 0."""
    return sum(1 for i in range(600) if i % 5 == 0 and not (i % 17 == 0 or i % 31 == 0))


def _edit(app, model: str, column: str, value: str):
    table = app.data_editor(key="price_editor").value
    row = list(table["model"]).index(model)
    app.session_state["price_editor"] = {"edited_rows": {row: {column: value}},
                                         "added_rows": [], "deleted_rows": []}
    app.run()
    assert not app.exception, app.exception
    return row


def test_editing_a_price_reprices_history_by_the_hand_computed_amount(app, ledger_path):
    assert _ok_per_request_calls() == 109
    open_page(app, "prices")
    editor = app.data_editor(key="price_editor").value
    assert list(editor["model"]) == ["gpt-4o", "gpt-4o-c"]
    assert list(editor["request"]) == ["", "0.01"]          # exact text, not a float
    (before,) = sql(ledger_path, "SELECT sum(cost) FROM priced_calls")[0]

    _edit(app, "gpt-4o-c", "request", "0.02")                 # 0.01 -> 0.02 per call
    assert not app.error
    app.button(key="save_prices").click()
    app.run()
    assert not app.exception, app.exception

    (after,) = sql(ledger_path, "SELECT sum(cost) FROM priced_calls")[0]
    change = Decimal("0.01") * 109
    assert after - before == change                          # $1.09, exactly
    shown = metrics(app)
    assert shown["Priced total before"] == money(before)
    assert shown["Priced total after"] == money(before + change)
    assert shown["Change"] == money(change)
    assert sql(ledger_path, "SELECT request FROM prices WHERE model = 'gpt-4o-c'") == [
        (Decimal("0.020000000"),)]
    # the editor now starts from the loaded sheet
    assert list(app.data_editor(key="price_editor").value["request"]) == ["", "0.02"]


def test_a_negative_price_is_shown_with_its_row_and_column_and_changes_nothing(app,
                                                                               ledger_path):
    before = sql(ledger_path, "SELECT * FROM prices ORDER BY model")
    (cost,) = sql(ledger_path, "SELECT sum(cost) FROM priced_calls")[0]
    open_page(app, "prices")
    row = _edit(app, "gpt-4o", "input", "-2.5")
    errors = [e.value for e in app.error]
    assert errors == [f"row {row + 1} (line {row + 2}), column input: error: "
                      f"negative price -2.5"]
    assert "save_prices" not in [b.key for b in app.button]
    assert sql(ledger_path, "SELECT * FROM prices ORDER BY model") == before
    assert sql(ledger_path, "SELECT sum(cost) FROM priced_calls")[0][0] == cost
