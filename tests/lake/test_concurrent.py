"""Two proxies' spools and two imports of one file load into one lake at once, a reader watching.

Each writer is its own process, as in production: two proxy replicas append to their own spool
folders with SpoolWriter, a loader per replica loads its folder in a loop, and `callmeter
import` runs twice on the same CSV at the same time (the re-run case that the anti-join alone
cannot make safe). The reader must never see a duplicated call_id, and counts never go back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.connect import open_ledger

pytestmark = pytest.mark.lake

ROOT = Path(__file__).resolve().parents[2]
PER_PROXY = 600
CSV_ROWS = 250

PROXY = textwrap.dedent("""
    import sys, time
    from decimal import Decimal
    from ledger.spool import SpoolWriter
    name, folder, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    w = SpoolWriter(folder, max_bytes=8_000, max_seconds=0.2)
    for i in range(n):
        assert w.append({"call_id": f"{name}-{i}", "source": "proxy",
                         "started_at": "2025-05-01T12:00:00+00:00", "model": "gpt-4o",
                         "input_tokens": 1000, "output_tokens": 10, "status": 200,
                         "charged": Decimal("0.001"), "tags": {"replica": name}})
        if i % 50 == 0:
            time.sleep(0.02)
    w.close()
""")

LOADER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import pricing
    from ledger.connect import open_ledger
    from ingest.loader import load_spool, finished_segments
    pricing.install()
    db, folder, done = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    conn = open_ledger(db)
    total = 0
    while True:
        finished = done.exists()
        total += load_spool(conn, folder).inserted
        if finished and not finished_segments(folder) and not list(folder.glob("*.open")):
            break
        time.sleep(0.05)
    print(total)
""")


def _env(home: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "CALLMETER_HOME": str(home)}


def _csv(path: Path) -> Path:
    lines = ["started_at,model,input_tokens,output_tokens,key_label"]
    for i in range(CSV_ROWS):
        lines.append(f"2025-04-{1 + i % 28:02d}T08:{i % 60:02d}:00Z,gpt-4o-c,{i},{i},team-{i % 3}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_two_proxies_and_two_imports_at_once_while_a_reader_aggregates(lake, tmp_path):
    open_ledger(lake.db, data_path=lake.data_path).close()
    (tmp_path / "proxy.py").write_text(PROXY)
    (tmp_path / "loader.py").write_text(LOADER)
    csv = _csv(tmp_path / "history.csv")
    procs, loaders, done = [], [], []
    for name in ("a", "b"):
        home = tmp_path / f"replica-{name}"
        spool = home / "callmeter.spool"
        done.append(tmp_path / f"{name}.done")
        loaders.append(subprocess.Popen(
            [sys.executable, str(tmp_path / "loader.py"), lake.db, str(spool), str(done[-1])],
            env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        procs.append(subprocess.Popen(
            [sys.executable, str(tmp_path / "proxy.py"), name, str(spool), str(PER_PROXY)],
            env=_env(home)))
    importers = [subprocess.Popen(
        [sys.executable, "-m", "callmeter.cli", "import", str(csv), "--db", lake.db],
        env=_env(tmp_path / "importer"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for _ in range(2)]

    reader = open_ledger(lake.db)
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        n, distinct, tokens = reader.execute(
            "SELECT count(*), count(DISTINCT call_id), coalesce(sum(input_tokens), 0) "
            "FROM priced_calls").fetchone()
        assert n == distinct, "a call_id appeared twice"
        seen.append(n)
        for p, flag in zip(procs, done, strict=True):
            if p.poll() is not None and not flag.exists():
                assert p.returncode == 0
                flag.touch()
        if all(p.poll() is not None for p in loaders + importers):
            break
        time.sleep(0.1)
    outputs = [p.communicate(timeout=60) for p in loaders + importers]
    assert [p.returncode for p in loaders + importers] == [0, 0, 0, 0], outputs

    assert seen == sorted(seen), "a reader saw the count go back"
    expected = 2 * PER_PROXY + CSV_ROWS
    assert reader.execute("SELECT count(*), count(DISTINCT call_id) FROM calls").fetchone() == (
        expected, expected)
    by_source = dict(reader.execute(
        "SELECT source, count(*) FROM calls GROUP BY 1").fetchall())
    assert by_source == {"proxy": 2 * PER_PROXY, "csv": CSV_ROWS}
    assert [int(out) for out, _ in outputs[:2]] == [PER_PROXY, PER_PROXY]
    imported = [out for out, _ in outputs[2:]]
    # one import inserted every row, the other found them all already there
    assert sorted(f"imported {CSV_ROWS}, duplicate 0" in o for o in imported) == [False, True]
    assert sum(f"imported 0, duplicate {CSV_ROWS}" in o for o in imported) == 1, imported
    # charged 0.001 on every proxy call: exact decimal total
    assert reader.execute("SELECT sum(charged) FROM calls").fetchone()[0] == Decimal("1.2")
    reader.close()
