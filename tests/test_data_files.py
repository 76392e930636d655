"""Commands whose defaults name files in data/ work from any working directory."""

from __future__ import annotations

import subprocess
import sys


def _callmeter(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callmeter.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_prices_check_and_recommend_find_the_shipped_data_from_elsewhere(tmp_path):
    db = str(tmp_path / "l.duckdb")
    check = _callmeter(["prices", "check", "--db", db], tmp_path)
    assert check.returncode == 0, check.stderr
    assert "no such file" not in check.stdout + check.stderr
    load = _callmeter(["prices", "load", "--db", db], tmp_path)
    assert load.returncode == 0, load.stderr
    rec = _callmeter(["recommend", "--db", db], tmp_path)
    assert rec.returncode == 0, rec.stderr
    assert "models.csv" not in rec.stderr
