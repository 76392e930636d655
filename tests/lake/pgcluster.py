"""A throwaway PostgreSQL 15 cluster on a free loopback port, for the lake tests and benchmark.

``initdb``/``pg_ctl`` refuse to run as root, so when we are root they run as the ``postgres``
user (``runuser``) in a temp folder that user owns. Trust authentication on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


def _pg_bin() -> Path:
    """PostgreSQL 15 (the machine image's), else the newest server Debian installed."""
    preferred = Path("/usr/lib/postgresql/15/bin")
    if (preferred / "initdb").exists():
        return preferred
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    return found[-1].parent if found else preferred


PG_BIN = _pg_bin()


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            return (f"PostgreSQL server binaries not found ({PG_BIN / tool}); "
                    "run tests/lake/ensure_postgres.sh as root")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run initdb/pg_ctl as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    folder: Path
    port: int
    user: str = "postgres"
    host: str = "127.0.0.1"

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"dbname={dbname} host={self.host} port={self.port} user={self.user}"

    def create_database(self, name: str | None = None) -> str:
        import psycopg

        name = name or "lake_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.conninfo(), autocommit=True) as pg:
            pg.execute(f'CREATE DATABASE "{name}"')
        return name

    def lake_target(self, dbname: str) -> str:
        return "ducklake:postgres:" + self.conninfo(dbname)

    def stop(self) -> None:
        _run_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast",
                 "-w", "stop"], check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def _run_pg(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=check, capture_output=True, text=True, cwd="/")


def start_cluster(attempts: int = 3) -> Cluster:
    """initdb + pg_ctl start in a new temp folder; retries when the chosen port was taken."""
    folder = Path(tempfile.mkdtemp(prefix="callmeter-pg-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    data = folder / "data"
    _run_pg([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--no-sync", "--no-instructions"])
    last = ""
    for _ in range(attempts):
        port = _free_port()
        opts = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        done = _run_pg([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts,
                        "-l", str(folder / "server.log"), "-w", "-t", "60", "start"],
                       check=False)
        if done.returncode == 0:
            return Cluster(folder, port)
        last = done.stdout + done.stderr + _tail(folder / "server.log")
    shutil.rmtree(folder, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL did not start: {last}")


def _tail(path: Path) -> str:
    try:
        return path.read_text()[-2000:]
    except OSError:
        return ""
