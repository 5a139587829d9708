"""Plotly figures and HTML fragments for the run report (forecasting.outputs.report). Figures are built from plain
lists, so no pandas is needed; plotly.js is embedded once by the report, never fetched from a CDN."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.subplots import make_subplots

HISTORY_COLOUR = "#444444"
MEAN_COLOUR = "#1f77b4"
BAND_80 = "rgba(31, 119, 180, 0.30)"
BAND_95 = "rgba(31, 119, 180, 0.14)"
QUANTILE_STYLE = {"p50": ("#2ca02c", "solid"), "p80": ("#ff7f0e", "dash"), "p95": ("#d62728", "dot")}
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def _dates(values: Sequence[date]) -> list[str]:
    return [v.isoformat() for v in values]


def _band(
    fig: go.Figure,
    x: list[str],
    lo: list[float],
    hi: list[float],
    name: str,
    colour: str,
    legend: bool = True,
    **where,
) -> None:
    """An interval as a filled area: the upper bound (no line), then the lower bound filled up to it."""
    fig.add_trace(go.Scatter(x=x, y=hi, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"), **where)
    lower = go.Scatter(x=x, y=lo, mode="lines", line={"width": 0}, fill="tonexty", fillcolor=colour, name=name)
    if not legend:
        lower.update(showlegend=False, hoverinfo="skip")
    fig.add_trace(lower, **where)


def fan_chart(title: str, history: pl.DataFrame, forecast: pl.DataFrame) -> go.Figure:
    """History (ds, y) and the reconciled forecast (ds, mean, and lo/hi 80 and 95 where the run has them)."""
    fig = go.Figure()
    x = _dates(forecast["ds"].to_list())
    for level, colour in ((95, BAND_95), (80, BAND_80)):
        if f"lo_{level}" in forecast.columns and f"hi_{level}" in forecast.columns:
            _band(fig, x, forecast[f"lo_{level}"].to_list(), forecast[f"hi_{level}"].to_list(), f"{level} %", colour)
    if history.height:
        fig.add_trace(
            go.Scatter(
                x=_dates(history["ds"].to_list()),
                y=history["y"].to_list(),
                mode="lines",
                name="history",
                line={"color": HISTORY_COLOUR},
            )
        )
    fig.add_trace(
        go.Scatter(
            x=x, y=forecast["mean"].to_list(), mode="lines+markers", name="forecast (mean)", line={"color": MEAN_COLOUR}
        )
    )
    fig.update_layout(title=title, height=320, margin={"l": 50, "r": 20, "t": 40, "b": 30}, hovermode="x unified")
    return fig


def staffing_chart(warehouse: str, staffing: pl.DataFrame) -> go.Figure:
    """Headcount per process over the horizon, p50 / p80 / p95 (one panel per process), p50..p95 shaded."""
    processes = sorted(staffing["process"].unique().to_list())
    cols = 3 if len(processes) > 2 else len(processes)
    rows = -(-len(processes) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=processes, shared_xaxes=True)
    for i, process in enumerate(processes):
        where = {"row": i // cols + 1, "col": i % cols + 1}
        part = staffing.filter(pl.col("process") == process)
        by_q = {q: part.filter(pl.col("quantile") == q).sort("ds") for q in QUANTILE_STYLE}
        if by_q["p50"].height and by_q["p95"].height:
            x = _dates(by_q["p50"]["ds"].to_list())
            p50, p95 = by_q["p50"]["headcount"].to_list(), by_q["p95"]["headcount"].to_list()
            _band(fig, x, p50, p95, "p50–p95", "rgba(255, 127, 14, 0.12)", legend=False, **where)
        for q, (colour, dash) in QUANTILE_STYLE.items():
            frame = by_q[q]
            if frame.height:
                fig.add_trace(
                    go.Scatter(
                        x=_dates(frame["ds"].to_list()),
                        y=frame["headcount"].to_list(),
                        mode="lines+markers",
                        name=q,
                        legendgroup=q,
                        showlegend=i == 0,
                        line={"color": colour, "dash": dash},
                    ),
                    **where,
                )
    fig.update_layout(
        title=f"{warehouse}: headcount per process", height=260 * rows + 60, margin={"l": 50, "r": 20, "t": 70, "b": 30}
    )
    return fig


def figure_html(fig: go.Figure, div_id: str) -> str:
    """A figure as a <div> and its script; plotly.js itself is embedded once in the page head."""
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG)


def table_html(frame: pl.DataFrame, digits: int = 2, caption: str | None = None) -> str:
    """A plain HTML table, every value escaped; floats rounded for reading."""
    if frame.is_empty():
        return "<p><em>no rows</em></p>"

    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:,.{digits}f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.iter_rows())
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def definition_list(items: dict[str, object]) -> str:
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in items.items())
    return f"<dl>{rows}</dl>"


PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1300px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; } caption { text-align: left; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; } dt { font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(600px, 1fr)); gap: 8px; }
.warn { background: #fff4e5; border-left: 4px solid #ff9800; padding: 4px 10px; margin: 4px 0; }
.note { color: #555; font-size: 0.9em; }
"""
