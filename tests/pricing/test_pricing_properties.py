# ruff: noqa: F811  (the ledger fixture is imported from pricing_helpers)
"""Property tests (hypothesis): cost never negative; per-token cost monotone in tokens."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pricing_helpers import add_call, costs, ledger  # noqa: F401  (fixture)

_ids = itertools.count()
counts = st.integers(min_value=0, max_value=5_000_000)
calls = st.fixed_dictionaries({
    "model": st.sampled_from(["tok", "tok-c", "tier", "tier-c", "img", "tts", "asr"]),
    "started_at": st.sampled_from(["2025-01-01 00:00:00+00", "2025-02-28 23:59:59+00",
                                   "2025-03-01 00:00:00+00", "2026-01-01 12:00:00+00"]),
    "status": st.sampled_from([200, 200, 200, 401, 429, 500]),
    "requests": st.integers(min_value=1, max_value=1_000),
    "input": counts, "cached": counts, "output": counts,
    "images": st.integers(min_value=0, max_value=100),
    "characters": st.integers(min_value=0, max_value=1_000_000),
    "audio_seconds": st.floats(min_value=0, max_value=100_000, allow_nan=False),
})
PROFILE = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROFILE
@given(call=calls)
def test_cost_is_never_negative(ledger, call):
    cid = f"p{next(_ids)}"
    add_call(ledger, cid, **call)
    got = costs(ledger, cid)
    for name in ("cost", "cost_as_token", "cost_as_request"):
        assert got[name] is None or got[name] >= 0


@PROFILE
@given(model=st.sampled_from(["tok", "tier"]), base=st.tuples(counts, counts, counts),
       extra=st.tuples(counts, counts, counts), requests=st.integers(1, 50))
def test_per_token_cost_is_monotone_in_tokens(ledger, model, base, extra, requests):
    """More input, cached or output tokens never cost less (cached stays within input)."""
    inp, cached, out = base
    cached = min(cached, inp)
    more_inp, more_out = inp + extra[0], out + extra[2]
    more_cached = cached + min(extra[1], extra[0])
    a, b = f"m{next(_ids)}", f"m{next(_ids)}"
    add_call(ledger, a, model, requests=requests, input=inp, cached=cached, output=out)
    add_call(ledger, b, model, requests=requests, input=more_inp, cached=more_cached,
             output=more_out)
    assert costs(ledger, b)["cost_as_token"] >= costs(ledger, a)["cost_as_token"]
