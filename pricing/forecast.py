"""Month-end forecast: spend to date plus the expected rest of the month, with an interval.

The rest of the month comes from recent daily spend fitted as level + linear trend + one offset
per weekday (ordinary least squares), so a workload that is quiet at weekends is not projected
as if every day were a Tuesday. The interval is the usual prediction interval of that fit.
Days are UTC days; spend is ``priced_calls.cost`` (unpriced calls are not in it). The daily
series is read from the daily rollup when it is current (every bound is a whole UTC day, and
the key and tag it is limited to are rollup dimensions, so the sums are the calls' own), else
from the calls: 8.4 s of the Key detail page at 100M calls was that read of the calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from statistics import NormalDist
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from . import rollup
from .periods import month_bounds, utc_day_sql, utc_start

__all__ = ["Forecast", "month_forecast", "daily_spend"]

CENT = Decimal("0.01")

# Daily spend in [start, end) UTC, optionally for one key (key_id, hint or label) or tag k=v;
# {source} is the calls (time column started_at) or the daily rollup (day, midnight UTC).
DAILY_SPEND_SQL = """
SELECT {day} AS day,
       coalesce(sum(cost), 0) AS spend
FROM {source}
WHERE {time} >= ? AND {time} < ?
  AND (CAST(? AS VARCHAR) IS NULL OR key_id = ? OR key_label = ? OR key_hint = ?)
  AND (CAST(? AS VARCHAR) IS NULL OR map_extract_value(tags, ?) = ?)
GROUP BY ALL
ORDER BY day
"""


def _scope_params(key: str | None, tag: str | None) -> list[Any]:
    tag_key, _, tag_value = (tag or "").partition("=")
    return [key, key, key, key, tag, tag_key, tag_value]


def daily_spend(conn: duckdb.DuckDBPyConnection, start: date, end: date, *,
                key: str | None = None, tag: str | None = None) -> pd.DataFrame:
    """Spend per UTC day in [start, end), zero-filled: columns ``day``, ``spend`` (Decimal)."""
    return _zero_filled(_spend_by_day(conn, start, end, key, tag), start, end)


def _spend_by_day(conn: duckdb.DuckDBPyConnection, start: date, end: date, key: str | None,
                  tag: str | None) -> dict[date, Decimal]:
    """One GROUP BY over [start, end): spend per UTC day that has calls."""
    bounds = [utc_start(start), utc_start(end)]
    source, time = rollup.summed_source(conn, *bounds)  # whole days: the daily rollup if current
    sql = DAILY_SPEND_SQL.format(day=utc_day_sql(time), source=source, time=time)
    rows = conn.execute(sql, [*bounds, *_scope_params(key, tag)]).fetchall()
    return {r[0]: Decimal(r[1]) for r in rows}


def _zero_filled(by_day: dict[date, Decimal], start: date, end: date) -> pd.DataFrame:
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    return pd.DataFrame({"day": days, "spend": [by_day.get(d, Decimal(0)) for d in days]})


@dataclass(frozen=True)
class Forecast:
    """Month-end forecast. Money in the sheet's currency, rounded to cents except ``spent``."""

    month: date
    as_of: date                 # last day counted as actual
    spent: Decimal              # exact spend from the 1st through ``as_of``
    expected_rest: Decimal
    total: Decimal
    low: Decimal
    high: Decimal
    level: float
    method: str
    daily: pd.DataFrame = field(repr=False)   # day, actual, expected, low, high (floats)

    def against(self, budget: Decimal | None) -> str:
        if budget is None:
            return "no budget"
        if self.low > budget:
            return "over budget"
        if self.high > budget:
            return "may exceed budget"
        return "within budget"


def _design(days: list[date], origin: date, trend: bool) -> np.ndarray:
    cols = [np.ones(len(days))]
    if trend:
        cols.append(np.array([(d - origin).days for d in days], dtype=float))
    for wd in range(1, 7):  # Monday is the baseline weekday
        cols.append(np.array([1.0 if d.weekday() == wd else 0.0 for d in days]))
    return np.column_stack(cols)


def _fit(history: pd.DataFrame, future: list[date]
         ) -> tuple[np.ndarray, float, float, str]:
    """Predicted spend per future day, the sum's standard error, and the method used."""
    y = np.array([float(v) for v in history["spend"]])
    days = list(history["day"])
    n = len(y)
    if n == 0:
        return np.zeros(len(future)), 0.0, 0.0, "no history"
    if n < 14:  # too short for weekday offsets: flat mean
        mean = float(y.mean())
        sd = float(y.std(ddof=1)) if n > 1 else 0.0
        se = sd * np.sqrt(len(future) + len(future) ** 2 / n)
        return np.full(len(future), mean), se, mean, "mean of recent days"
    trend = n >= 21
    X = _design(days, days[0], trend)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    Xf = _design(future, days[0], trend)
    pred = np.clip(Xf @ beta, 0, None)
    dof = max(n - X.shape[1], 1)
    sigma2 = float(((y - X @ beta) ** 2).sum()) / dof
    xs = Xf.sum(axis=0)
    var = sigma2 * (len(future) + float(xs @ np.linalg.pinv(X.T @ X) @ xs))
    method = "trend + weekday offsets" if trend else "level + weekday offsets"
    return pred, float(np.sqrt(max(var, 0.0))), float(beta[0]), method


def month_forecast(conn: duckdb.DuckDBPyConnection, month: str | date,
                   as_of: date | None = None, *, history_days: int = 56, level: float = 0.9,
                   key: str | None = None, tag: str | None = None) -> Forecast:
    """Forecast the month's spend: actual through ``as_of`` (default yesterday, UTC) + the rest.

    ``key`` limits to one key (id, hint or label), ``tag`` to calls tagged ``name=value``.
    """
    first, nxt = month_bounds(month)
    as_of = as_of or (datetime.now(UTC).date() - timedelta(days=1))
    as_of = min(max(as_of, first - timedelta(days=1)), nxt - timedelta(days=1))
    end = as_of + timedelta(days=1)
    history_start = as_of + timedelta(days=1 - history_days)
    # One pass for the month to date and the history window together.
    by_day = _spend_by_day(conn, min(first, history_start), end, key, tag)
    actual = _zero_filled(by_day, first, end)
    spent = sum(actual["spend"], Decimal(0))
    history = _zero_filled(by_day, history_start, end)
    # Leading days before the first spend are "not yet in use", not zero spend.
    nonzero = [i for i, v in enumerate(history["spend"]) if v != 0]
    history = history.iloc[nonzero[0]:] if nonzero else history.iloc[0:0]
    future = [as_of + timedelta(days=i) for i in range(1, (nxt - as_of).days)]
    pred, se, _, method = _fit(history, future)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    rest = Decimal(str(round(float(pred.sum()), 6)))
    half = Decimal(str(round(z * se, 6)))
    total = spent + rest
    low = spent + max(rest - half, Decimal(0))
    daily = pd.DataFrame({
        "day": list(actual["day"]) + future,
        "actual": [float(v) for v in actual["spend"]] + [None] * len(future),
        "expected": [None] * len(actual) + [float(v) for v in pred],
    })
    return Forecast(month=first, as_of=as_of, spent=spent,
                    expected_rest=rest.quantize(CENT), total=total.quantize(CENT),
                    low=low.quantize(CENT), high=(total + half).quantize(CENT), level=level,
                    method=method, daily=daily)
