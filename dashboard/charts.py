"""Plotly figure builders: pure functions of the query layer's DataFrames (no Streamlit).

Money arrives as Decimal; it becomes float here, for drawing only.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

TEMPLATE = "plotly_white"


def _float(series: pd.Series) -> pd.Series:
    return series.map(lambda v: float(v) if v is not None and v == v else 0.0)


def spend_over_time(df: pd.DataFrame, grain: str = "day", currency: str = "USD") -> go.Figure:
    """Stacked bars of spend per bucket, one colour per group (``bucket``, ``name``, ``cost``)."""
    data = df.assign(spend=_float(df["cost"]), name=df["name"].fillna("(none)").astype(str))
    fig = px.bar(data, x="bucket", y="spend", color="name", template=TEMPLATE,
                 labels={"bucket": grain, "spend": f"spend ({currency})", "name": ""})
    fig.update_layout(barmode="stack", margin={"t": 10, "b": 10}, legend_title_text="")
    return fig


def ranked_bar(df: pd.DataFrame, label: str, value: str = "cost", currency: str = "USD",
               top: int = 10) -> go.Figure:
    """Horizontal bars of the ``top`` rows by ``value``."""
    data = df.head(top).assign(v=_float(df[value].head(top)),
                               lbl=df[label].head(top).fillna("(none)").astype(str))
    fig = px.bar(data, x="v", y="lbl", orientation="h", template=TEMPLATE,
                 labels={"v": f"{value} ({currency})" if value == "cost" else value, "lbl": ""})
    fig.update_layout(yaxis={"autorange": "reversed"}, margin={"t": 10, "b": 10})
    return fig


def token_mix(df: pd.DataFrame) -> go.Figure:
    """Per model: uncached input, cached input (cache reads), cache writes, output (excl.
    reasoning), reasoning tokens."""
    writes = df["cache_write_tokens"]
    mix = pd.DataFrame({
        "model": df["model"],
        "uncached input": df["input_tokens"] - df["cached_tokens"] - writes,
        "cached input": df["cached_tokens"],
        "cache writes": writes,
        "output": df["output_tokens"] - df["reasoning_tokens"],
        "reasoning": df["reasoning_tokens"],
    }).groupby("model", as_index=False).sum()
    long = mix.melt(id_vars="model", var_name="tokens", value_name="count")
    fig = px.bar(long, x="model", y="count", color="tokens", template=TEMPLATE)
    fig.update_layout(barmode="stack", margin={"t": 10, "b": 10})
    return fig


def tokens_histogram(df: pd.DataFrame) -> go.Figure:
    """Calls per tokens-per-call bin (log2 bins), one colour per model."""
    fig = px.bar(df.assign(bin=df["tokens_from"].astype(str)), x="bin", y="calls",
                 color="model", template=TEMPLATE,
                 labels={"bin": "tokens per call (from)", "calls": "calls"})
    fig.update_layout(barmode="group", margin={"t": 10, "b": 10})
    return fig


def percentiles(df: pd.DataFrame, what: str = "latency") -> go.Figure:
    """p50 / p90 / p99 of ``what`` (latency or ttft) per model, in ms."""
    cols = [f"{what}_p50", f"{what}_p90", f"{what}_p99"]
    long = df.melt(id_vars="model", value_vars=cols, var_name="percentile", value_name="ms")
    long["percentile"] = long["percentile"].str.split("_").str[1]
    fig = px.bar(long, x="model", y="ms", color="percentile", barmode="group",
                 template=TEMPLATE)
    fig.update_layout(margin={"t": 10, "b": 10})
    return fig


def break_even(points: pd.DataFrame, even: dict[str, Any] | None, currency: str = "USD"
               ) -> go.Figure:
    """Cost per call against tokens per call for both variants, with the workload's calls.

    ``even`` is the workload's ``pricing.break_even_tokens`` row: the per-request line is flat
    at its request price, the per-token line rises at its observed cost per token (cached
    input, tiers and the input/output mix included), so the lines cross at its break-even.
    Marker size is the number of calls in each bin.
    """
    fig = go.Figure()
    tokens = points["tokens"].astype(float) if len(points) else pd.Series([1.0, 10000.0])
    x_max = max(float(tokens.max()) * 1.2, 10.0)
    if even is not None and even.get("break_even_tokens") is not None:
        x_max = max(x_max, float(even["break_even_tokens"]) * 1.5)
    if even is not None and even.get("token_cost_per_1m") is not None:
        per_token = float(even["token_cost_per_1m"]) / 1e6
        fig.add_trace(go.Scatter(x=[0, x_max], y=[0, per_token * x_max], mode="lines",
                                 name="per-token price"))
    if even is not None and even.get("request_price") is not None:
        fig.add_trace(go.Scatter(x=[0, x_max], y=[float(even["request_price"])] * 2,
                                 mode="lines", name="per-request price", line={"dash": "dash"}))
    if len(points):
        size = points["calls"].astype(float)
        size = 6 + 24 * (size / size.max()) ** 0.5
        for col, name in (("per_token_cost", "your calls, per-token"),
                          ("per_request_cost", "your calls, per-request")):
            fig.add_trace(go.Scatter(
                x=points["tokens"], y=_float(points[col]), mode="markers", name=name,
                marker={"size": size, "opacity": 0.6},
                customdata=points["calls"], hovertemplate="%{x} tokens: %{customdata} calls,"
                " %{y:.6f} per call<extra></extra>"))
    fig.update_layout(template=TEMPLATE, xaxis_title="tokens per call",
                      yaxis_title=f"cost per call ({currency})", margin={"t": 10, "b": 10})
    return fig


def savings_bar(df: pd.DataFrame, label: str, currency: str = "USD") -> go.Figure:
    """Saving of switching variant per row (positive: the other variant is cheaper)."""
    data = df.dropna(subset=["saving"])
    data = data.assign(v=_float(data["saving"]), lbl=data[label].astype(str))
    fig = px.bar(data.sort_values("v"), x="v", y="lbl", orientation="h", template=TEMPLATE,
                 labels={"v": f"saving by switching ({currency})", "lbl": ""})
    fig.update_layout(margin={"t": 10, "b": 10})
    return fig


def daily_spend(df: pd.DataFrame, forecast: pd.DataFrame | None = None,
                currency: str = "USD") -> go.Figure:
    """Daily spend bars, with forecast days (``day``, ``cost``, ``low``, ``high``) after them."""
    fig = go.Figure(go.Bar(x=df["day"], y=_float(df["cost"]), name="spend"))
    if forecast is not None and len(forecast):
        fig.add_trace(go.Bar(x=forecast["day"], y=_float(forecast["cost"]), name="forecast",
                             opacity=0.45, error_y={
                                 "type": "data", "symmetric": False,
                                 "array": _float(forecast["high"]) - _float(forecast["cost"]),
                                 "arrayminus": _float(forecast["cost"]) - _float(forecast["low"])}))
    fig.update_layout(template=TEMPLATE, yaxis_title=f"spend ({currency})",
                      margin={"t": 10, "b": 10})
    return fig
