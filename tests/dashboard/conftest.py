"""A small ledger built by hand for the dashboard tests, and an AppTest bound to it."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from ingest.ledger import open_ledger

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")

# 600 calls, one every 137 minutes from 2025-02-01 (to 2025-03-29), three models (one
# unpriced), two keys with team tags, some 429 and 500 errors, half the rows with `charged`.
CALLS_SQL = """
INSERT INTO calls
SELECT 'c' || i, 'csv',
  TIMESTAMPTZ '2025-02-01 00:00:00+00' + i * INTERVAL 137 MINUTE,
  100 + (i % 50) * 10, 50 + i % 7,
  CASE WHEN i % 3 = 0 THEN 'k1:aaa' ELSE 'k1:bbb' END,
  CASE WHEN i % 3 = 0 THEN 'sk-…aaaa' ELSE 'sk-…bbbb' END,
  CASE WHEN i % 3 = 0 THEN 'search-bot' END,
  'chat',
  CASE i % 5 WHEN 0 THEN 'gpt-4o-c' WHEN 1 THEN 'mystery-model' ELSE 'gpt-4o' END,
  CASE i % 5 WHEN 1 THEN 'mystery-model' ELSE 'gpt-4o' END,
  CASE i % 5 WHEN 0 THEN 'request' ELSE 'token' END,
  i % 2 = 0,
  CASE WHEN i % 17 = 0 THEN 429 WHEN i % 31 = 0 THEN 500 ELSE 200 END,
  1, 100 + (i * 37) % 2000, (i % 4) * 10, 20 + (i * 13) % 500, 0, 0, 0, 0.0, 'reported',
  CASE WHEN i % 2 = 1 THEN 0.001 END,
  MAP {'team': CASE WHEN i % 3 = 0 THEN 'search' ELSE 'ads' END},
  NULL, NULL
FROM range(0, 600) t(i)
"""
PRICES_SQL = """
INSERT INTO prices (model, effective_from, input, cached_input, output, request, currency)
VALUES ('gpt-4o', DATE '2025-01-01', 2.5, 1.25, 10, NULL, 'USD'),
       ('gpt-4o-c', DATE '2025-01-01', NULL, NULL, NULL, 0.01, 'USD')
"""
# Query string for the period used in the tests: March 2025 in UTC.
MARCH = {"from": "2025-03-01", "to": "2025-03-31", "tz": "UTC"}


def build_ledger(path: Path, with_calls: bool = True) -> str:
    conn = open_ledger(str(path))
    if with_calls:
        conn.execute(CALLS_SQL)
        conn.execute(PRICES_SQL)
    conn.close()
    return str(path)


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


@pytest.fixture
def app(ledger_path, monkeypatch):
    """An AppTest on the test ledger, period March 2025; call ``.run()`` yourself."""
    monkeypatch.setenv("CALLMETER_DB", ledger_path)
    monkeypatch.delenv("CALLMETER_DASHBOARD_PASSWORD", raising=False)
    monkeypatch.delenv("CALLMETER_USERS_FILE", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(MARCH)
    return at


def sql(path: str, query: str, params=None):
    """Independent check: a fresh read-only DuckDB connection... unless the app holds it."""
    import duckdb

    conn = duckdb.connect(path)
    try:
        return conn.execute(query, params or []).fetchall()
    finally:
        conn.close()
