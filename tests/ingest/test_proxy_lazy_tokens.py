"""The proxy loads tiktoken's tables (~150 MB) only when a call needs a local count: a proxy
whose upstream reports usage never holds them (issue 20, proxy RSS)."""

from __future__ import annotations

import subprocess
import sys

import openai
from proxy_helpers import PROXY_TEST_KEY, load_rows
from upstream import ProxyServer

from ingest import tokens

HI = [{"role": "user", "content": "Hi"}]


def test_calls_with_reported_usage_never_load_the_token_tables(upstream, tmp_path):
    tokens._encoding.cache_clear()  # process-wide: forget what earlier tests loaded
    with ProxyServer(upstream.url, tmp_path / "callmeter.duckdb") as proxy:
        client = openai.OpenAI(base_url=proxy.url, api_key=PROXY_TEST_KEY, max_retries=0,
                               timeout=20)
        client.chat.completions.create(model="gpt-4o", messages=HI)
        list(client.chat.completions.create(model="gpt-4o", messages=HI, stream=True,
                                            stream_options={"include_usage": True}))
        client.embeddings.create(model="text-embedding-3-small", input="Hi")
        assert tokens._encoding.cache_info().currsize == 0  # start-up loaded nothing either
        rows = load_rows(proxy)
        assert [r["usage_source"] for r in rows] == ["reported"] * 3

        # the first call without usage loads the one table it needs, and counts exactly
        client.chat.completions.create(model="gpt-4o", messages=HI,
                                       extra_headers={"X-Upstream-Behaviour": "no_usage"})
        assert tokens._encoding.cache_info().currsize == 1
        row = [r for r in load_rows(proxy) if r["usage_source"] == "estimated"]
        assert [(r["input_tokens"], r["output_tokens"]) for r in row] == [(8, 5)]


def test_proxy_process_imports_neither_duckdb_nor_tiktoken():
    """What ``callmeter proxy`` imports to serve: the CLI, the proxy app and its server. DuckDB
    (~55 MB) and tiktoken belong to other commands and to local counting."""
    code = ("import sys\nfrom callmeter.cli import main\nfrom ingest.proxy import build_app, "
            "uvicorn_config\nimport uvicorn\n"
            "print(sorted(m for m in ('duckdb', 'tiktoken', 'ingest.tokens', 'pandas') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
