"""Intermittent-demand models (statsforecast's Croston family) for sparse bottom series, and the test that finds
those series (the average demand interval). They have no intervals of their own: they get conformal ones."""

from __future__ import annotations

import polars as pl
from statsforecast.models import ADIDA, IMAPA, TSB, CrostonSBA
from statsforecast.utils import ConformalIntervals

from forecasting.job.schema import JobSpec


def conformal(job: JobSpec) -> ConformalIntervals:
    return ConformalIntervals(h=job.horizon, n_windows=job.models.conformal_windows)


def croston_sba(job: JobSpec) -> CrostonSBA:
    return CrostonSBA(prediction_intervals=conformal(job), alias="CrostonSBA")


def tsb(job: JobSpec) -> TSB:
    return TSB(alpha_d=0.2, alpha_p=0.2, prediction_intervals=conformal(job), alias="TSB")


def adida(job: JobSpec) -> ADIDA:
    return ADIDA(prediction_intervals=conformal(job), alias="ADIDA")


def imapa(job: JobSpec) -> IMAPA:
    return IMAPA(prediction_intervals=conformal(job), alias="IMAPA")


def intermittent_ids(Y_df: pl.DataFrame, threshold: float) -> set[str]:
    """SKUs whose average demand interval (periods per non-zero period, after the first sale) exceeds `threshold`."""
    started = Y_df.filter((pl.col("y") > 0).cum_max().over("unique_id"))
    adi = started.group_by("unique_id").agg((pl.len() / (pl.col("y") > 0).sum()).alias("adi"))
    return set(adi.filter(pl.col("adi") > threshold)["unique_id"].to_list())
