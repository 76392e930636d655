"""Small layout pieces every page shares: a chart with its table and CSV one click away."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from .filters import Display

MONEY_COLUMNS = ("cost", "actual", "other_variant", "saving", "all_as_token", "all_as_request",
                 "charged", "cost_where_charged", "token_cost", "request_cost", "last_day_cost",
                 "baseline", "input", "cached_input", "output", "request", "image",
                 "audio_minute", "characters_price")


def for_display(df: pd.DataFrame, display: Display) -> pd.DataFrame:
    """Money columns converted at the display rate and rounded to cents (floats, for showing)."""
    out = df.copy()
    for col in out.columns:
        if col in MONEY_COLUMNS:
            out[col] = out[col].map(lambda v: None if v is None or v != v else
                                    float((Decimal(str(v)) * display.rate)
                                          .quantize(Decimal("0.01"))))
    return out


def csv_bytes(df: pd.DataFrame) -> bytes:
    """CSV with money exactly as the ledger holds it (Decimal written as its digits)."""
    return df.to_csv(index=False).encode()


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
    event = st.dataframe(for_display(df, display), hide_index=True, width="stretch",
                         column_config=column_config, key=f"table_{name}", **kw)
    st.download_button("Download CSV", csv_bytes(df), file_name=f"{name}.csv",
                       mime="text/csv", key=f"csv_{name}")
    return event


def delta(now: Any, before: Any) -> str | None:
    """Change against the previous period, as a percentage string."""
    if now is None or before in (None, 0):
        return None
    return f"{(Decimal(str(now)) - Decimal(str(before))) / Decimal(str(before)) * 100:+.1f}%"
