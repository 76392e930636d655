"""Running the FinOps Foundation's focus-validator (PyPI, 2.2.1) on an export and reading its
report. It lives in its own venv (``make focus-validator``: Python 3.12, ``pyarrow<18``) and
opens its rules relative to the working directory, so it runs from that venv's site-packages,
offline (``--block-download``) against the FOCUS 1.2 rules it ships.

It exits 0 whatever it finds: violations are read from its console report
(``- RULE-ID: violations=N; …`` under ``--- Failures ---``). A rule that is one branch of an
``OR`` (InvoiceId must be null *or* must not be null, depending on facts the validator cannot
see) is listed as failed even when its OR parent passed; such a branch is not a violation.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".cache" / "focus-validator"
_FAILURE = re.compile(r"^- (?P<rule>[A-Za-z]+-[A-Z]-\d{3}-[A-Z]): violations=(?P<n>\d+)",
                      re.M)


def site_packages() -> Path:
    found = sorted(VENV.glob("lib/python3.*/site-packages"))
    if not (VENV / "bin" / "focus-validator").exists() or not found:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"{VENV} is missing: `make focus-validator` must build it")
        pytest.skip(f"focus-validator venv missing at {VENV}: run `make focus-validator` "
                    "(needs Python 3.12 via pyenv)")
    return found[0]


@cache
def _or_parents() -> dict[str, list[str]]:
    """rule → the OR rules it is a branch of (from the validator's own model file)."""
    model = json.loads((site_packages() / "focus_validator" / "rules" /
                        "model-1.2.0.1.json").read_text())
    parents: dict[str, list[str]] = {}
    for rule_id, rule in model["ModelRules"].items():
        req = rule["ValidationCriteria"].get("Requirement") or {}
        if req.get("CheckFunction") == "OR":
            for item in req.get("Items", []):
                if item.get("CheckFunction") == "CheckModelRule":
                    parents.setdefault(item["ModelRuleId"], []).append(rule_id)
    return parents


def validate(path: Path, criteria: tuple[str, ...] = ()) -> tuple[dict[str, int], str]:
    """({rule: violations} that count, the full report) for a CSV or Parquet export."""
    args = [str(VENV / "bin" / "focus-validator"), "--data-file", str(path),
            "--validate-version", "1.2", "--block-download"]
    if criteria:
        args += ["--applicability-criteria", ",".join(criteria)]
    done = subprocess.run(args, cwd=site_packages(), capture_output=True, text=True,
                          timeout=600)
    report = done.stdout + done.stderr
    assert "Total:" in report, f"focus-validator did not report:\n{report[-3000:]}"
    failed = {m["rule"]: int(m["n"]) for m in _FAILURE.finditer(report.split(
        "--- Failures ---", 1)[-1])} if "--- Failures ---" in report else {}
    counted = {rule: n for rule, n in failed.items()
               if not any(p not in failed for p in _or_parents().get(rule, []))}
    return counted, report
