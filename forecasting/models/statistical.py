"""Base forecasts at every level: statsforecast local models (the global LightGBM is in forecasting.lightgbm_models),
the means of models, the Base choice, and the wide / long frame helpers they share; all with prediction intervals.

Cost drives placement (DESIGN.md): full AutoETS / AutoTheta on the few aggregate series; at SKU level a global
LightGBM (lags, rolling means, calendar, price), seasonal naive and an intermittent-demand model. Every model returns
Nixtla wide frames: unique_id, ds, <model>, <model>-lo-<L>, <model>-hi-<L>, plus in-sample fitted values that the
bootstrap interval reconciliation needs.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import polars as pl
from statsforecast import StatsForecast
from statsforecast.models import (
    IMAPA,
    TSB,
    AutoARIMA,
    AutoETS,
    AutoTheta,
    CrostonSBA,
    Naive,
    SeasonalNaive,
)
from statsforecast.utils import ConformalIntervals

from forecasting import fast_quantiles  # noqa: F401  (cached interval z-values: 5x faster baselines)
from forecasting.config import POLARS_FREQ, JobSpec

BASE = "Base"  # the per-level (and per-SKU for intermittent series) choice of model, which is reconciled


def _conformal(job: JobSpec) -> ConformalIntervals:
    return ConformalIntervals(h=job.horizon, n_windows=job.models.conformal_windows)


# Registry of local statistical models: name -> builder. Models without native intervals get conformal ones.
STAT_MODELS: dict[str, Callable[[JobSpec], object]] = {
    "AutoETS": lambda job: AutoETS(season_length=job.season_length, alias="AutoETS"),
    "AutoTheta": lambda job: AutoTheta(season_length=job.season_length, alias="AutoTheta"),
    "AutoARIMA": lambda job: AutoARIMA(season_length=job.season_length, alias="AutoARIMA"),
    "SeasonalNaive": lambda job: SeasonalNaive(season_length=job.season_length, alias="SeasonalNaive"),
    "Naive": lambda job: Naive(alias="Naive"),
    "CrostonSBA": lambda job: CrostonSBA(prediction_intervals=_conformal(job), alias="CrostonSBA"),
    "TSB": lambda job: TSB(alpha_d=0.2, alpha_p=0.2, prediction_intervals=_conformal(job), alias="TSB"),
    "IMAPA": lambda job: IMAPA(prediction_intervals=_conformal(job), alias="IMAPA"),
}


@dataclass
class LevelForecast:
    forecasts: pl.DataFrame  # unique_id, ds, model columns with intervals
    fitted: pl.DataFrame  # unique_id, ds, y, model columns (in-sample)
    models: list[str]


@contextmanager
def worker_processes_from_forkserver() -> Iterator[None]:
    """Start statsforecast's worker processes from a small, fresh forkserver instead of forking this process.

    Forked workers inherit the whole parent (gigabytes of history, features and model state: the M5 monthly job's
    process tree reached 5.4 GB, mostly in page copies counted once per worker) and any OpenMP thread pool that
    LightGBM started, which can deadlock them. statsforecast opens its pool with the default start method, so the
    default is switched for the duration of the call and restored after. Python 3.14 makes forkserver the default.
    """
    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_forkserver_preload(["statsforecast.core", "statsforecast.models", "forecasting.fast_quantiles"])
    multiprocessing.set_start_method("forkserver", force=True)
    try:
        yield
    finally:
        multiprocessing.set_start_method(previous, force=True)


def statistical_forecast(
    Y_df: pl.DataFrame, job: JobSpec, model_names: list[str], n_jobs: int | None = None
) -> LevelForecast:
    if job.engine.kind == "dask":
        from forecasting.engines import dask_statistical_forecast

        return dask_statistical_forecast(Y_df, job, model_names)
    if (job.engine.partitions or 1) > 1:
        from forecasting.engines import partitioned_statistical_forecast

        return partitioned_statistical_forecast(Y_df, job, model_names, n_jobs)
    models = [STAT_MODELS[name](job) for name in model_names]
    sf = StatsForecast(models=models, freq=POLARS_FREQ[job.freq], n_jobs=n_jobs or job.n_jobs)
    with worker_processes_from_forkserver():
        forecasts = sf.forecast(df=Y_df, h=job.horizon, level=job.levels, fitted=True)
    fitted = sf.forecast_fitted_values().select("unique_id", "ds", "y", *model_names)
    return LevelForecast(forecasts, fitted, model_names)


def intermittent_ids(Y_df: pl.DataFrame, threshold: float) -> set[str]:
    """SKUs whose average demand interval (periods per non-zero period, after the first sale) exceeds `threshold`."""
    started = Y_df.filter((pl.col("y") > 0).cum_max().over("unique_id"))
    adi = started.group_by("unique_id").agg((pl.len() / (pl.col("y") > 0).sum()).alias("adi"))
    return set(adi.filter(pl.col("adi") > threshold)["unique_id"].to_list())


def combine(groups: list[list[LevelForecast]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Side by side within a group of series (same series, several models), stacked across groups (each group may
    run different models; a model a group does not run stays null there)."""
    forecasts, fitted = [], []
    for parts in groups:
        fc, fit = parts[0].forecasts, parts[0].fitted
        for part in parts[1:]:
            fc = fc.join(part.forecasts, on=["unique_id", "ds"], how="full", coalesce=True)
            fit = fit.join(part.fitted.drop("y"), on=["unique_id", "ds"], how="full", coalesce=True)
        forecasts.append(fc)
        fitted.append(fit)
    return (
        pl.concat(forecasts, how="diagonal_relaxed").sort("unique_id", "ds"),
        pl.concat(fitted, how="diagonal_relaxed").sort("unique_id", "ds"),
    )


def add_combinations(
    frame: pl.DataFrame, combinations: dict[str, list[str]], levels: list[int], with_intervals: bool = True
) -> pl.DataFrame:
    """Add each combination: the mean of its members' forecasts, and of their interval bounds (a simple,
    conservative approximation: averaging quantiles of the members, not a quantile of the averaged forecast).
    Null where a member did not run."""
    suffixes = [""]
    if with_intervals:
        suffixes += [f"-{side}-{lv}" for lv in levels for side in ("lo", "hi")]
    exprs = [
        (pl.sum_horizontal([pl.col(f"{m}{suffix}") for m in members], ignore_nulls=False) / len(members)).alias(
            f"{name}{suffix}"
        )
        for name, members in combinations.items()
        if all(m in frame.columns for m in members)
        for suffix in suffixes
    ]
    return frame.with_columns(exprs) if exprs else frame


def select_base(
    frame: pl.DataFrame, choice: pl.DataFrame, levels: list[int], with_intervals: bool = True
) -> pl.DataFrame:
    """Add the Base column (and its intervals): per series, the chosen model's values. `choice`: unique_id, model."""
    frame = frame.join(choice, on="unique_id", how="left")
    names = choice["model"].unique().to_list()
    suffixes = [""]
    if with_intervals:
        suffixes += [f"-{side}-{lv}" for lv in levels for side in ("lo", "hi")]
    exprs = []
    for suffix in suffixes:
        expr = pl.lit(None, dtype=pl.Float64)
        for name in names:
            expr = pl.when(pl.col("model") == name).then(pl.col(f"{name}{suffix}")).otherwise(expr)
        exprs.append(expr.alias(f"{BASE}{suffix}"))
    return frame.with_columns(exprs).drop("model")


def wide_model_names(wide: pl.DataFrame, keys: list[str]) -> list[str]:
    """The model (mean) columns of a Nixtla wide frame."""
    return [c for c in wide.columns if c not in (*keys, "y") and "-lo-" not in c and "-hi-" not in c]


def wide_to_long(wide: pl.DataFrame, levels: list[int], keys: list[str]) -> pl.DataFrame:
    """Nixtla wide frame (<model>, <model>-lo-<L>, ...) -> one row per key x model: mean, lo_<L>, hi_<L>.
    Rows where a model did not run (null mean) are dropped."""
    names = wide_model_names(wide, keys)
    frames = []
    for name in names:
        rename = {name: "mean"} | {f"{name}-{side}-{lv}": f"{side}_{lv}" for lv in levels for side in ("lo", "hi")}
        frames.append(
            wide.select(*keys, *rename)
            .rename(rename)
            .filter(pl.col("mean").is_not_null())
            .with_columns(pl.lit(name).alias("model"))
        )
    return pl.concat(frames)
