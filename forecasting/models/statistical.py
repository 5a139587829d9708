"""Local statistical models (statsforecast), fitted per series with the library's own intervals, in this process's
worker pool. Cost drives placement (DESIGN.md): full AutoETS / AutoTheta / AutoARIMA on the few aggregate series,
cheap ones (seasonal naive) per SKU. Each builder is registered in forecasting.job.catalogue."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager

import polars as pl
from statsforecast import StatsForecast
from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, Naive, SeasonalNaive

from forecasting.job.schema import POLARS_FREQ, JobSpec
from forecasting.models import fast_quantiles  # noqa: F401  (cached interval z-values: 5x faster baselines
from forecasting.models.frames import LevelForecast


def auto_ets(job: JobSpec) -> AutoETS:
    return AutoETS(season_length=job.season_length, alias="AutoETS")


def auto_theta(job: JobSpec) -> AutoTheta:
    return AutoTheta(season_length=job.season_length, alias="AutoTheta")


def auto_arima(job: JobSpec) -> AutoARIMA:
    return AutoARIMA(season_length=job.season_length, alias="AutoARIMA")


def seasonal_naive(job: JobSpec) -> SeasonalNaive:
    return SeasonalNaive(season_length=job.season_length, alias="SeasonalNaive")


def naive(job: JobSpec) -> Naive:
    return Naive(alias="Naive")


@contextmanager
def worker_processes_from_forkserver() -> Iterator[None]:
    """Start statsforecast's worker processes from a small, fresh forkserver instead of forking this process.

    Forked workers inherit the whole parent (gigabytes of history, features and model state: the M5 monthly job's
    process tree reached 5.4 GB, mostly in page copies counted once per worker) and any OpenMP thread pool that
    LightGBM started, which can deadlock them. statsforecast opens its pool with the default start method, so the
    default is switched for the duration of the call and restored after. Python 3.14 makes forkserver the default.
    The forkserver preloads forecasting.models.worker_guard, which ties it and its workers to this process: a run
    killed with SIGKILL or SIGTERM leaves none of them behind.
    """
    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_forkserver_preload(
        [
            "forecasting.models.worker_guard",
            "statsforecast.core",
            "statsforecast.models",
            "forecasting.models.fast_quantiles",
        ]
    )
    multiprocessing.set_start_method("forkserver", force=True)
    try:
        yield
    finally:
        multiprocessing.set_start_method(previous, force=True)


def local_statistical_forecast(
    Y_df: pl.DataFrame, job: JobSpec, models: list[object], n_jobs: int | None = None
) -> LevelForecast:
    """statsforecast's forecast (point, intervals, in-sample fits) of the given model instances, in this process."""
    names = [model.alias for model in models]  # type: ignore[attr-defined]
    sf = StatsForecast(models=models, freq=POLARS_FREQ[job.freq], n_jobs=n_jobs or job.n_jobs)
    with worker_processes_from_forkserver():
        forecasts = sf.forecast(df=Y_df, h=job.horizon, level=job.levels, fitted=True)
    fitted = sf.forecast_fitted_values().select("unique_id", "ds", "y", *names)
    return LevelForecast(forecasts, fitted, names)
