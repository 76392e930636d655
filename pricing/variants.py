"""Billing-variant savings: the one rule for what switching between ``model`` (per token) and
``model-c`` (per request) would save. The Billing page, ``callmeter recommend`` and
:func:`pricing.switch_savings` all build their SQL here, over whichever source is fastest
(``priced_calls``, the cost memo, a rollup or a pre-summed TEMP table): each source only says
how it sums the measures below.

For a workload (a group of calls): ``actual_cost`` is what it paid, ``cost_all_token`` and
``cost_all_request`` what every call would have cost on each variant. A total over calls of
which any is unpriced is unknown (NULL), never a partial sum. ``cheaper_mode`` is the variant
with the lower total (per token on a tie), known only when both totals are; ``saving`` is
``actual_cost`` minus the cheaper total (0 when the workload already is on it).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["VARIANT_MEASURES", "RAW_MEASURES", "summed", "raw", "variant_totals_sql",
           "variant_choice_sql", "VARIANT_COLUMNS"]

# What a source must be able to sum: name -> the aggregate over priced_calls rows.
# (a row without ``requests``, as a hand-made row may be, counts as one call)
_CALLS = "sum(coalesce(requests, 1))"
RAW_MEASURES: dict[str, str] = {
    "calls": _CALLS,
    "token_calls": f"{_CALLS} FILTER (WHERE billing_mode = 'token')",
    "request_calls": f"{_CALLS} FILTER (WHERE billing_mode = 'request')",
    "cost": "sum(cost)",
    "cost_as_token": "sum(cost_as_token)",
    "cost_as_request": "sum(cost_as_request)",
    "unpriced_calls": f"{_CALLS} FILTER (WHERE cost IS NULL)",
    "no_token_price_calls": f"{_CALLS} FILTER (WHERE cost_as_token IS NULL)",
    "no_request_price_calls": f"{_CALLS} FILTER (WHERE cost_as_request IS NULL)",
}
VARIANT_MEASURES = tuple(RAW_MEASURES)

Measure = Callable[[str], str]


def raw(name: str) -> str:
    """A measure summed over ``priced_calls`` rows (or the memo read from ``calls``)."""
    return RAW_MEASURES[name]


def summed(name: str) -> str:
    """A measure summed over a table that already holds it per row (rollups, TEMP sums);
    the per-mode call counts from its ``calls`` column."""
    if name == "token_calls":
        return "sum(calls) FILTER (WHERE billing_mode = 'token')"
    if name == "request_calls":
        return "sum(calls) FILTER (WHERE billing_mode = 'request')"
    return f"sum({name})"


def _known(total: str, missing: str) -> str:
    return f"CASE WHEN coalesce({missing}, 0) > 0 THEN NULL ELSE {total} END"


def variant_totals_sql(measure: Measure) -> str:
    """The SELECT list (aggregates) of a workload's totals, for a GROUP BY over a source that
    sums its measures with ``measure`` (:func:`raw` or :func:`summed`)."""
    m = measure
    return f"""
        coalesce({m('calls')}, 0) AS calls,
        coalesce({m('token_calls')}, 0) AS token_calls,
        coalesce({m('request_calls')}, 0) AS request_calls,
        {_known(m('cost'), m('unpriced_calls'))} AS actual_cost,
        {_known(m('cost_as_token'), m('no_token_price_calls'))} AS cost_all_token,
        {_known(m('cost_as_request'), m('no_request_price_calls'))} AS cost_all_request,
        coalesce({m('unpriced_calls')}, 0) AS unpriced_calls,
        coalesce({m('no_token_price_calls')}, 0) AS no_token_price_calls,
        coalesce({m('no_request_price_calls')}, 0) AS no_request_price_calls"""


def variant_choice_sql(totals: str = "") -> str:
    """The SELECT list deciding the cheaper variant and the saving from a row of
    :func:`variant_totals_sql` (``totals``: its alias with a dot, or empty)."""
    t = totals
    both = f"{t}cost_all_token IS NOT NULL AND {t}cost_all_request IS NOT NULL"
    cheaper = f"least({t}cost_all_token, {t}cost_all_request)"
    return f"""
        CASE WHEN {t}request_calls = 0 THEN 'token' WHEN {t}token_calls = 0 THEN 'request'
             ELSE 'mixed' END AS current_mode,
        CASE WHEN NOT ({both}) THEN NULL
             WHEN {t}cost_all_token <= {t}cost_all_request THEN 'token'
             ELSE 'request' END AS cheaper_mode,
        CASE WHEN {both} THEN {cheaper} END AS cheaper_cost,
        CASE WHEN {both} AND {t}actual_cost IS NOT NULL
             THEN {t}actual_cost - {cheaper} END AS saving,
        {both} AS switchable"""


# Column order of a variant comparison after its group columns.
VARIANT_COLUMNS = ("calls", "token_calls", "request_calls", "current_mode", "actual_cost",
                   "cost_all_token", "cost_all_request", "cheaper_mode", "cheaper_cost",
                   "saving", "switchable")
