"""The cost memo may only ever make priced_calls faster, never different."""

from __future__ import annotations

from decimal import Decimal

from pricing_helpers import add_call, ledger  # noqa: F401  (fixture)

from pricing.memo import refresh_cost_memo
from pricing.queries import priced_select

COLS = "call_id, cost, cost_as_token, cost_as_request, priced, price_effective_from, currency"


def _view(conn):
    return conn.execute(f"SELECT {COLS} FROM priced_calls ORDER BY call_id").fetchall()


def _live(conn):
    return conn.execute(
        f"SELECT {COLS} FROM ({priced_select('calls')}) ORDER BY call_id").fetchall()


def _stale(conn) -> int:
    return conn.execute("SELECT count(*) FROM priced_calls p JOIN calls c USING (call_id) "
                        "WHERE c.memo_cost IS NULL AND p.cost IS NOT NULL").fetchone()[0]


def test_view_equals_live_pricing_before_and_after_the_memo_is_refreshed(ledger):  # noqa: F811
    add_call(ledger, "a", "tok", input=1_000_000, cached=400_000, output=10_000)
    add_call(ledger, "b", "tok-c", "2025-03-02 00:00:00+00", input=5, output=5)
    add_call(ledger, "c", "unknown-model", input=10)
    # plain INSERTs bypass the memo: the view prices them live
    assert _stale(ledger) == 2
    assert _view(ledger) == _live(ledger)
    refresh_cost_memo(ledger)
    assert _stale(ledger) == 0
    assert _view(ledger) == _live(ledger)
    # a = 600k × $2 + 400k × $1 + 10k × $8 per 1M = 1.2 + 0.4 + 0.08
    assert dict((r[0], r[1]) for r in _view(ledger))["a"] == Decimal("1.68")


def test_a_price_change_by_any_route_makes_the_memo_stale_not_wrong(ledger):  # noqa: F811
    add_call(ledger, "a", "tok", input=1_000_000)
    refresh_cost_memo(ledger)
    before = _view(ledger)
    ledger.execute("UPDATE prices SET input = 3 WHERE model = 'tok' "
                   "AND effective_from = DATE '2025-01-01'")
    after = _view(ledger)
    assert after == _live(ledger)
    assert before[0][1] == Decimal("2") and after[0][1] == Decimal("3")
    refresh_cost_memo(ledger)
    assert _view(ledger) == after
