"""Reconciliation through hierarchicalforecast: BottomUp (baseline) and MinTrace (non-negative), intervals included.

Why conformal intervals (hierarchicalforecast's split-conformal sampler, Principato et al. 2024): the library's
normality sampler builds dense n x n covariances (7 GB per horizon step at 30,504 series) and its bootstrap and permbu
samplers refuse non-negative MinTrace. The conformal sampler reconciles the in-sample fits with the same P and takes
per-series quantiles of the signed errors: linear in the number of series, sparse-aware, non-negative compatible.
Caveat (the library's own): in-sample errors are smaller than out-of-sample ones, so intervals tend to be narrow;
the backtests measure actual coverage.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from hierarchicalforecast.core import HierarchicalReconciliation
from hierarchicalforecast.methods import BottomUp, BottomUpSparse, MinTrace, MinTraceSparse

from forecasting.config import JobSpec
from forecasting.hierarchy import Hierarchy
from forecasting.models import BASE

DENSE_ONLY = {"mint_shrink"}  # the library has no sparse version: an n x n shrunk covariance
MAX_DENSE_SERIES = 5000  # 5,000^2 doubles = 200 MB per covariance; M5 monthly's 30,504 series would need 7.4 GB


def reconcilers(job: JobSpec, sparse: bool, n_series: int = 0) -> list[tuple[str, object]]:
    """(output label, hierarchicalforecast reconciler) per configured method."""
    spec = job.reconciliation
    chosen = []
    for method in spec.methods:
        label = spec.label(method)
        if label == "BottomUp":
            chosen.append((label, BottomUpSparse() if sparse else BottomUp()))
            continue
        variant = label.removeprefix("MinTrace_")
        dense_only = variant in DENSE_ONLY
        if dense_only and n_series > MAX_DENSE_SERIES:
            raise ValueError(
                f"reconciliation {label} needs a dense {n_series} x {n_series} covariance; "
                f"use wls_var or wls_struct above {MAX_DENSE_SERIES} series"
            )
        cls = MinTraceSparse if sparse and not dense_only else MinTrace
        chosen.append((label, cls(method=variant, nonnegative=spec.nonnegative, num_threads=job.n_jobs)))
    return chosen


def uses_error_history(job: JobSpec) -> bool:
    """Whether a configured method estimates error variances from the calibration errors (wls_var, mint_shrink):
    then it needs every period of them; otherwise only the conformal intervals read them."""
    return any(getattr(reconciler, "insample", False) for _, reconciler in reconcilers(job, sparse=False))


def calibration_periods(errors: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """The rows of the periods in which every series of `errors` has y and at least one of `columns`.

    hierarchicalforecast's conformal sampler drops every period in which any series lacks y or a fit (its
    calibration set is the periods complete across the hierarchy), so passing only those periods gives the same
    intervals, without pivoting every series' whole in-sample history (25M rows at 1M series x 26 weeks)."""
    usable = errors.filter(pl.col("y").is_not_null() & pl.any_horizontal(pl.col(columns).is_not_null()))
    complete = usable.group_by("ds").len().filter(pl.col("len") == errors["unique_id"].n_unique())["ds"]
    return errors.filter(pl.col("ds").is_in(complete.implode()))


def publish_label(job: JobSpec) -> str:
    """The output label of the published reconciliation."""
    return job.reconciliation.label(job.reconciliation.publish)


def reconcile(
    hierarchy: Hierarchy, base: pl.DataFrame, fitted: pl.DataFrame, job: JobSpec, sparse: bool = True
) -> pl.DataFrame:
    """Reconcile the Base column. Returns long rows: unique_id, ds, method, mean, lo-<L>/hi-<L>.

    `fitted` holds y and Base for every series (in-sample fits or backtest forecasts): the calibration set of the
    conformal interval sampler, and the residuals wls_var / mint_shrink estimate their error covariance from.
    """
    labelled = reconcilers(job, sparse, n_series=hierarchy.members.height)
    engine = HierarchicalReconciliation(reconcilers=[reconciler for _, reconciler in labelled])
    insample = fitted.select("unique_id", "ds", "y", BASE).drop_nulls()
    if not uses_error_history(job):
        insample = calibration_periods(insample, [BASE])
    wide = engine.reconcile(
        Y_hat_df=base.select("unique_id", "ds", pl.col(BASE).clip(lower_bound=0.0)),
        S_df=hierarchy.S,  # sparse SMatrix or dense S_df, as aggregate() built it
        tags={level: np.asarray(ids) for level, ids in hierarchy.tags.items()},
        Y_df=insample,
        level=job.levels,
        intervals_method="conformal",
        seed=job.seed,
    )
    mean_columns = [c for c in wide.columns if c.startswith(f"{BASE}/") and "-lo-" not in c and "-hi-" not in c]
    frames = []
    for (label, _), column in zip(labelled, mean_columns, strict=True):
        rename = {column: "mean"} | {
            f"{column}-{side}-{lv}": f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")
        }
        part = wide.select("unique_id", "ds", *rename).rename(rename).with_columns(pl.lit(label).alias("method"))
        frames.append(part)
    out = pl.concat(frames)
    if job.reconciliation.nonnegative:
        # Means are non-negative by construction (non-negative MinTrace; BottomUp of clipped base forecasts), so
        # clipping them changes nothing; sampled interval bounds can dip below zero and demand cannot.
        bounds = [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]
        out = out.with_columns([pl.col(c).clip(lower_bound=0.0) for c in bounds])
    return out
