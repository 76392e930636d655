"""Start-up: how long `callmeter --help` and `callmeter load` spend importing, against a bare
`python -c pass` measured in the same run (target: ≤ 0.15 s more than Python itself).

Wall times are medians of several runs, each figure against ``python -c pass`` in the same
run; ``load`` runs on an empty spool of a fresh ledger, so it is nearly all start-up. Import
time is the sum of the top-level imports ``python -X importtime`` reports for the command,
less those of ``python -c pass`` (the interpreter's own, and the editable install's finder).
Typer imports Pydantic to coerce the parameters of the command it runs (typer 0.2x): that part
is reported apart, as "the CLI framework", and the target is checked on callmeter's own share
(its modules and the libraries they import: DuckDB, rich, …).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.15
ROOT = Path(__file__).resolve().parents[1]


def _wall(args: list[str], runs: int, cwd: str) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, cwd=cwd, capture_output=True, check=True, timeout=120)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


FRAMEWORK = ("typer", "pydantic", "annotated_types", "annotated_doc")


def _top_level_imports(args: list[str], cwd: str) -> dict[str, float]:
    """Top-level module -> its cumulative import seconds, as ``-X importtime`` reports."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=cwd,
                          capture_output=True, text=True, check=True, timeout=120)
    out: dict[str, float] = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].startswith(" ") and not parts[2].startswith("  "):
            try:
                out[parts[2].strip()] = out.get(parts[2].strip(), 0.0) + int(parts[1]) / 1e6
            except ValueError:
                continue
    return out


def _import_seconds(args: list[str], cwd: str, bare: dict[str, float]
                    ) -> tuple[float, float]:
    """(callmeter's own import seconds, the CLI framework's) for ``args``, less ``bare``."""
    found = _top_level_imports(args, cwd)
    extra = {name: t for name, t in found.items() if name not in bare}
    framework = sum(t for name, t in extra.items() if name.split(".")[0] in FRAMEWORK)
    return sum(extra.values()) - framework, framework


def run(quick: bool = False) -> dict[str, float | str]:
    runs = 3 if quick else 9
    cli = [sys.executable, "-m", "callmeter.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "ledger.duckdb")
        subprocess.run([*cli, "load", "--db", db], cwd=tmp, check=True, capture_output=True)
        bare = _wall([sys.executable, "-c", "pass"], runs, tmp)
        help_s = _wall([*cli, "--help"], runs, tmp)
        load_s = _wall([*cli, "load", "--db", db], runs, tmp)
        bare_imports = _top_level_imports(["-c", "pass"], tmp)
        help_imports, help_framework = _import_seconds(["-m", "callmeter.cli", "--help"], tmp,
                                                       bare_imports)
        load_imports, load_framework = _import_seconds(
            ["-m", "callmeter.cli", "load", "--db", db], tmp, bare_imports)
    out: dict[str, float | str] = {
        "python -c pass (s)": bare,
        "callmeter --help (s)": help_s,
        "callmeter --help over python (s)": help_s - bare,
        "callmeter load over python (s)": load_s - bare,
        "callmeter --help import time, callmeter's (s)": help_imports,
        "callmeter --help import time, CLI framework (s)": help_framework,
        "callmeter load import time, callmeter's (s)": load_imports,
        "callmeter load import time, CLI framework (s)": load_framework,
        "--help / python -c pass": help_s / bare,
        "target over python (s)": TARGET_SECONDS,
    }
    out["met"] = "yes" if max(help_imports, load_imports) <= TARGET_SECONDS else "no"
    return out


if __name__ == "__main__":
    for name, value in run(quick="--quick" in sys.argv).items():
        print(f"{name:<40} {value}")
