"""Scaling curves as plotly charts, saved by the benchmark (issue 20, deliver 3).

PNG through kaleido and the installed Chromium when they work (docs/performance.md shows the
PNGs); otherwise a self-contained HTML file (plotly.js inlined: nothing is fetched, at run time
or when the page is opened). Files go to ``docs/performance/`` (tracked, unlike
``benchmarks/results/``), so a full run updates the charts docs/performance.md shows.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "performance"


def _browser() -> str | None:
    return os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which(
        "chromium-browser") or shutil.which("google-chrome")


def chart(name: str, unit: str, curve: dict[str, dict[str, float]], *,
          y_title: str = "seconds", log_y: bool = False) -> str:
    """Draw ``curve`` ({size label: {series: value}}) as lines, one per series; the path
    written. Sizes are labels such as ``1M``, drawn on a log axis of their numeric value."""
    import plotly.graph_objects as go

    sizes = list(curve)
    x = [_number(s) for s in sizes]
    series = sorted({k for point in curve.values() for k in point})
    fig = go.Figure()
    for s in series:
        fig.add_trace(go.Scatter(x=x, y=[curve[size].get(s) for size in sizes],
                                 mode="lines+markers", name=s))
    fig.update_layout(title=f"{name}: time as the work grows", width=760, height=440,
                      xaxis_title=unit, yaxis_title=y_title, template="plotly_white")
    fig.update_xaxes(type="log", tickvals=x, ticktext=sizes)
    if log_y:
        fig.update_yaxes(type="log")
    RESULTS.mkdir(parents=True, exist_ok=True)
    png = RESULTS / f"scaling-{name}.png"
    browser = _browser()
    if browser:
        os.environ.setdefault("BROWSER_PATH", browser)
        try:
            fig.write_image(png, scale=1)
            return str(png.relative_to(ROOT))
        except (ImportError, RuntimeError, OSError, ValueError) as exc:
            print(f"  chart {name}: PNG not written ({type(exc).__name__}), HTML instead")
    html = RESULTS / f"scaling-{name}.html"
    fig.write_html(html, include_plotlyjs=True)
    return str(html.relative_to(ROOT))


def _number(label: str) -> float:
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}
    return float(label[:-1]) * scale[label[-1]] if label[-1] in scale else float(label)
