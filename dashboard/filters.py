"""Sidebar filters shared by every page, kept in the URL so a view can be shared.

:class:`Filters` is a frozen value (it keys the query cache); the sidebar widgets read their
first values from ``st.query_params`` and write them back after every change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import streamlit as st

TIMEZONES = ("UTC", "Europe/London", "Europe/Berlin", "America/New_York",
             "America/Los_Angeles", "Asia/Shanghai", "Asia/Tokyo", "Asia/Kolkata")
LIST_PARAMS = ("keys", "models", "endpoints", "modes", "tags")


@dataclass(frozen=True)
class Filters:
    """Period (inclusive local dates in ``tz``) and the dimension filters; empty means all."""

    start: date
    end: date
    tz: str = "UTC"
    keys: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # "team=search"
    scope_keys: tuple[str, ...] | None = None  # a key owner's own keys (auth), None = all

    def bounds(self) -> tuple[datetime, datetime]:
        """The period as [start, end) instants."""
        zone = ZoneInfo(self.tz)
        return (datetime.combine(self.start, time(), zone),
                datetime.combine(self.end + timedelta(days=1), time(), zone))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Filters:
        """The same number of days just before this period."""
        return replace(self, start=self.start - timedelta(days=self.days),
                       end=self.start - timedelta(days=1))

    def with_keys(self, keys: tuple[str, ...]) -> Filters:
        return replace(self, keys=keys)

    def keys_in_view(self) -> tuple[str, ...] | None:
        """The keys the chosen keys and the user's scope leave (None: every key)."""
        if not self.keys:
            return self.scope_keys
        return tuple(k for k in self.keys if self.scope_keys is None or k in self.scope_keys)


@dataclass(frozen=True)
class Display:
    """How money is shown: the sheet's currency converted at a rate the user sets."""

    currency: str = "USD"
    rate: Decimal = Decimal(1)

    def money(self, value: object) -> str:
        if value is None or value != value:  # None or NaN
            return "—"
        amount = (Decimal(str(value)) * self.rate).quantize(Decimal("0.01"))
        return f"{amount:,} {self.currency}"


EARLIEST = date(2000, 1, 1)     # URL dates outside these are refused (date + 1 day overflows
LATEST = date(2100, 12, 31)     # at 9999-12-31; no ledger holds calls outside them)
MAX_RATE = Decimal(1_000_000)   # 1 unit of the sheet's currency is at most this much
URL_PROBLEMS = "f_url_problems"


def parse_rate(text: str | None) -> tuple[Decimal, str | None]:
    """The display rate, or 1 and why ``text`` is not one (never NaN, infinite, 0, negative
    or absurd: ``?rate=1e30`` or ``?rate=-1`` in a shared URL would show nonsense money)."""
    if not text or not text.strip():
        return Decimal(1), None
    try:
        rate = Decimal(text.strip())
    except InvalidOperation:
        return Decimal(1), f"Rate {text[:20]!r} is not a number; using 1."
    if not rate.is_finite() or not 0 < rate <= MAX_RATE:
        return Decimal(1), (f"Rate {text[:20]!r} must be a number above 0 and at most "
                            f"{MAX_RATE:,}; using 1.")
    return rate, None


def parse_currency(text: str | None) -> tuple[str, str | None]:
    """A display currency label: up to 10 printable characters, else blank and why."""
    value = (text or "").strip()
    if len(value) <= 10 and all(c.isprintable() for c in value):
        return value, None
    return "", "Currency must be a short label such as EUR or ¥ (10 characters at most)."


def _param_date(raw: str | None, default: date, problems: list[str], name: str) -> date:
    if not raw:
        return default
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        problems.append(f"'{name}={raw[:20]}' is not a date (YYYY-MM-DD); using {default}.")
        return default
    if not EARLIEST <= value <= LATEST:
        problems.append(f"'{name}={raw[:20]}' is outside {EARLIEST}…{LATEST}; using {default}.")
        return default
    return value


def _label_of(choices: dict[str, str]) -> Callable[[str], str]:
    return lambda v: choices.get(v, v)


def _initial(qp: Any, default_end: date) -> dict[str, Any]:
    """The sidebar's first values from the URL; each parameter that cannot be used is
    replaced by its default and said why (in ``URL_PROBLEMS``)."""
    problems: list[str] = []
    end = _param_date(qp.get("to"), default_end, problems, "to")
    start = _param_date(qp.get("from"), end - timedelta(days=29), problems, "from")
    tz = qp.get("tz", "UTC")
    if tz not in available_timezones() and tz != "UTC":
        problems.append(f"'tz={tz[:40]}' is not a time zone name; using UTC.")
        tz = "UTC"
    currency, problem = parse_currency(qp.get("cur", ""))
    rate, rate_problem = parse_rate(qp.get("rate", "1"))
    problems += [p for p in (problem, rate_problem) if p]
    return {
        "f_period": (min(start, end), max(start, end)),
        "f_tz": tz,
        **{f"f_{name}": [v for v in qp.get_all(name) if v] for name in LIST_PARAMS},
        "f_currency": currency,
        "f_rate": str(rate) if rate_problem else qp.get("rate", "1"),
        URL_PROBLEMS: problems,
    }


def sidebar_filters(options: dict[str, Any], default_end: date, sheet_currency: str,
                    scope_keys: tuple[str, ...] | None = None) -> tuple[Filters, Display]:
    """Draw the sidebar; ``options`` maps keys/models/endpoints/modes/tags to choices."""
    if "f_period" not in st.session_state:
        for name, value in _initial(st.query_params, default_end).items():
            st.session_state[name] = value
    for name in LIST_PARAMS:  # a shared URL may name a key this user cannot see
        allowed = set(options.get(name, {}))
        st.session_state[f"f_{name}"] = [v for v in st.session_state[f"f_{name}"]
                                         if v in allowed]
    sb = st.sidebar
    for problem in st.session_state.pop(URL_PROBLEMS, []):
        sb.warning(f"Link: {problem}")
    period = sb.date_input("Period", key="f_period", min_value=EARLIEST, max_value=LATEST)
    tz = sb.selectbox("Timezone", sorted({*TIMEZONES, st.session_state["f_tz"]}), key="f_tz")
    labels = {"keys": "Keys", "models": "Models", "endpoints": "Endpoints",
              "modes": "Billing mode", "tags": "Tags"}
    chosen: dict[str, tuple[str, ...]] = {}
    for name, label in labels.items():
        choices: dict[str, str] = options.get(name, {})
        chosen[name] = tuple(sb.multiselect(label, list(choices), key=f"f_{name}",
                                            format_func=_label_of(choices)))
    with sb.expander("Display currency"):
        currency = st.text_input("Currency", key="f_currency", placeholder=sheet_currency)
        rate_text = st.text_input(f"Rate (1 {sheet_currency} =)", key="f_rate")
    # date_input gives a tuple while a range is being picked (one date so far), else a date
    picked: Any = period
    start, end = (picked if isinstance(picked, tuple) and len(picked) == 2
                  else (picked[0], picked[0]) if isinstance(picked, tuple) else (picked, picked))
    rate, problem = parse_rate(rate_text)
    if problem:
        sb.warning(problem)
    currency, problem = parse_currency(currency)
    if problem:
        sb.warning(problem)
    f = Filters(start=start, end=end, tz=tz, scope_keys=scope_keys, **chosen)
    _write_params(f, currency, str(rate) if rate != 1 else "")
    return f, Display(currency=currency or sheet_currency, rate=rate)


def _write_params(f: Filters, currency: str, rate: str) -> None:
    wanted = {"from": f.start.isoformat(), "to": f.end.isoformat(), "tz": f.tz,
              **{name: list(getattr(f, name)) for name in LIST_PARAMS}}
    if currency:
        wanted["cur"] = currency
    if rate and rate != "1":
        wanted["rate"] = rate
    qp = st.query_params
    for name in ("from", "to", "tz", "cur", "rate", *LIST_PARAMS):
        value = wanted.get(name)
        if not value:
            if name in qp:
                del qp[name]
        elif qp.get_all(name) != (value if isinstance(value, list) else [value]):
            qp[name] = value
