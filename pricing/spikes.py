"""Spend spikes: a key spending far above its own usual day. One statistic, one function, for
the dashboard's Keys page and ``callmeter recommend --alerts`` alike.

Baseline: the key's spend on each UTC day of the ``baseline_days`` before ``day`` since its
first call (at least 7 days of history). A spike is spend > median + k × spread and at least
``min_increase`` above the median, where spread is 1.4826 × MAD (the median absolute
deviation, scaled to a standard deviation for normal data), floored at 10 % of the median so a
perfectly steady key is not flagged for a cent more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from statistics import median

import duckdb
import pandas as pd

from .groups import KEY_REF_SQL
from .memo import priced_source
from .periods import utc_day_sql, utc_start

__all__ = ["SPIKE_COLUMNS", "spikes", "robust_spread"]

SPIKE_COLUMNS = ["key_id", "key_hint", "day", "spend", "baseline_median", "spread",
                 "robust_z"]

# Spend per key and UTC day in [start, end), from priced calls or the daily rollup (the same
# sums: the rollup's rows are UTC days of the same costs).
_CALLS_SOURCE = ("started_at", "sum(cost)")
_ROLLUP_SOURCE = ("day", "sum(cost)")
# The key as pages name it (fingerprint, else ``label:NAME``): label-only keys (new-api token
# names) are keys of their own, not one NULL key with the keyless calls.
KEY_DAILY_SQL = f"""
SELECT {KEY_REF_SQL} AS key_ref, any_value(key_hint) AS key_hint, {{day}} AS d,
  coalesce({{spend}}, 0) AS spend
FROM {{source}}
WHERE {{time}} >= ? AND {{time}} < ?
  AND (CAST(? AS VARCHAR[]) IS NULL OR list_contains(CAST(? AS VARCHAR[]), {KEY_REF_SQL}))
GROUP BY key_ref, d
"""


def robust_spread(values: list[Decimal]) -> tuple[Decimal, Decimal]:
    """Median and robust spread: 1.4826 × MAD, floored at 10 % of the median."""
    med = median(values)
    mad = median([abs(v - med) for v in values])
    return med, max(Decimal("1.4826") * mad, med / 10)


@dataclass
class _KeyDays:
    hint: str | None
    days: dict[date, Decimal] = field(default_factory=dict)


def _daily(conn: duckdb.DuckDBPyConnection, start: date, end: date, rollup_table: str | None,
           key_ids: Sequence[str] | None) -> dict[str, _KeyDays]:
    bounds = [utc_start(start), utc_start(end)]
    time, spend = _ROLLUP_SOURCE if rollup_table else _CALLS_SOURCE
    source = rollup_table or priced_source(conn, *bounds)
    sql = KEY_DAILY_SQL.format(day=utc_day_sql(time), spend=spend, source=source, time=time)
    keys = None if key_ids is None else list(key_ids)
    by_key: dict[str, _KeyDays] = {}
    for key_id, hint, d, value in conn.execute(sql, [*bounds, keys, keys]).fetchall():
        by_key.setdefault(key_id, _KeyDays(hint)).days[d] = Decimal(value)
    return by_key


def spikes(conn: duckdb.DuckDBPyConnection, day: date | None = None, *,
           baseline_days: int = 28, k: Decimal = Decimal(5), min_increase: Decimal = Decimal(1),
           key_ids: Sequence[str] | None = None, rollup_table: str | None = None
           ) -> pd.DataFrame:
    """Keys whose spend on ``day`` (default yesterday, UTC) is far above their own baseline.

    ``key_ids`` limits the keys looked at (fingerprints or ``label:NAME``, as ``key_id`` names
    them in the result); ``rollup_table`` reads the daily rollup
    (``pricing.rollup.DAILY``, kept current by the dashboard) instead of the calls. Columns:
    :data:`SPIKE_COLUMNS`.
    """
    day = day or (datetime.now(UTC).date() - timedelta(days=1))
    by_key = _daily(conn, day - timedelta(days=baseline_days), day + timedelta(days=1),
                    rollup_table, key_ids)
    rows = []
    for key_id, entry in by_key.items():
        days = entry.days
        active = sorted(d for d in days if d < day)
        if not active or (day - active[0]).days < 7:
            continue
        base = [days.get(active[0] + timedelta(days=i), Decimal(0))
                for i in range((day - active[0]).days)]
        value = days.get(day, Decimal(0))
        med, spread = robust_spread(base)
        if value - med >= min_increase and value > med + k * spread:
            rows.append({"key_id": key_id, "key_hint": entry.hint, "day": day,
                         "spend": value, "baseline_median": med, "spread": spread,
                         "robust_z": ((value - med) / spread) if spread else None})
    return pd.DataFrame(rows, columns=SPIKE_COLUMNS)
