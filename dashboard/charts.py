"""Plotly figure builders: pure functions of the query layer's DataFrames (no Streamlit).

Money arrives as Decimal; it becomes float here, for drawing only.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

TEMPLATE = "plotly_white"
# Tableau 10 without its grey: nine colours told apart by most eyes (and in greyscale by
# lightness); grey is kept for "other", the groups beyond the top ones.
PALETTE = ("#4C78A8", "#F58518", "#E45756", "#72B7B2", "#54A24B", "#EECA3B", "#B279A2",
           "#FF9DA6", "#9D755D")
OTHER = "other"
OTHER_COLOUR = "#BAB0AC"
TOP = len(PALETTE)


def top_groups(df: pd.DataFrame, label: str, weight: str, top: int = TOP) -> list[str]:
    """The ``top`` labels by summed ``weight``, largest first (ties by name), then ``other``
    when more labels exist: the order of the legend and of the colours."""
    totals = (df.assign(_w=_float(df[weight]), _l=df[label].fillna("(none)").astype(str))
              .groupby("_l")["_w"].sum().reset_index())
    totals = totals.sort_values(["_w", "_l"], ascending=[False, True])
    names = list(totals["_l"])
    return names[:top] + ([OTHER] if len(names) > top else [])


def fold_others(df: pd.DataFrame, label: str, keep: list[str]) -> pd.DataFrame:
    """``df`` with every ``label`` outside ``keep`` renamed ``other`` (rows are not summed:
    stacked bars add them up)."""
    names = df[label].fillna("(none)").astype(str)
    return df.assign(**{label: names.where(names.isin(keep), OTHER)})


def colours(order: list[str]) -> dict[str, str]:
    """One distinct colour per group in ``order``; ``other`` is grey."""
    return {name: OTHER_COLOUR if name == OTHER else PALETTE[i % len(PALETTE)]
            for i, name in enumerate(order)}


def _float(series: pd.Series) -> pd.Series:
    return series.map(lambda v: float(v) if v is not None and v == v else 0.0)


def spend_over_time(df: pd.DataFrame, grain: str = "day", currency: str = "USD",
                    top: int = TOP) -> go.Figure:
    """Stacked bars of spend per bucket (``bucket``, ``name``, ``cost``): the ``top`` groups by
    spend in the period, the rest as ``other``; the legend lists them by spend."""
    data = df.assign(spend=_float(df["cost"]), name=df["name"].fillna("(none)").astype(str))
    order = top_groups(data, "name", "spend", top)
    data = fold_others(data, "name", order)
    data = data.groupby(["bucket", "name"], as_index=False).agg(spend=("spend", "sum"))
    fig = px.bar(data, x="bucket", y="spend", color="name", template=TEMPLATE,
                 category_orders={"name": order}, color_discrete_map=colours(order),
                 labels={"bucket": grain, "spend": f"spend ({currency})", "name": ""})
    fig.update_layout(barmode="stack", margin={"t": 10, "b": 10}, legend_title_text="",
                      legend={"traceorder": "normal"})
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


def token_mix(df: pd.DataFrame, top: int = TOP) -> go.Figure:
    """Per model: uncached input, cached input (cache reads), cache writes, output (excl.
    reasoning), reasoning tokens — the ``top`` models by tokens, the rest as ``other``."""
    writes = df["cache_write_tokens"]
    mix = pd.DataFrame({
        "model": df["model"].fillna("(none)").astype(str),
        "uncached input": df["input_tokens"] - df["cached_tokens"] - writes,
        "cached input": df["cached_tokens"],
        "cache writes": writes,
        "output": df["output_tokens"] - df["reasoning_tokens"],
        "reasoning": df["reasoning_tokens"],
    })
    mix["_total"] = df["input_tokens"] + df["output_tokens"]
    order = top_groups(mix, "model", "_total", top)
    mix = fold_others(mix, "model", order).drop(columns="_total")
    mix = mix.groupby("model", as_index=False).sum()
    long = mix.melt(id_vars="model", var_name="tokens", value_name="count")
    fig = px.bar(long, x="model", y="count", color="tokens", template=TEMPLATE,
                 category_orders={"model": order}, color_discrete_sequence=PALETTE,
                 labels={"model": "", "count": "tokens", "tokens": ""})
    fig.update_layout(barmode="stack", margin={"t": 10, "b": 10})
    return fig


def token_bin_label(tokens_from: int) -> str:
    """An octave bin [n, 2n) as words: ``1,024–2,047``."""
    n = int(tokens_from)
    return f"{n:,}" if n <= 1 else f"{n:,}–{2 * n - 1:,}"


def tokens_histogram(df: pd.DataFrame, top: int = TOP) -> go.Figure:
    """Calls per tokens-per-call bin (octaves, in numeric order), stacked per model: the
    ``top`` models by calls, the rest as ``other``."""
    order = top_groups(df, "model", "calls", top)
    data = fold_others(df, "model", order)
    data = data.groupby(["tokens_from", "model"], as_index=False).agg(calls=("calls", "sum"))
    bins = sorted(int(b) for b in data["tokens_from"].unique())
    data = data.assign(bin=data["tokens_from"].map(token_bin_label))
    fig = px.bar(data, x="bin", y="calls", color="model", template=TEMPLATE,
                 category_orders={"bin": [token_bin_label(b) for b in bins], "model": order},
                 color_discrete_map=colours(order),
                 labels={"bin": "tokens per call (input + output)", "calls": "calls",
                         "model": ""})
    fig.update_layout(barmode="stack", margin={"t": 10, "b": 10})
    fig.update_xaxes(type="category")
    return fig


def percentiles(df: pd.DataFrame, what: str = "latency", top: int = TOP) -> go.Figure:
    """p50 / p90 / p99 of ``what`` (``latency`` or ``ttft``, read in ms) per model, drawn in
    seconds under a title; the ``top`` models by calls (models without the measure, e.g. no
    streams for time to first token, are left out)."""
    cols = [f"{what}_p50", f"{what}_p90", f"{what}_p99"]
    data = df.dropna(subset=cols, how="all")
    data = data.sort_values("calls", ascending=False).head(top) if "calls" in data else \
        data.head(top)
    long = data.melt(id_vars="model", value_vars=cols, var_name="percentile", value_name="ms")
    long["percentile"] = long["percentile"].str.split("_").str[1]
    long["seconds"] = long["ms"].astype(float) / 1000
    title = {"latency": "Latency (s)", "ttft": "Time to first token (s)"}.get(what, what)
    fig = px.bar(long, x="model", y="seconds", color="percentile", barmode="group",
                 template=TEMPLATE, color_discrete_sequence=PALETTE,
                 category_orders={"model": list(data["model"])},
                 labels={"model": "", "seconds": "seconds", "percentile": ""})
    fig.update_layout(title={"text": title}, margin={"t": 40, "b": 10})
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
