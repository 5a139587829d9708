"""Where the base models run: in this process (statsforecast's own worker pool, LightGBM's threads) or on a Dask
cluster through the libraries' distributed APIs. Nothing here schedules work itself: `StatsForecast.forecast` given a
Dask DataFrame partitions the series by unique_id and fits each partition on the cluster's workers (Fugue
transform); the global LightGBM gets its features, cross-validation, forecasts and in-sample fits from mlforecast's
DistributedMLForecast on the cluster and trains with LightGBM's Dask estimator (forecasting.dask_lightgbm): on one
worker by default, bit for bit the local numbers; data-parallel across the workers on request, not the local numbers
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

import atexit
from typing import TYPE_CHECKING, Literal

import polars as pl
from pydantic import Field

from forecasting.specs import Strict

if TYPE_CHECKING:
    from distributed import Client

    from forecasting.config import JobSpec
    from forecasting.models import LevelForecast

_clients: dict[tuple, Client] = {}


class EngineSpec(Strict):
    """Where the base models run."""

    kind: Literal["local", "dask"] = "local"
    scheduler: str | None = Field(
        None, description="Dask scheduler address (tcp://host:8786); none: start a LocalCluster on this machine"
    )
    workers: int = Field(2, ge=1, le=256, description="worker processes of the LocalCluster (no scheduler given)")
    partitions: int | None = Field(
        None,
        ge=1,
        description="dask: partitions of the history (default: 2 per worker thread of the cluster); local: fit the "
        "series in this many groups one after another (same forecasts; peak memory of one group's interval and "
        "in-sample arrays instead of all of them)",
    )
    lightgbm_training: Literal["one_worker", "data_parallel"] = Field(
        "one_worker",
        description="dask: how the global LightGBM trains on the features the cluster built. one_worker: LightGBM's "
        "single-machine learner on one worker (the local run's numbers bit for bit, on any number of workers); "
        "data_parallel: LightGBM's data-parallel learner across the workers, for training sets larger than one "
        "worker's memory (not the local numbers: docs/scale.md, 'Local vs Dask LightGBM')",
    )


def client(spec: EngineSpec) -> Client:
    """A Dask client for the spec, made once per process and closed at exit (a LocalCluster dies with it)."""
    from distributed import Client, LocalCluster

    key = (spec.scheduler, spec.workers)
    if key not in _clients or _clients[key].status in ("closed", "closing"):
        if spec.scheduler:
            _clients[key] = Client(spec.scheduler, set_as_default=False)
        else:
            cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True)
            _clients[key] = Client(cluster, set_as_default=False)
            atexit.register(cluster.close)
        atexit.register(_clients[key].close)
    return _clients[key]


def close_clients() -> None:
    """Close the clients this process made (before their cluster goes away, so none tries to reconnect)."""
    while _clients:
        _clients.popitem()[1].close()


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
    import numpy as np

    from forecasting.models import LevelForecast, statistical_forecast
    from forecasting.reconcile import calibration_periods, uses_error_history

    runs = Y_df["unique_id"].rle()
    ids, lengths = runs.struct.field("value"), runs.struct.field("len")
    contiguous = ids.is_sorted() and ids.n_unique() == ids.len()
    if not contiguous:
        ids, lengths = Y_df["unique_id"].unique().sort(), None
    single = job.model_copy(update={"engine": EngineSpec()})
    keep_all_fits = uses_error_history(job)
    forecasts, fitted = [], []
    start = 0
    for group in np.array_split(np.arange(ids.len()), min(job.engine.partitions or 1, max(1, ids.len()))):
        if lengths is not None:
            rows = int(lengths.slice(int(group[0]), len(group)).sum()) if len(group) else 0
            part_df, start = Y_df.slice(start, rows), start + rows
        else:
            part_df = Y_df.filter(pl.col("unique_id").is_in(ids.gather(group).implode()))
        part = statistical_forecast(part_df, single, model_names, n_jobs)
        forecasts.append(part.forecasts)
        window = job.reconciliation.calibration_window
        fitted.append(part.fitted if keep_all_fits else calibration_periods(part.fitted, model_names, window))
    return LevelForecast(pl.concat(forecasts), pl.concat(fitted), model_names)


def dask_statistical_forecast(Y_df: pl.DataFrame, job: JobSpec, model_names: list[str]) -> LevelForecast:
    """statsforecast's forecast (point, intervals, in-sample fits) of the series in Y_df on the job's Dask cluster;
    the same frame layout and types as the local models.statistical_forecast."""
    import dask.dataframe as dd
    from statsforecast import StatsForecast

    from forecasting.config import PANDAS_FREQ  # config imports this module: imported here, not at the top
    from forecasting.models import STAT_MODELS, LevelForecast

    dask_client = client(job.engine)
    threads = sum(dask_client.nthreads().values()) or 1
    partitions = job.engine.partitions or 2 * threads
    history = Y_df.select("unique_id", "ds", "y").to_pandas()
    history["ds"] = history["ds"].astype("datetime64[ns]")
    models = [STAT_MODELS[name](job) for name in model_names]
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


def local_layout(frame, ds_type: pl.DataType) -> pl.DataFrame:
    """pandas result of the Fugue backend -> polars with the local run's types (Fugue's schema uses float32 for
    model columns), sorted as statsforecast sorts locally."""
    out = pl.from_pandas(frame.reset_index(drop=True))
    floats = [c for c, t in out.schema.items() if t.is_float()]
    return (
        out.with_columns(pl.col("unique_id").cast(pl.String), pl.col("ds").cast(ds_type))
        .with_columns(pl.col(floats).cast(pl.Float64))
        .sort("unique_id", "ds")
    )
