"""Month-end forecast on series whose trend and weekday pattern are known."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from ledger.connect import open_ledger
from pricing.forecast import month_forecast

# Monday..Sunday offsets (sum 0): busy midweek, quiet weekend.
WEEKDAY = [0, 10, 20, 30, 40, -50, -50]
START = date(2025, 1, 18)  # 56 days before 2025-03-15
AS_OF = date(2025, 3, 15)


def spend(d: date) -> int:
    return 100 + 2 * (d - START).days + WEEKDAY[d.weekday()]


def build(tmp_path, noise=lambda d: 0, key="kA"):
    conn = open_ledger(str(tmp_path / "f.duckdb"))
    conn.execute("INSERT INTO prices (model, effective_from, request) "
                 "VALUES ('x-c', DATE '2020-01-01', 1)")
    d = START
    while d <= AS_OF:
        # one aggregated row per day: `requests` calls at 1.00 each = the day's spend
        conn.execute(
            "INSERT INTO calls (call_id, source, started_at, key_id, endpoint, model, base_model, "
            "billing_mode, status, requests, input_tokens, cached_tokens, output_tokens, "
            "reasoning_tokens, images, characters, audio_seconds) "
            "VALUES (?, 'csv', ?, ?, 'chat', 'x-c', 'x', 'request', 200, ?, 0, 0, 0, 0, 0, 0, 0)",
            [f"d{d}", f"{d} 12:00:00+00", key, spend(d) + noise(d)])
        d += timedelta(days=1)
    return conn


def test_trend_and_weekday_pattern_recovered(tmp_path):
    conn = build(tmp_path)
    fc = month_forecast(conn, "2025-03", AS_OF)
    spent = sum(spend(date(2025, 3, i)) for i in range(1, 16))
    rest = sum(spend(date(2025, 3, i)) for i in range(16, 32))
    assert fc.spent == Decimal(spent)
    assert fc.method == "trend + weekday offsets"
    assert fc.expected_rest == Decimal(rest)
    assert fc.total == Decimal(spent + rest)
    assert fc.low == fc.high == fc.total  # the series is exact: no residual, no width
    sunday = fc.daily.set_index("day").loc[date(2025, 3, 16), "expected"]
    assert sunday == pytest.approx(spend(date(2025, 3, 16)))
    assert fc.against(Decimal(spent + rest - 1)) == "over budget"
    assert fc.against(Decimal(spent + rest + 1)) == "within budget"


def test_interval_covers_truth_under_noise(tmp_path):
    conn = build(tmp_path, noise=lambda d: 6 if d.toordinal() % 3 == 0 else -3)
    fc = month_forecast(conn, "2025-03", AS_OF, level=0.9)
    truth = sum(spend(date(2025, 3, i)) for i in range(1, 32))
    assert fc.low < fc.total < fc.high
    assert fc.low <= truth <= fc.high
    assert fc.high - fc.low < Decimal(truth) / 20  # informative, not a blanket range


def test_key_scope_and_short_history(tmp_path):
    conn = build(tmp_path)
    assert month_forecast(conn, "2025-03", AS_OF, key="nobody").total == 0
    fc = month_forecast(conn, "2025-03", AS_OF, history_days=10)
    assert fc.method == "mean of recent days"
    assert fc.low < fc.total < fc.high
