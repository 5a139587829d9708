"""The report's drivers section (forecasting.outputs.report): per level, a bar chart of what drives its forecast
over the horizon (the bottom series' drivers summed with the reconciliation, beside the level's own model), and for
its top series by volume a stacked chart of the effects per period with the published forecast drawn over them.
Read from the run's drivers.parquet (docs/drivers.md); a run without it says so."""

from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go
import polars as pl

from forecasting.evaluate.driver_check import wrong_signs
from forecasting.outputs.report_charts import figure_html, table_html

SERIES_PER_LEVEL = 2  # stacked charts per level, its largest series by forecast volume
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
]  # fmt: skip


def colours(families: list[str]) -> dict[str, str]:
    """One colour per family, the same in every chart of the page."""
    return {family: PALETTE[i % len(PALETTE)] for i, family in enumerate(sorted(families))}


def level_bar_chart(level: str, rows: pl.DataFrame) -> go.Figure:
    """Effect per family summed over the level's series and the horizon, one bar group per basis."""
    fig = go.Figure()
    totals = rows.group_by("basis", "family").agg(pl.col("effect").sum()).sort("family")
    for basis, colour in (("hierarchy", "#1f77b4"), ("own model", "#ff7f0e")):
        part = totals.filter(pl.col("basis") == basis)
        if part.height:
            name = "bottom series summed + reconciliation" if basis == "hierarchy" else "the level's own model"
            fig.add_trace(
                go.Bar(x=part["effect"].to_list(), y=part["family"].to_list(), orientation="h", name=name,
                       marker={"color": colour})
            )  # fmt: skip
    fig.update_layout(
        title=f"{level}: drivers over the horizon (units)",
        barmode="group",
        height=120 + 28 * max(1, totals["family"].n_unique()),
        margin={"l": 200, "r": 20, "t": 40, "b": 30},
    )
    return fig


def stacked_chart(title: str, rows: pl.DataFrame, palette: dict[str, str]) -> go.Figure:
    """Each family's effect per period stacked (negative ones below zero), and the forecast they sum to."""
    fig = go.Figure()
    periods = rows.select("ds").unique().sort("ds")
    x = [d.isoformat() for d in periods["ds"].to_list()]
    for family in sorted(rows["family"].unique().to_list()):
        part = periods.join(rows.filter(pl.col("family") == family), on="ds", how="left").sort("ds")
        fig.add_trace(go.Bar(x=x, y=part["effect"].fill_null(0.0).to_list(), name=family,
                             marker={"color": palette[family]}))  # fmt: skip
    total = rows.group_by("ds").agg(pl.col("effect").sum()).sort("ds")
    fig.add_trace(
        go.Scatter(x=x, y=total["effect"].to_list(), mode="lines+markers", name="forecast", line={"color": "#222"})
    )
    fig.update_layout(
        title=title, barmode="relative", height=360, margin={"l": 50, "r": 20, "t": 40, "b": 30}, hovermode="x"
    )
    return fig


def check_section(backtest: Path | None) -> str:
    """The latest backtest's event check (forecasting.evaluate.driver_check): its table, and a warning for each
    event whose effect has the wrong sign on average."""
    path = backtest / "driver_check.parquet" if backtest is not None else None
    if path is None or not path.exists():
        return (
            "<p class='note'>No backtest checked the event drivers against realised uplift (a backtest of a job"
            " with events and a LightGBM does).</p>"
        )
    check = pl.read_parquet(path)
    warnings = "".join(f"<div class='warn'>{html.escape(w)}</div>" for w in wrong_signs(check)) or (
        "<p>Every event driver had the sign of its realised uplift on average.</p>"
    )
    caption = f"event drivers vs realised uplift, backtest {backtest.name if backtest else ''} (scored windows)"
    return f"<h3>Are the event drivers real?</h3>{warnings}{table_html(check, 2, caption)}"


def drivers_section(folder: Path, levels: list[str], backtest: Path | None = None) -> str:
    """The section's HTML, with the latest backtest's check of the event drivers."""
    head = "<h2>What drives the forecasts</h2>"
    path = folder / "drivers.parquet"
    if not path.exists():
        return (
            head + "<p>This run has no drivers (published before them, or a job with <code>drivers: false</code>).</p>"
        )
    table = pl.read_parquet(path)
    palette = colours(table["family"].unique().to_list())
    parts = [
        head,
        "<p class='note'>Effects in units (docs/drivers.md): the bottom series' drivers summed up the hierarchy with"
        " the reconciliation's adjustment as its own row, so each level's bars add up to its published forecast; beside"
        " them, the level's own model (where it is not the bottom). Interactions: what families do together beyond"
        " their separate effects.</p>",
        check_section(backtest),
    ]
    for level in levels:
        rows = table.filter(pl.col("level") == level)
        if rows.is_empty():
            continue
        parts.append(f"<h3>{html.escape(level)}</h3>")
        charts = [figure_html(level_bar_chart(level, rows), f"drivers-{level}")]
        summed = rows.filter(pl.col("basis") == "hierarchy")
        volume = (
            summed.group_by("unique_id")
            .agg(pl.col("effect").sum())
            .sort(["effect", "unique_id"], descending=[True, False])
        )
        for i, uid in enumerate(volume["unique_id"].head(SERIES_PER_LEVEL).to_list()):
            series = summed.filter(pl.col("unique_id") == uid)
            charts.append(
                figure_html(
                    stacked_chart(f"{level} {uid}: effects per period", series, palette), f"drivers-{level}-{i}"
                )
            )
        parts.append(f"<div class='grid'>{''.join(charts)}</div>")
    return "".join(parts)
