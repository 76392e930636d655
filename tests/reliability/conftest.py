"""Reliability fixtures, and the session-wide check that no file callmeter wrote during the
whole test run holds a test key or an Authorization header (issue 9, property 7)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from harness import ROOT, leaks  # noqa: E402
from upstream import UpstreamServer  # noqa: E402


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


def pytest_sessionfinish(session, exitstatus):
    """Scan pytest's base temp folder and data/ once every test has run; fail the session on
    any key or Authorization header found in a file callmeter wrote."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or getattr(factory, "_basetemp", None) is None:
        return
    found = leaks(factory.getbasetemp(), ROOT / "data")
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"  {path}: {what!r}" for path, what in found]
        text = "SECRET AT REST: callmeter wrote a test key or Authorization header:\n"
        text += "\n".join(lines)
        if reporter is not None:
            reporter.write_sep("!", "secret at rest", red=True)
            reporter.write_line(text)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
