"""Helpers the proxy tests import by name (a module of its own: `conftest` is not importable
unambiguously when several test folders are collected together)."""

from __future__ import annotations

from upstream import ProxyServer

from ingest.loader import load_spool
from ledger.connect import open_ledger

# A key distinctive enough that finding it in any written file is certainly a leak.
PROXY_TEST_KEY = "sk-proxytest-7Qz9XkL2mVb8NcR4-wxyz"


def load_rows(proxy: ProxyServer) -> list[dict]:
    """Close the proxy's spool segment, `callmeter load` it, and return the ledger's rows."""
    proxy.flush()
    conn = open_ledger(proxy.db)
    try:
        load_spool(conn, proxy.spool_folder)
        cur = conn.execute("SELECT * FROM calls ORDER BY started_at, call_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()
