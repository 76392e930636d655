"""Fixtures for the proxy tests: the stand-in upstream, a proxy in front of it, its ledger."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy_helpers import PROXY_TEST_KEY, load_rows  # noqa: E402,F401  (re-exported)
from upstream import ProxyServer, UpstreamServer  # noqa: E402


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




@pytest.fixture
def ledger_rows(proxy):
    return lambda: load_rows(proxy)
