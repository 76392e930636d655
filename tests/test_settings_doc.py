"""Every setting is defined once (ledger/config.py) and documented: docs/settings.md holds the
table generated from the definitions, and no module but the config module reads the
environment."""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from pathlib import Path

from ledger.config import SETTINGS, settings_from_env, settings_table

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "settings.md").read_text()
PACKAGES = ("ledger", "ingest", "pricing", "dashboard", "callmeter")


def test_the_settings_doc_is_the_generated_table():
    table = re.search(r"<!-- settings table[^\n]*-->\n(.*?)<!-- end", DOC, re.S)
    assert table, "docs/settings.md lost its table markers"
    assert table.group(1) == settings_table(), (
        "docs/settings.md is out of date: paste the output of `make settings-doc` into it")


def test_every_setting_is_named_in_the_doc_with_its_variable():
    for s in SETTINGS:
        for name in (*s.env.split(","), *s.aliases):
            assert f"`{name.strip()}`" in DOC, f"{name} is not documented in docs/settings.md"


def test_settings_are_read_from_the_environment_given_with_their_types():
    env = {"CALLMETER_DB": "/x/l.duckdb", "CALLMETER_SPOOL_MAX_BYTES": "1024",
           "CALLMETER_PROXY_ACCESS_LOG": "off", "CALLMETER_QUOTA_PER_USD": "1e6",
           "CALLMETER_UPSTREAM_TIMEOUT": "2.5", "CALLMETER_HOME": "/h"}
    s = settings_from_env(env=env)
    assert (s.db, s.spool_max_bytes, s.proxy_access_log, s.quota_per_unit,
            s.upstream_timeout, str(s.home)) == (
        "/x/l.duckdb", 1024, False, Decimal("1e6"), 2.5, "/h")
    assert settings_from_env("/flag.duckdb", env=env).db == "/flag.duckdb"
    assert settings_from_env(env={}).quota_per_unit is None


def _reads_environment(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                isinstance(node.value, ast.Name) and node.value.id == "os" and \
                not isinstance(getattr(node, "ctx", None), ast.Store):
            return True
        if isinstance(node, ast.Attribute) and node.attr == "getproxies_environment":
            return True
    return False


def test_only_the_config_module_reads_the_environment():
    readers = []
    for name in PACKAGES:
        for path in (ROOT / name).rglob("*.py"):
            if path == ROOT / "ledger" / "config.py":
                continue
            if _reads_environment(ast.parse(path.read_text(), str(path))):
                readers.append(str(path.relative_to(ROOT)))
    # callmeter dashboard hands the ledger to the Streamlit app it starts in CALLMETER_DB
    # (written, never read there: the app reads it through ledger.config)
    assert readers == ["callmeter/commands/dashboard.py"]
    text = (ROOT / "callmeter" / "commands" / "dashboard.py").read_text()
    assert text.count("os.environ") == 1 and 'os.environ["CALLMETER_DB"] = ' in text
