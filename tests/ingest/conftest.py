"""Fixtures for the proxy tests: the stand-in upstream, a proxy in front of it, its ledger."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from upstream import ProxyServer, UpstreamServer  # noqa: E402

from ingest.ledger import open_ledger  # noqa: E402
from ingest.loader import load_spool  # noqa: E402

# A key distinctive enough that finding it in any written file is certainly a leak.
PROXY_TEST_KEY = "sk-proxytest-7Qz9XkL2mVb8NcR4-wxyz"


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def proxy(upstream, tmp_path):
    with ProxyServer(upstream.url, tmp_path / "callmeter.duckdb") as server:
        yield server


@pytest.fixture
def client(proxy):
    import openai

    return openai.OpenAI(base_url=proxy.url, api_key=PROXY_TEST_KEY, max_retries=0,
                         timeout=20)


def load_rows(proxy: ProxyServer) -> list[dict]:
    """Close the proxy's spool segment, `callmeter load` it, and return the ledger's rows."""
    proxy.flush()
    conn = open_ledger(proxy.db)
    try:
        load_spool(conn, proxy.spool_folder)
        cur = conn.execute("SELECT * FROM calls ORDER BY started_at, call_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()


@pytest.fixture
def ledger_rows(proxy):
    return lambda: load_rows(proxy)
