"""The grain_forecasts table of a job with time grains: every grain's published rows with a `grain` column planners
filter on, each series' level and keys leading (docs/time-grains.md)."""

from __future__ import annotations

import polars as pl

from forecasting.data import hierarchy as hier
from forecasting.job.schema import JobSpec
from forecasting.outputs.atomic import Table, TableParts
from forecasting.reconcile.temporal import DAYS_SUMMED, TIME_RECONCILED, GrainResult

FORECAST_TABLES = ("base_forecasts", "reconciled_forecasts")


def grain_table(hierarchy: hier.Hierarchy, result: GrainResult, job: JobSpec) -> pl.DataFrame:
    """grain, unique_id, level, keys, ds (the period's first day), days (its length), reconciled (hierarchy+time
    inside the span every grain covers, `days summed` there at the levels where the temporal step's guard fell
    back, hierarchy beyond), coherent (false where a guard published Base), mean,
    lo/hi; sorted by grain (finest first), level, unique_id, ds."""
    assert job.grains is not None
    order = {name: i for i, name in enumerate(job.grains.names())}
    guarded = pl.lit(True)
    for grain, levels in result.guard.items():
        # Base at a level of a grain: that level does not add up there, nor in the span reconciled across time.
        where = ((pl.col("grain") == grain) & (pl.col("reconciled") != DAYS_SUMMED)) | (
            pl.col("reconciled") == TIME_RECONCILED
        )
        guarded = pl.when(where & pl.col("level").is_in(levels)).then(False).otherwise(guarded)
    bounds = [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]
    return (
        hier.level_of(hierarchy.members, result.table)
        .with_columns(guarded.alias("coherent"))
        .select(
            "grain",
            "unique_id",
            "level",
            *job.hierarchy.columns,
            "ds",
            "days",
            "reconciled",
            "coherent",
            "mean",
            *bounds,
        )
        .sort(pl.col("grain").replace_strict(order), "level", "unique_id", "ds")
    )


def with_grains(tables: dict[str, Table], grain_rows: pl.DataFrame, job: JobSpec) -> dict[str, Table]:
    """A job with time grains: its day forecast tables gain a `grain` column (the base grain), and grain_forecasts
    (every grain) is written beside them."""
    assert job.grains is not None
    base = pl.lit(job.grains.base).alias("grain")
    out = dict(tables)
    for name in FORECAST_TABLES:
        table = tables.get(name)
        if isinstance(table, TableParts):
            out[name] = TableParts(table.height, lambda t=table: (part.with_columns(base) for part in t.make()))
        elif isinstance(table, pl.DataFrame):
            out[name] = table.with_columns(base)
    return out | {"grain_forecasts": grain_rows}
