"""The README is the user's first manual: every command and the two fresh-machine commands."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from callmeter.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _command_names() -> set[str]:
    click_app = typer.main.get_command(app)
    names = set()
    for name, cmd in click_app.commands.items():  # type: ignore[attr-defined]
        sub = getattr(cmd, "commands", None)
        if sub:
            names.update(f"{name} {s}" for s in sub)
        else:
            names.add(name)
    return names


def test_every_cli_command_is_documented_in_readme():
    missing = [n for n in sorted(_command_names()) if f"callmeter {n}" not in README]
    assert not missing, f"commands missing from README.md: {missing}"


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    assert re.search(r"^make demo\b", README, re.M)
    assert re.search(r"^make test\b", README, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_contract_commands_exist():
    names = _command_names()
    for required in ("proxy", "import", "load", "dashboard", "demo", "report", "recommend",
                     "prices check", "prices load"):
        assert required in names, f"`callmeter {required}` is part of the contract"
