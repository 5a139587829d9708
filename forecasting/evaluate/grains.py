"""Checks of a job's time grains: how far the published grains are from adding up across time and across the
hierarchy (the benchmark and the tests use the same measure), and their per-level accuracy against a baseline."""

from __future__ import annotations

import polars as pl

from forecasting.job.grains import GrainsSpec
from forecasting.reconcile.temporal import DAYS_SUMMED, TIME_RECONCILED


def _relative(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return (a - b).abs() / pl.max_horizontal(b.abs(), pl.lit(1.0))


def gap_across_time(table: pl.DataFrame, grains: GrainsSpec) -> float:
    """Largest relative gap between a coarse period of the span every grain covers (reconciled across time, or the
    days summed where the guard kept the temporal step off) and the sum of the base-grain periods (days) inside it
    (grain_forecasts rows: grain, unique_id, ds, reconciled, mean)."""
    days = table.filter(pl.col("grain") == grains.base)
    start = days["ds"].min()
    worst = 0.0
    for grain in grains.coarser:
        span = pl.col("reconciled").is_in([TIME_RECONCILED, DAYS_SUMMED])
        coarse = table.filter((pl.col("grain") == grain.name) & span)
        if coarse.height == 0:
            raise ValueError(f"no {grain.name} period in the span every grain covers")
        period = ((pl.col("ds") - pl.lit(start)).dt.total_days() // grain.periods).alias("period")
        summed = days.with_columns(period).group_by("unique_id", "period").agg(pl.col("mean").sum().alias("summed"))
        joined = coarse.with_columns(period).join(summed, on=["unique_id", "period"])
        if joined.height != coarse.height:
            raise ValueError(f"{grain.name}: a period of the span has no days")
        worst = max(worst, joined.select(_relative(pl.col("summed"), pl.col("mean")).max()).item())
    return worst


def gap_across_hierarchy(table: pl.DataFrame, members: pl.DataFrame) -> float:
    """Largest relative gap, over every grain and period, between a series flagged coherent and the sum of the
    bottom series under it (members: unique_id, level, key columns; the bottom level is the last)."""
    levels = members["level"].unique(maintain_order=True).to_list()
    bottom = members.filter(pl.col("level") == levels[-1])
    ok = table.filter(pl.col("coherent"))
    leaves = ok.filter(pl.col("level") == levels[-1]).select("grain", "ds", "unique_id", "mean")
    worst = 0.0
    for level in levels[:-1]:
        parents = members.filter(pl.col("level") == level)
        keys = [k for k in parents.drop("unique_id", "level").columns if parents[k].null_count() == 0]
        link = bottom.select(pl.col("unique_id").alias("leaf"), *keys).join(
            parents.select(pl.col("unique_id").alias("parent"), *keys)
            if keys
            else parents.select(pl.col("unique_id").alias("parent")),
            on=keys or None,
            how="inner" if keys else "cross",
        )
        sums = (
            leaves.join(link, left_on="unique_id", right_on="leaf")
            .group_by("grain", "ds", "parent")
            .agg(pl.col("mean").sum().alias("summed"), pl.len().alias("n"))
        )
        joined = ok.filter(pl.col("level") == level).join(
            sums, left_on=["grain", "ds", "unique_id"], right_on=["grain", "ds", "parent"]
        )
        if joined.height:
            worst = max(worst, joined.select(_relative(pl.col("summed"), pl.col("mean")).max()).item())
    return worst
