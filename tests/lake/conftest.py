"""Fixtures for the lake tests: one real PostgreSQL 15 cluster per session, a database per test."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgcluster import Cluster, missing_reason, start_cluster  # noqa: E402


@pytest.fixture(scope="session")
def pg_cluster():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@dataclass
class Lake:
    db: str           # the --db value
    data_path: str    # the --data-path value
    dbname: str
    cluster: Cluster


@pytest.fixture
def lake(pg_cluster: Cluster, tmp_path: Path) -> Lake:
    """A new, empty lake: its own catalog database and data folder."""
    dbname = pg_cluster.create_database()
    return Lake(pg_cluster.lake_target(dbname), str(tmp_path / "lake-data"), dbname, pg_cluster)
