"""The agent CLIs users run, for real, through the proxy: Claude Code and OpenAI's Codex CLI,
installed from npm into ``.cache/agent-clis`` of the checkout (git-ignored; CI's run keeps it for
the run), each sending one prompt through the proxy to the stand-in. The ledger must show the
call with the tokens the stand-in reported, cache writes priced at the sheet's cache-write rate,
and no phantom rows (Claude Code's ``HEAD /api/hello`` probe is recorded as non-billable).

How each CLI is pointed at a base URL offline, read from the installed packages:
Claude Code 2.1.332 reads ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY`` (sent as
``x-api-key``; ``ANTHROPIC_AUTH_TOKEN`` would go as a Bearer token), ``ANTHROPIC_MODEL`` picks the
model. Codex 0.171.0 reads ``$CODEX_HOME/config.toml``: a ``[model_providers.NAME]`` table with
``base_url``, ``env_key`` and ``wire_api = "responses"`` (the only wire API it still accepts),
selected by ``model_provider``; it ignores ``OPENAI_BASE_URL`` (it hangs on its own endpoints
then), and the built-in provider with ``openai_base_url`` first tries a WebSocket the proxy does
not carry. Without npm or the registry the test skips and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from proxy_helpers import PROXY_TEST_KEY, load_rows
from upstream import ProxyServer, UpstreamServer

from ledger.connect import open_ledger
from pricing import load_prices

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "agent-clis"
PACKAGES = {"claude": "@anthropic-ai/claude-code@2.1.332", "codex": "@openai/codex@0.171.0"}
VERSIONS = {"claude": "2.1.332", "codex": "0.171.0"}


def _installed(name: str) -> Path | None:
    binary = CACHE / "node_modules" / ".bin" / name
    if not binary.exists():
        return None
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    return binary if VERSIONS[name] in done.stdout else None


def agent_cli(name: str) -> Path:
    """The CLI's binary, installed from npm on first use; skips (saying why) without npm."""
    binary = _installed(name)
    if binary is not None:
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed: cannot install {PACKAGES[name]}")
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund",
                           "--no-save", PACKAGES[name]], capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL)
    binary = _installed(name)
    if done.returncode != 0 or binary is None:
        pytest.skip(f"npm could not install {PACKAGES[name]} (registry unreachable?): "
                    + (done.stderr.strip().splitlines() or ["no message"])[-1])
    return binary


@pytest.fixture
def cli_home():
    """The CLI's own home (its settings and sessions, which may hold the key it was given):
    outside pytest's temp folder, where the suite checks that callmeter wrote no key."""
    with tempfile.TemporaryDirectory(prefix="agent-cli-") as home:
        yield Path(home)


def run(cmd: list[str], env: dict, home: Path) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": str(home), "TERM": "dumb", "LANG": "C.UTF-8"}
    done = subprocess.run(cmd, env={**base, **env}, capture_output=True, text=True, timeout=240,
                          cwd=home, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    return done


def priced(db: str, call_id: str) -> tuple:
    conn = open_ledger(db)
    try:
        load_prices(conn, ROOT / "data" / "prices.csv")
        return conn.execute("SELECT cost, priced FROM priced_calls WHERE call_id = ?",
                            [call_id]).fetchone()
    finally:
        conn.close()


# the call of the issue: 5,202 input tokens, 4,644 read from the cache, 552 written (152 for an
# hour), 64 out
CLAUDE_CALL = {"input_tokens": "6", "cache_read": "4644", "cache_write_5m": "400",
               "cache_write_1h": "152", "output_tokens": "64"}


def test_claude_code_one_prompt_through_the_proxy(tmp_path, cli_home):
    claude = agent_cli("claude")
    with UpstreamServer(behaviour=CLAUDE_CALL) as up, \
            ProxyServer(up.url, tmp_path / "ledger.duckdb") as proxy:
        done = run([str(claude), "-p", "Say hello"], {
            "ANTHROPIC_BASE_URL": proxy.origin, "ANTHROPIC_API_KEY": PROXY_TEST_KEY,
            "ANTHROPIC_MODEL": "claude-sonnet-4-5", "DISABLE_AUTOUPDATER": "1"}, cli_home)
        assert "Hello from the stand-in" in done.stdout
        asked = [r for r in up.requests if r.path == "/v1/messages"]
        rows = load_rows(proxy)
    calls = [r for r in rows if r["endpoint"] == "messages"]
    assert len(calls) == len(asked) >= 1
    for row in calls:
        assert (row["model"], row["stream"], row["status"]) == ("claude-sonnet-4-5", True, 200)
        assert (row["input_tokens"], row["cached_tokens"], row["cache_write_tokens"],
                row["cache_write_long_tokens"], row["output_tokens"]) == (5202, 4644, 552, 152,
                                                                            64)
        assert (row["usage_source"], row["key_hint"]) == ("reported", "sk-…wxyz")
    # everything else Claude Code sent is recorded as not billable (its HEAD probe)
    assert {r["endpoint"] for r in rows} - {"messages"} <= {"probe", "count_tokens", "models"}
    # 6 × 3 + 4644 × 0.3 + 400 × 3.75 + 152 × 6 + 64 × 15 per 1M (claude-sonnet-4-5)
    assert priced(str(tmp_path / "ledger.duckdb"), calls[0]["call_id"]) == (
        Decimal("0.0047832"), True)


CODEX_CALL = {"input_tokens": "12000", "cached": "9000", "output_tokens": "300",
              "reasoning": "200"}


def test_codex_cli_one_prompt_through_the_proxy(tmp_path, cli_home):
    codex = agent_cli("codex")
    with UpstreamServer(behaviour=CODEX_CALL) as up, \
            ProxyServer(up.url, tmp_path / "ledger.duckdb") as proxy:
        home = cli_home / "codex-home"
        home.mkdir()
        (home / "config.toml").write_text(
            'model = "gpt-5"\nmodel_provider = "callmeter"\n\n[model_providers.callmeter]\n'
            f'name = "callmeter proxy"\nbase_url = "{proxy.url}"\n'
            'env_key = "OPENAI_API_KEY"\nwire_api = "responses"\n')
        done = run([str(codex), "exec", "--skip-git-repo-check", "Say hello"],
                   {"CODEX_HOME": str(home), "OPENAI_API_KEY": PROXY_TEST_KEY}, cli_home)
        assert "Hello from the stand-in" in done.stdout
        asked = [r for r in up.requests if r.path == "/v1/responses"]
        rows = load_rows(proxy)
    calls = [r for r in rows if r["endpoint"] == "responses"]
    assert len(calls) == len(asked) >= 1
    for row in calls:
        assert (row["model"], row["stream"], row["status"]) == ("gpt-5", True, 200)
        assert (row["input_tokens"], row["cached_tokens"], row["output_tokens"],
                row["reasoning_tokens"]) == (12000, 9000, 300, 200)
        assert (row["usage_source"], row["key_hint"]) == ("reported", "sk-…wxyz")
    assert {r["endpoint"] for r in rows} - {"responses"} <= {"probe", "count_tokens", "models"}
    # 3000 × 1.25 + 9000 × 0.125 + 300 × 10 per 1M (gpt-5)
    assert priced(str(tmp_path / "ledger.duckdb"), calls[0]["call_id"]) == (
        Decimal("0.007875"), True)
