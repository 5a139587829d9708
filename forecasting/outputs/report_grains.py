"""The report's time-grains section (forecasting.outputs.report) for a job with `grains`: per grain (day, week,
4-week) a chart of the top level's published forecast with its bands, and a table of every level above the bottom
per period, saying where a level does not add up (the guard published its Base). Read from grain_forecasts.parquet
(docs/time-grains.md); a run without it has no such section."""

from __future__ import annotations

import html
from pathlib import Path

import polars as pl

from forecasting.outputs.report_charts import fan_chart, figure_html, table_html


def grains_section(folder: Path, levels: list[str]) -> str:
    """Empty for a run without grain_forecasts.parquet."""
    path = folder / "grain_forecasts.parquet"
    if not path.exists():
        return ""
    table = pl.read_parquet(path)
    grains = table["grain"].unique(maintain_order=True).to_list()
    top = levels[0]
    parts = [
        "<h2>Forecasts per time grain</h2><p class='note'>One plan across grains: inside the day horizon the days add"
        " up to the weeks and the 4-week periods (reconciled across time); every grain adds up across the hierarchy"
        " except where marked. Filter on <code>grain</code> in the <code>grain_forecasts</code> view.</p>"
    ]
    charts = []
    for i, grain in enumerate(grains):
        rows = table.filter((pl.col("grain") == grain) & (pl.col("level") == top)).sort("ds")
        charts.append(figure_html(fan_chart(f"{top}, per {grain}", pl.DataFrame(), rows), f"grain-{i}"))
    parts.append(f"<div class='grid'>{''.join(charts)}</div>")
    upper = table.filter(pl.col("level").is_in(levels[:-1]) & (pl.col("grain") != grains[0]))
    summary = upper.select("grain", "level", "unique_id", "ds", "reconciled", "coherent", pl.col("mean").round(1)).sort(
        pl.col("grain").replace_strict({g: i for i, g in enumerate(grains)}), "level", "unique_id", "ds"
    )
    broken = table.filter(~pl.col("coherent")).select("grain", "level").unique().sort("grain", "level")
    if broken.height:
        said = ", ".join(f"{g} {lv}" for g, lv in broken.iter_rows())
        parts.append(f"<p class='warn'>Not coherent (the guard published Base): {html.escape(said)}.</p>")
    parts.append(table_html(summary, 0, "coarse grains above the bottom level, published mean"))
    return "".join(parts)
