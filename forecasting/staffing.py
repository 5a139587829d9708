"""A first staffing estimate: headcount per warehouse and period from the reconciled warehouse forecast.

headcount = ceil(volume x minutes_per_unit / 60 x (1 + PFD) / productive_hours_per_fte / (1 - shrinkage)).
Bands: p50 from the reconciled mean, p80 and p95 from the upper bounds of the 60% and 90% reconciled intervals
(the 80th and 95th percentiles). The per-process model with productivity spread is a separate issue.
"""

from __future__ import annotations

import polars as pl

from forecasting.config import LabourStandard

QUANTILE_COLUMNS = {"p50": "mean", "p80": "hi_60", "p95": "hi_90"}
SCHEMA = {
    "region": pl.String,
    "warehouse": pl.String,
    "ds": pl.Date,
    "quantile": pl.String,
    "volume": pl.Float64,
    "labour_hours": pl.Float64,
    "fte": pl.Float64,
    "headcount": pl.Int64,
}


def empty_plan() -> pl.DataFrame:
    """The staffing table of a job without a labour standard: no rows, same columns."""
    return pl.DataFrame(schema=SCHEMA)


def staffing_plan(warehouse_forecast: pl.DataFrame, standard: LabourStandard) -> pl.DataFrame:
    """warehouse_forecast: region, warehouse, ds, mean, hi_60, hi_90 -> one row per warehouse x period x quantile."""
    frames = []
    for quantile, column in QUANTILE_COLUMNS.items():
        frames.append(
            warehouse_forecast.select(
                "region", "warehouse", "ds", pl.lit(quantile).alias("quantile"), pl.col(column).alias("volume")
            )
        )
    plan = pl.concat(frames)
    hours = pl.col("volume") * standard.minutes_per_unit / 60.0 * (1.0 + standard.pfd_allowance)
    fte = hours / standard.productive_hours_per_fte / (1.0 - standard.shrinkage)
    return (
        plan.with_columns(hours.alias("labour_hours"))
        .with_columns(fte.alias("fte"))
        .with_columns(pl.col("fte").round(9).ceil().cast(pl.Int64).alias("headcount"))
        .sort("warehouse", "ds", "quantile")
    )
