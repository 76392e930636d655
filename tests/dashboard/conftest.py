"""Fixtures: a hand-built ledger and an AppTest bound to it."""

from __future__ import annotations

import pytest
import streamlit as st
from dashboard_ledger import APP, MARCH, build_ledger, build_messy_ledger
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest


@pytest.fixture(autouse=True)
def _local_streamlit():
    """Serve as if bound to localhost (no login) and drop caches between tests."""
    st_config.set_option("server.address", "127.0.0.1")
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def ledger_path(tmp_path) -> str:
    return build_ledger(tmp_path / "ledger.duckdb")


def _app_on(path: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("CALLMETER_DB", path)
    monkeypatch.delenv("CALLMETER_DASHBOARD_PASSWORD", raising=False)
    monkeypatch.delenv("CALLMETER_USERS_FILE", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(MARCH)
    return at


@pytest.fixture
def app(ledger_path, monkeypatch):
    """An AppTest on the test ledger, period March 2025; call ``.run()`` yourself."""
    return _app_on(ledger_path, monkeypatch)


@pytest.fixture
def messy_path(tmp_path) -> str:
    return build_messy_ledger(tmp_path / "messy.duckdb")


@pytest.fixture
def messy(messy_path, monkeypatch):
    """An AppTest on the messy ledger (keyless calls, label-only keys, two tag names, an
    unknown model, a refund and a fee), period March 2025."""
    return _app_on(messy_path, monkeypatch)
