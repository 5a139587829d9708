"""Where the base models run: in this process (statsforecast's own worker pool, LightGBM's threads) or on a Dask
cluster through the libraries' distributed APIs. Nothing here schedules work itself: `StatsForecast.forecast` given a
Dask DataFrame partitions the series by unique_id and fits each partition on the cluster's workers (Fugue
transform); the global LightGBM gets its features, cross-validation, forecasts and in-sample fits from mlforecast's
DistributedMLForecast on the cluster and trains with LightGBM's Dask estimator (forecasting.models.dask_lightgbm): on
one worker by default, bit for bit the local numbers; data-parallel across the workers on request, not the local numbers
(docs/scale.md).

Job file:
    engine: {kind: dask, scheduler: "tcp://scheduler.internal:8786"}   # a running cluster
    engine: {kind: dask, workers: 2}                                   # a LocalCluster on this machine
CLI: `forecasting run --engine dask --scheduler tcp://scheduler.internal:8786`.

The cluster's workers need the same Python packages (statsforecast, mlforecast, lightgbm, fugue, dask[distributed])
as the client, and this project when the job has a LightGBM (the in-sample fit function and the level-ratio target
transform are pickled by reference); not the data: the history is sent from the client, partitioned by series.
Backtests keep the local LightGBM."""

from __future__ import annotations

import numpy as np
import polars as pl

from forecasting.job.engine import EngineSpec
from forecasting.job.models import LIGHTGBM
from forecasting.job.schema import PANDAS_FREQ, JobSpec
from forecasting.models.cluster import client, local_layout
from forecasting.models.frames import LevelForecast, calibration_periods
from forecasting.models.lightgbm import local_lightgbm_forecast
from forecasting.models.registry import local_models
from forecasting.models.statistical import local_statistical_forecast


def statistical_forecast(
    Y_df: pl.DataFrame, job: JobSpec, model_names: list[str], n_jobs: int | None = None
) -> LevelForecast:
    """The catalogue's statsforecast models `model_names` over the series of Y_df, where the job's engine says: in
    this process's worker pool, in groups of series one after another (`engine.partitions`), or on Dask."""
    if job.engine.kind == "dask":
        return dask_statistical_forecast(Y_df, job, model_names)
    if (job.engine.partitions or 1) > 1:
        return partitioned_statistical_forecast(Y_df, job, model_names, n_jobs)
    return local_statistical_forecast(Y_df, job, local_models(job, model_names), n_jobs)


def lightgbm_forecast(
    Y_df: pl.DataFrame,
    job: JobSpec,
    exog: pl.DataFrame | None = None,
    aggregate: bool = False,
    name: str = LIGHTGBM,
    explain: bool = False,
) -> LevelForecast:
    """The global LightGBM called `name` over the series of Y_df, locally or on the job's Dask cluster
    (forecasting.models.dask_lightgbm: the same setup, trained there; not explained: no drivers there)."""
    if job.engine.kind == "dask":
        from forecasting.models.dask_lightgbm import dask_lightgbm_forecast  # dask only when asked for

        return dask_lightgbm_forecast(Y_df, job, exog, aggregate, name)
    return local_lightgbm_forecast(Y_df, job, exog=exog, aggregate=aggregate, name=name, explain=explain)


def partitioned_statistical_forecast(
    Y_df: pl.DataFrame, job: JobSpec, model_names: list[str], n_jobs: int | None = None
) -> LevelForecast:
    """statsforecast's local forecast over groups of series, one group after another. Each series is fitted on its
    own, so the forecasts are the same; what shrinks is the peak: statsforecast holds the fitted values of every
    model with every interval level (19 columns per history row for 2 models and 4 levels) until they are
    collected, and only y and the model columns are kept here. A group is a slice of Y_df when its rows are sorted
    by series (as the hierarchy holds them), not a filtered copy. When only the conformal intervals read the
    in-sample fits (no MinTrace variant estimates variances from them), a group keeps the periods its series all
    have fits for (reconcile.calibration_periods), a superset of the periods the intervals are calibrated on."""
    runs = Y_df["unique_id"].rle()
    ids, lengths = runs.struct.field("value"), runs.struct.field("len")
    contiguous = ids.is_sorted() and ids.n_unique() == ids.len()
    if not contiguous:
        ids, lengths = Y_df["unique_id"].unique().sort(), None
    single = job.model_copy(update={"engine": EngineSpec()})
    keep_all_fits = job.reconciliation.estimates_from_errors
    forecasts, fitted = [], []
    start = 0
    for group in np.array_split(np.arange(ids.len()), min(job.engine.partitions or 1, max(1, ids.len()))):
        if lengths is not None:
            rows = int(lengths.slice(int(group[0]), len(group)).sum()) if len(group) else 0
            part_df, start = Y_df.slice(start, rows), start + rows
        else:
            part_df = Y_df.filter(pl.col("unique_id").is_in(ids.gather(group).implode()))
        part = local_statistical_forecast(part_df, single, local_models(single, model_names), n_jobs)
        forecasts.append(part.forecasts)
        window = job.reconciliation.calibration_window
        fitted.append(part.fitted if keep_all_fits else calibration_periods(part.fitted, model_names, window))
    return LevelForecast(pl.concat(forecasts), pl.concat(fitted), model_names)


def dask_statistical_forecast(Y_df: pl.DataFrame, job: JobSpec, model_names: list[str]) -> LevelForecast:
    """statsforecast's forecast (point, intervals, in-sample fits) of the series in Y_df on the job's Dask cluster;
    the same frame layout and types as the local models.statistical_forecast."""
    import dask.dataframe as dd
    from statsforecast import StatsForecast

    dask_client = client(job.engine)
    threads = sum(dask_client.nthreads().values()) or 1
    partitions = job.engine.partitions or 2 * threads
    history = Y_df.select("unique_id", "ds", "y").to_pandas()
    history["ds"] = history["ds"].astype("datetime64[ns]")
    models = local_models(job, model_names)
    sf = StatsForecast(models=models, freq=PANDAS_FREQ[job.freq])
    with dask_client.as_current():
        ddf = dd.from_pandas(history, npartitions=min(partitions, max(1, Y_df["unique_id"].n_unique())))
        forecasts = sf.forecast(df=ddf, h=job.horizon, level=job.levels, fitted=True).compute()
        fitted = sf.forecast_fitted_values().compute()
    ds_type = Y_df.schema["ds"]
    return LevelForecast(
        forecasts=local_layout(forecasts, ds_type),
        fitted=local_layout(fitted, ds_type).select("unique_id", "ds", "y", *model_names),
        models=model_names,
    )
