"""What every page needs, set up once per run by ``app.py``: ledger, marker, filters, user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    display: Display = field(default_factory=Display)
    options: dict[str, Any] = field(default_factory=dict)
    _filters: Filters | None = None

    @property
    def filters(self) -> Filters:
        """The sidebar's filters (set by app.py before any page that reads calls runs)."""
        if self._filters is None:
            raise RuntimeError("no filters yet: the ledger is empty (first-run pages only)")
        return self._filters

    @filters.setter
    def filters(self, value: Filters) -> None:
        self._filters = value


def set_context(ctx: Context) -> None:
    st.session_state[_KEY] = ctx


def context() -> Context:
    """The current run's context (pages call this first)."""
    ctx: Context = st.session_state[_KEY]
    return ctx
