"""Periods and UTC days: one home for how a date, a month or a day in SQL is counted.

Every figure callmeter reports counts calls by their UTC time. Python bounds come from
:func:`utc_start` (aware) or :func:`utc_bound` (naive UTC, for SQL that casts to TIMESTAMP);
SQL takes the UTC day of a timestamp by epoch arithmetic (:func:`utc_day_sql`), which is far
cheaper than a calendar conversion per row, with the same result.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

__all__ = ["AsOf", "as_of", "Bound", "Period", "parse_month", "month_bounds", "utc_start",
           "utc_bound",
           "utc_day_sql", "utc_day_start_sql", "utc_week_sql", "UTC_DAY_SQL", "DAY_US"]

Period = date | datetime | str | None
Bound = date | datetime | str  # a period bound that is always given

DAY_US = 86_400_000_000  # microseconds in a day


def parse_month(month: str | date) -> date:
    """``'2025-03'`` (or any date in it) → the first day of that month."""
    if isinstance(month, date):
        return month.replace(day=1)
    try:
        return datetime.strptime(month, "%Y-%m").date()
    except ValueError as exc:
        raise ValueError(f"month must look like YYYY-MM, got {month!r}") from exc


def month_bounds(month: str | date) -> tuple[date, date]:
    """First day of the month and first day of the next month."""
    first = parse_month(month)
    days = calendar.monthrange(first.year, first.month)[1]
    return first, first + timedelta(days=days)


def utc_start(d: date | datetime | str) -> datetime:
    """Midnight UTC of a date; an aware datetime is converted to UTC, a naive one taken as UTC.

    ISO strings (``2025-03-01``, ``2025-03-01T12:00+02:00``) are accepted too.
    """
    if isinstance(d, str):
        d = datetime.fromisoformat(d) if len(d) > 10 else date.fromisoformat(d)
    if isinstance(d, datetime):
        return d.astimezone(UTC) if d.tzinfo else d.replace(tzinfo=UTC)
    return datetime.combine(d, time(0), tzinfo=UTC)


def utc_bound(value: Period) -> datetime | None:
    """A period bound as a naive UTC datetime (None for an open bound)."""
    if value is None or value == "":
        return None
    return utc_start(value).replace(tzinfo=None)


def _epoch_day(col: str) -> str:
    return f"(epoch_us({col}) // {DAY_US})"


def utc_day_sql(col: str) -> str:
    """The UTC day (a DATE) of the TIMESTAMPTZ ``col``."""
    return f"(DATE '1970-01-01' + CAST({_epoch_day(col)} AS INTEGER))"


def utc_day_start_sql(col: str) -> str:
    """Midnight UTC (a TIMESTAMPTZ) of the day of the TIMESTAMPTZ ``col``."""
    return f"make_timestamptz({_epoch_day(col)} * {DAY_US})"


def utc_week_sql(col: str) -> str:
    """Monday 00:00 (a TIMESTAMP) of ``col``'s UTC week, as ``date_trunc('week', …)`` gives:
    1970-01-01 was a Thursday."""
    day = _epoch_day(col)
    return f"CAST(DATE '1970-01-01' + CAST({day} - ({day} + 3) % 7 AS INTEGER) AS TIMESTAMP)"


# ``UTC_DAY_SQL.format(col=...)``: kept for callers that format a template.
UTC_DAY_SQL = utc_day_sql("{col}")


@dataclass(frozen=True)
class AsOf:
    """The one "as of" every month-to-date figure shares (budget status, a key's and the
    ledger's month-end forecast): the month the figures are for and the last complete UTC day
    counted as actual — the day before the month on its 1st, when nothing of it is complete."""

    month: date  # first day of the month
    day: date    # last complete UTC day counted

    @property
    def closed(self) -> bool:
        """The whole month is complete: nothing left to forecast."""
        return self.day >= month_bounds(self.month)[1] - timedelta(days=1)


def as_of(period_end: date | None = None, today: date | None = None) -> AsOf:
    """As of the end of a period that is over (a past period or month: its last day, complete),
    else as of yesterday (UTC) in today's month. ``today`` defaults to the UTC date now."""
    today = today or datetime.now(UTC).date()
    if period_end is not None and period_end < today:
        return AsOf(month=period_end.replace(day=1), day=period_end)
    return AsOf(month=today.replace(day=1), day=today - timedelta(days=1))
