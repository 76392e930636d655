"""The layers hold: imports follow the data flow (ledger < ingest < pricing < dashboard <
callmeter), none hides in a string, and the ledger core refuses to open a ledger when a layer
above it never registered its migrations."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ledger", "ingest", "pricing", "dashboard", "callmeter")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin"})


def _tree_copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layer_contracts_are_kept():
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout


@pytest.mark.parametrize(("module", "backward", "arrow"), [
    # the bottom layer importing pricing, as ingest/loader.py once did inside a function
    ("ledger/insert.py", "    from pricing.memo import priced_insert_sql\n", "ledger.insert"),
    # a writer importing the dashboard
    ("ingest/loader.py", "import dashboard.queries\n", "ingest.loader"),
    # pricing importing the command line
    ("pricing/compare.py", "from callmeter import cli\n", "pricing.compare"),
])
def test_a_backward_import_fails_the_lint(tmp_path, module, backward, arrow):
    tree = _tree_copy(tmp_path)
    path = tree / module
    text = path.read_text()
    if backward.startswith("    "):  # inside a function: still an arrow
        text = text.replace("    cols = ", backward + "    cols = ", 1)
    else:
        text = text.replace("\nimport duckdb\n", "\nimport duckdb\n" + backward, 1)
    assert backward in text
    path.write_text(text)
    done = _lint_imports(tree)
    assert done.returncode != 0
    assert "BROKEN" in done.stdout and arrow in done.stdout, done.stdout


def _calls(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            names.append(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return names


def test_no_import_hides_in_a_string():
    hidden = []
    for name in PACKAGES:
        for path in (ROOT / name).rglob("*.py"):
            calls = _calls(ast.parse(path.read_text(), str(path)))
            if "import_module" in calls or "__import__" in calls:
                hidden.append(str(path.relative_to(ROOT)))
    assert hidden == []


def test_a_ledger_is_refused_when_pricing_never_registered_its_steps(tmp_path):
    """An entry point that forgets ``pricing.install()`` cannot build a half ledger."""
    db = tmp_path / "l.duckdb"
    code = ("import ledger\n"
            "try:\n"
            f"    ledger.open_ledger({str(db)!r})\n"
            "except ledger.LedgerError as exc:\n"
            "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "m002" in done.stdout and "pricing.install()" in done.stdout
    assert not db.exists()


def test_import_help_names_every_format():
    """`callmeter import --help` lists the formats without importing the importers (start-up):
    the list it prints must still be FORMATS."""
    from typer.testing import CliRunner

    from callmeter.cli import app
    from ingest.importers import FORMATS

    out = CliRunner().invoke(app, ["import", "--help"], terminal_width=200).output
    assert all(name in out for name in FORMATS), out
