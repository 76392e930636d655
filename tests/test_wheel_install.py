"""`pip install callmeter` works from any folder: a wheel built from this tree, installed into a
fresh virtualenv outside the repository, prices the demo with the shipped price sheet, runs
`recommend` and `report`, and serves the dashboard's Recommendations page — all from another
folder, with no path into the repository.

Offline-friendly: the wheel is installed without its dependencies, which the fresh venv reads
from this project's venv (a path entry to its site-packages; its editable install of callmeter
is not activated there, so only the wheel's copy of callmeter can be imported).
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the fresh venv's bin folder, a working folder that is not the repository)."""
    base = tmp_path_factory.mktemp("wheel")
    wheels = base / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
          str(ROOT)], cwd=base)
    [wheel] = wheels.glob("callmeter-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=base)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
          "--no-index", str(wheel)], cwd=base)
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return venv / "bin", elsewhere


def test_the_wheel_ships_the_data_and_imports_from_its_own_copy(installed):
    bin_, cwd = installed
    out = _run([str(bin_ / "python"), "-c", textwrap.dedent("""
        import json, callmeter, ledger
        print(json.dumps({"pkg": callmeter.__file__,
                          "prices": str(ledger.shipped_file("prices.csv")),
                          "models": str(ledger.shipped_file("models.csv")),
                          "samples": sorted(p.name for p in
                                            ledger.shipped_file("samples").iterdir())}))
        """)], cwd).stdout
    found = json.loads(out)
    assert str(ROOT) not in out
    assert "site-packages" in found["pkg"]
    assert Path(found["prices"]).is_file() and Path(found["models"]).is_file()
    assert found["samples"] == sorted(p.name for p in (ROOT / "data" / "samples").iterdir())


def test_demo_recommend_report_and_the_recommendations_page_from_another_folder(installed):
    bin_, cwd = installed
    db = cwd / "ledger.duckdb"
    demo = _run([str(bin_ / "callmeter"), "demo", "--no-serve", "--calls", "4000",
                 "--days", "40", "--db", str(db)], cwd).stdout
    assert "prices loaded from" in demo and "unpriced" not in demo
    priced = _run([str(bin_ / "python"), "-c",
                   "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
                   "print(c.execute('SELECT count(*), count(cost) FROM priced_calls')"
                   ".fetchone())", str(db)], cwd).stdout
    calls, with_cost = eval(priced)  # (n, n): a tuple of two ints
    assert calls > 0 and with_cost == calls  # every call priced
    rec = _run([str(bin_ / "callmeter"), "recommend", "--json", "--db", str(db)], cwd).stdout
    assert "recommendations" in json.loads(rec)
    month = datetime.now(UTC).strftime("%Y-%m")
    report = _run([str(bin_ / "callmeter"), "report", "--month", month, "--format", "json",
                   "--db", str(db)], cwd).stdout
    assert json.loads(report)["totals"]["calls"] > 0
    page = _run([str(bin_ / "python"), "-c", textwrap.dedent("""
        import os, sys
        from pathlib import Path
        import dashboard
        from streamlit import config
        from streamlit.testing.v1 import AppTest
        config.set_option("server.address", "127.0.0.1")  # local: no login
        os.environ["CALLMETER_DB"] = sys.argv[1]
        app = AppTest.from_file(str(Path(dashboard.__file__).parent / "app.py"),
                                default_timeout=120)
        app.run()
        app.switch_page("app_pages/recommendations.py")
        app.run()
        assert not app.exception, app.exception
        print(app.title[0].value, "|", len(app.markdown), "markdown blocks")
        """), str(db)], cwd).stdout
    assert page.startswith("Recommendations |")
