"""What every page needs, set up once per run by ``app.py``: ledger, marker, filters, user."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from .auth import User
from .connection import Ledger
from .filters import Display, Filters

_KEY = "_callmeter_context"


@dataclass
class Context:
    ledger: Ledger
    marker: str
    user: User
    filters: Filters | None = None
    display: Display | None = None
    options: dict | None = None


def set_context(ctx: Context) -> None:
    st.session_state[_KEY] = ctx


def context() -> Context:
    """The current run's context (pages call this first)."""
    return st.session_state[_KEY]
