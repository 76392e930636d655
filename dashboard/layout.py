"""Small layout pieces every page shares: a chart with its table and CSV one click away.

Tables go through :mod:`dashboard.tables`, the one formatting layer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from . import tables
from .filters import Display


def chart_with_table(fig: go.Figure, df: pd.DataFrame, name: str, display: Display,
                     column_config: dict[str, Any] | None = None) -> None:
    """A plotly chart, with the table behind it in the next tab and a CSV download."""
    chart_tab, table_tab = st.tabs(["Chart", "Table"])
    with chart_tab:
        st.plotly_chart(fig, width="stretch", key=f"chart_{name}")
    with table_tab:
        table(df, name, display, column_config)


def table(df: pd.DataFrame, name: str, display: Display,
          column_config: dict[str, Any] | None = None, **kw: Any) -> object:
    """A human table (dashboard.tables: headers in words, money formatted, "—" for NULL,
    fingerprints hidden) with its CSV download."""
    return tables.show(df, name, display, column_config, **kw)


def delta(now: Any, before: Any) -> str | None:
    """Change against the previous period, as a percentage string."""
    if now is None or before in (None, 0):
        return None
    return f"{(Decimal(str(now)) - Decimal(str(before))) / Decimal(str(before)) * 100:+.1f}%"
