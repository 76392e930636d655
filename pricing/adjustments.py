"""Money the platform moved that is not a call, for a month: refunds, settlements, fees, billed
lines (the ledger's ``adjustments`` table), and the month's platform net charge.

The platform's net charge for a month is what its log says it charged for calls plus these
adjustments (a refund is negative). The finance report shows each kind as its own line and the
reconciliation carries them per key × model, so ``charged + adjustments − ledger cost`` splits
exactly into its parts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import duckdb

from ledger import ADJUSTMENT_KINDS, fetch_one

__all__ = ["MONTH_ADJUSTMENTS_SQL", "ADJUSTMENTS_BY_KEY_MODEL_SQL", "month_money"]

MONTH_ADJUSTMENTS_SQL = """
SELECT kind, count(*) AS n, sum(amount) AS amount
FROM adjustments WHERE occurred_at >= ? AND occurred_at < ?
GROUP BY kind
"""

# per key x model, joined into the reconciliation ({bounds}: two ? placeholders)
ADJUSTMENTS_BY_KEY_MODEL_SQL = """
SELECT key_id, model, sum(amount) AS adjustments
FROM adjustments WHERE occurred_at >= ? AND occurred_at < ?
GROUP BY key_id, model
"""

def month_money(conn: duckdb.DuckDBPyConnection, agg: str, bounds: list[Any]) -> dict[str, Any]:
    """The month's money lines: charged on calls, each adjustment kind, the net, the cost.

    ``agg`` is the report's month aggregate (its ``charged`` and ``cost`` sums are exact).
    ``net_charged`` is None when neither calls nor adjustments carry a platform charge.
    """
    charged, cost = fetch_one(conn.execute(f"SELECT sum(charged), sum(cost) FROM {agg}"))
    by_kind = {k: (n, amount) for k, n, amount in conn.execute(MONTH_ADJUSTMENTS_SQL,
                                                                 bounds).fetchall()}
    out: dict[str, Any] = {"charged_on_calls": charged}
    for kind in ADJUSTMENT_KINDS:
        out[f"adjustments_{kind}"] = by_kind.get(kind, (0, None))[1]
        out[f"adjustments_{kind}_rows"] = by_kind.get(kind, (0, None))[0]
    adjustments = sum((a for _, a in by_kind.values() if a is not None), Decimal(0))
    out["adjustments"] = adjustments if by_kind else None
    out["net_charged"] = (None if charged is None and not by_kind
                          else (charged or Decimal(0)) + adjustments)
    out["ledger_cost"] = cost
    return out
