"""The errors reconciled intervals are calibrated on: in-sample fits, or the out-of-sample Base errors of the
backtest the run reads (each backtest window: of the windows before it)."""

from __future__ import annotations

from datetime import date

import polars as pl

from forecasting.data.hierarchy import Hierarchy
from forecasting.job.context import FoundBacktest
from forecasting.job.schema import JobSpec
from forecasting.models.base import BASE


def calibration_set(
    hierarchy: Hierarchy, fitted: pl.DataFrame, job: JobSpec, backtest: FoundBacktest
) -> tuple[pl.DataFrame, str]:
    """(unique_id, ds, y, Base) errors to calibrate reconciled intervals on, and where they come from.

    In-sample fits understate forecast errors (the backtests measured 54 % coverage for a nominal 80 % warehouse
    interval); with `calibration: backtest` the out-of-sample Base forecasts of `backtest` (the newest that
    ends by the history, as the run found it) are used instead."""
    if job.reconciliation.calibration == "backtest":
        folder, missing = backtest
        if folder is None:
            return fitted, f"in-sample fits ({missing})"
        base = pl.read_parquet(
            folder / "backtest_base.parquet", columns=["unique_id", "ds", "cutoff", "model", "y", "mean"]
        )
        errors = out_of_sample_errors(base, hierarchy.Y_df["ds"].max(), hierarchy.members.height)
        if errors is not None:
            points = errors.group_by("unique_id").len()["len"].min()
            return errors, f"out-of-sample errors of backtest {folder.name} ({points} periods per series)"
        return fitted, f"in-sample fits (backtest {folder.name} does not cover every series)"
    return fitted, "in-sample fits"


def out_of_sample_errors(base: pl.DataFrame, last: date, n_series: int) -> pl.DataFrame | None:
    """Backtest Base forecasts (long: unique_id, ds, cutoff, model, y, mean) as calibration errors (unique_id, ds,
    y, Base): periods up to `last` only and, where windows overlap, the latest cutoff per period. None unless all
    `n_series` series have at least 2 periods. Shared by the nightly run and the backtest's own windows."""
    errors = (
        base.filter((pl.col("model") == BASE) & (pl.col("ds") <= last) & pl.col("y").is_not_null())
        .sort("cutoff")
        .unique(subset=["unique_id", "ds"], keep="last")
        .select("unique_id", "ds", "y", pl.col("mean").alias(BASE))
        .sort("unique_id", "ds")
    )
    counts = errors.group_by("unique_id").len()
    if counts.height < n_series or counts["len"].min() < 2:
        return None
    return errors
