# ruff: noqa: F811  (the ledger fixture is imported from pricing_helpers)
"""switch_savings and break_even_tokens against hand-computed workloads.

Sheet (pricing_helpers.SHEET): tok = 2 input / 1 cached / 8 output per 1M in February,
tok-c = 0.01 per call. A 2000-in/500-out call costs 0.004 + 0.004 = 0.008 per token.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pandas as pd
from pricing_helpers import add_call, ledger  # noqa: F401  (fixture)

from pricing import break_even_tokens, switch_savings

FEB = "2025-02-10 09:00:00+00"


def workloads(conn) -> None:
    for i in range(10):     # k1: small calls, per token: 0.008 each vs 0.01
        add_call(conn, f"k1-{i}", "tok", FEB, key="k1", input=2_000, output=500)
    add_call(conn, "k1-march", "tok", "2025-03-05 00:00:00+00", key="k1", input=9, output=9)
    for i in range(4):      # k2: per request already, and rightly (0.028 vs 0.01)
        add_call(conn, f"k2-{i}", "tok-c", FEB, key="k2", input=10_000, output=1_000)
    for i in range(5):      # k3: big calls paid per token: 0.056 each vs 0.01
        add_call(conn, f"k3-{i}", "tok", FEB, key="k3", input=20_000, output=2_000)
    add_call(conn, "k3-fail", "tok", FEB, key="k3", status=500, input=20_000, output=2_000)
    for i in range(2):      # k4: both variants of the same model, tiny calls (0.002 vs 0.01)
        add_call(conn, f"k4-t{i}", "tok", FEB, key="k4", input=1_000)
        add_call(conn, f"k4-c{i}", "tok-c", FEB, key="k4", input=1_000)
    add_call(conn, "k5", "img", FEB, key="k5", images=2)  # no per-request variant


def test_switch_savings_per_key_and_model(ledger):
    workloads(ledger)
    df = switch_savings(ledger, date(2025, 2, 1), "2025-03-01")
    rows = {r["key_id"]: r for r in df.to_dict("records")}
    assert set(rows) == {"k1", "k2", "k3", "k4", "k5"}
    k1, k2, k3, k4, k5 = (rows[k] for k in ("k1", "k2", "k3", "k4", "k5"))
    assert (k1["calls"], k1["current_mode"], k1["actual_cost"], k1["cost_all_token"],
            k1["cost_all_request"], k1["cheaper_mode"], k1["saving"]) == (
        10, "token", D("0.08"), D("0.08"), D("0.1"), "token", D("0"))
    assert (k2["current_mode"], k2["actual_cost"], k2["cost_all_token"], k2["cheaper_mode"],
            k2["saving"]) == ("request", D("0.04"), D("0.112"), "request", D("0"))
    assert (k3["calls"], k3["actual_cost"], k3["cost_all_request"], k3["cheaper_mode"],
            k3["saving"]) == (6, D("0.28"), D("0.05"), "request", D("0.23"))
    assert (k4["current_mode"], k4["token_calls"], k4["request_calls"], k4["actual_cost"],
            k4["cheaper_mode"], k4["saving"]) == ("mixed", 2, 2, D("0.024"), "token",
                                                  D("0.016"))
    assert k5["switchable"] is False or k5["switchable"] == False  # noqa: E712
    assert pd.isna(k5["cheaper_mode"]) and k5["saving"] is None
    assert k5["actual_cost"] == D("0.08")
    assert df["key_id"].tolist()[:2] == ["k3", "k4"]  # biggest saving first
    assert isinstance(k3["saving"], D)


def test_break_even_per_key_for_the_observed_mix(ledger):
    workloads(ledger)
    df = break_even_tokens(ledger, "tok", by_key=True, since="2025-02-01", until="2025-03-01")
    rows = {r["key_id"]: r for r in df.to_dict("records")}
    # k1: 80 % input at 2/1M + 20 % output at 8/1M = 3.2 per 1M → 0.01 / 0.0000032 = 3125
    assert rows["k1"]["token_cost_per_1m"] == D("3.2")
    assert rows["k1"]["break_even_tokens"] == 3125
    assert rows["k1"]["tokens_per_call"] == D("2500")
    assert rows["k1"]["cheaper_mode"] == "token"
    # k3: 0.28 for 110000 tokens → 0.01 × 110000 / 0.28 = 3928.57… → 3929; failed call left out
    assert rows["k3"]["calls"] == 5
    assert rows["k3"]["break_even_tokens"] == 3929
    assert (rows["k3"]["cheaper_mode"], rows["k3"]["saving"]) == ("request", D("0.23"))


def test_break_even_overall(ledger):
    workloads(ledger)
    df = break_even_tokens(ledger, since="2025-02-01", until="2025-03-01")
    [row] = df.to_dict("records")
    # 23 calls, 183000 tokens, 0.48 per token vs 0.23 per request:
    # 0.01 × 183000 / 0.48 = 3812.5 → 3812 (half to even)
    assert (row["base_model"], row["calls"]) == ("tok", 23) and pd.isna(row["key_id"])
    assert (row["token_cost"], row["request_cost"]) == (D("0.48"), D("0.23"))
    assert row["break_even_tokens"] == 3812
    assert row["input_share"] == D(164_000) / D(183_000)
    assert row["request_price"] == D("0.01")


def test_period_bounds_are_utc_and_until_is_exclusive(ledger):
    add_call(ledger, "a", "tok", "2025-02-28 23:30:00-01:00", key="k", input=1_000)  # 1 March UTC
    add_call(ledger, "b", "tok", "2025-02-28 23:30:00+00:00", key="k", input=1_000)
    df = switch_savings(ledger, "2025-02-01", "2025-03-01")
    assert df["calls"].tolist() == [1]
