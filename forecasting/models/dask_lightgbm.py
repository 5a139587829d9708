"""The global LightGBM on a Dask cluster: mlforecast's DistributedMLForecast with DaskLGBMForecast (LightGBM's own
data-parallel Dask training), built from the same setup as the local model (forecasting.models.lightgbm.lightgbm_setups:
lags, rolling means, date features, target transforms, exogenous price / calendar columns, static series code, sample
weights).

What DistributedMLForecast (mlforecast 1.1.0) lacks, and what is used instead, library code in every case:
- conformal intervals: its `fit` takes no `prediction_intervals`. Local MLForecast.fit gets them from
  `cross_validation(refit=False)` on `n_windows` windows of `h` periods; here DistributedMLForecast.cross_validation
  with the same arguments runs on the cluster, and mlforecast's own `compute_conformity_scores` and conformal method
  (`_add_conformal_distribution_intervals` for the default "conformal_distribution") turn its errors into intervals.
- in-sample fits: its `fit` takes no `fitted`. DistributedMLForecast keeps each partition's training frame (the
  features it trained on) on the cluster; mlforecast's own MLForecast._compute_fitted_values runs on each partition
  there (the trained model's prediction on its training rows, target transforms inverted), the same definition of
  in-sample fit as the local run.

Where LightGBM trains (job.engine.lightgbm_training): LightGBM's data-parallel learner is not its single-machine
learner, so on two workers it does not give the local model (docs/scale.md, "Local vs Dask LightGBM"): each worker
bins some features from its own rows (lightgbm-org/LightGBM#3835; `forcedbins_filename` cannot pin them in 4.7, whose
distributed loader gives rank > 0 another feature's forced bounds, lightgbm-org/LightGBM#7436), the boosting starts
from the unweighted mean of each worker's own starting score, and after the first split the learner sizes leaves by
counts estimated from hessians (DataParallelTreeLearner::Split keeps the split's estimate, update_cnt false), which
`min_child_samples` then judges. By default the features, cross-validation windows, forecasts and in-sample fits
are built on the cluster partition by partition (whole series, partitions in unique_id order), and each training
gathers its feature rows into one partition, in the local frame's row order, so LightGBM trains on one worker with
its single-machine learner on the local rows: the local numbers bit for bit on any cluster, bagging included.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import cloudpickle
import pandas as pd
import polars as pl
from mlforecast.distributed.models.dask.lgb import DaskLGBMForecast

from forecasting.job.schema import PANDAS_FREQ, POLARS_FREQ
from forecasting.models import lightgbm as gbm
from forecasting.models.cluster import client, local_layout
from forecasting.models.frames import LevelForecast
from forecasting.models.lightgbm import SeedMean

if TYPE_CHECKING:
    from mlforecast.distributed import DistributedMLForecast

    from forecasting.job.schema import JobSpec

SEED_SEPARATOR = "__seed"  # one Dask model per seed of a SeedMean: "<name>__seed<s>", averaged into <name>


class OneWorkerLGBMForecast(DaskLGBMForecast):
    """DaskLGBMForecast trained on one worker: the feature rows (built on the cluster) go into one partition first,
    so LightGBM's Dask training runs its single-machine learner there, as the local run does. The training frame
    must fit in one worker's memory; the model is the local one."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> OneWorkerLGBMForecast:
        def together(frame: Any) -> Any:
            return None if frame is None else frame.repartition(npartitions=1)

        return super().fit(together(X), together(y), sample_weight=together(sample_weight), **kwargs)


def dask_lightgbm_forecast(
    Y_df: pl.DataFrame, job: JobSpec, exog: pl.DataFrame | None, aggregate: bool, name: str
) -> LevelForecast:
    """forecasting.models.lightgbm.local_lightgbm_forecast on the job's Dask cluster: point forecasts, conformal
    intervals and in-sample fits in the local run's frame layout."""
    import dask.dataframe as dd
    from mlforecast.conformal_prediction import compute_conformity_scores, get_conformal_method

    dask_client = client(job.engine)
    threads = sum(dask_client.nthreads().values()) or 1
    n_series = Y_df["unique_id"].n_unique()
    partitions = min(job.engine.partitions or 2 * threads, n_series)
    ds_type = Y_df.schema["ds"]
    forecasts, fitted = [], None
    for block, (local, train, intervals) in gbm.lightgbm_setups(Y_df, job, exog, aggregate, name):
        fcst, members = distributed_setup(local, job, dask_client)
        history = train.sort("unique_id", "ds", maintain_order=True).to_pandas()
        history["ds"] = history["ds"].astype("datetime64[ns]")
        statics = gbm.static_features(job)
        with dask_client.as_current():
            # Whole series per partition, partitions in unique_id order (the dask frame's divisions): concatenated
            # for a one-worker training, the rows come in the local frame's order (bagging draws rows by position).
            ddf = dd.from_pandas(history.set_index("unique_id"), npartitions=partitions, sort=True).reset_index()
            # As MLForecast.fit computes its conformity scores: refit=False, the same frame, no weight column.
            cv = fcst.cross_validation(
                ddf, n_windows=intervals.n_windows, h=intervals.h, refit=False, static_features=statics
            ).compute()
            fcst.fit(ddf, static_features=statics, weight_col=gbm.weight_column(train))
            predicted = fcst.predict(job.horizon, X_df=future_exogenous(Y_df, job, exog)).compute()
            in_sample = in_sample_fits(fcst, name, members) if block.last == job.horizon else None
        predicted = mean_of_seeds(predicted, name, members).sort_values(["unique_id", "ds"], ignore_index=True)
        cv = mean_of_seeds(cv, name, members).sort_values(["cutoff", "unique_id", "ds"], ignore_index=True)
        scores = compute_conformity_scores(cv[["unique_id", "ds", "y", name]], [name], "y")
        with_intervals = get_conformal_method(intervals.method)(
            predicted[["unique_id", "ds", name]],
            scores,
            model_names=[name],
            level=sorted(job.levels),
            cs_n_windows=intervals.n_windows,
            cs_h=intervals.h,
            n_series=predicted["unique_id"].nunique(),
            horizon=job.horizon,
        )
        forecasts.append(gbm.in_block(local_layout(with_intervals, ds_type), block, ["unique_id"]))
        if in_sample is not None:
            fitted = local_layout(in_sample, ds_type).select("unique_id", "ds", "y", name)
    assert fitted is not None
    return LevelForecast(pl.concat(forecasts).sort("unique_id", "ds"), fitted, [name])


def distributed_setup(local: Any, job: JobSpec, dask_client: Any) -> tuple[DistributedMLForecast, list[str]]:
    """The DistributedMLForecast of a local MLForecast setup: the same features and target transforms, each
    LightGBM (or each seed of a SeedMean) as a Dask LightGBM with the same parameters, trained on one worker or
    data-parallel as the engine says. Returns it with the names of its models (one per seed, averaged back by
    mean_of_seeds)."""
    from mlforecast.distributed import DistributedMLForecast

    estimator = OneWorkerLGBMForecast if job.engine.lightgbm_training == "one_worker" else DaskLGBMForecast
    ((name, model),) = local.models.items()
    if isinstance(model, SeedMean):
        params = model.estimator.get_params()
        dask_models = {
            f"{name}{SEED_SEPARATOR}{seed}": estimator(**params | {"random_state": seed}) for seed in model.seeds
        }
    else:
        dask_models = {name: estimator(**model.get_params())}
    ts = local.ts
    fcst = DistributedMLForecast(
        models=dask_models,
        freq=PANDAS_FREQ[job.freq],
        lags=ts.lags,
        lag_transforms=ts.lag_transforms,
        # polars names (month, week, day, weekday) are pandas attributes too; pandas' weekday counts from 0, polars'
        # from 1: the same splits for a tree.
        date_features=ts.date_features,
        target_transforms=ts.target_transforms,
        engine=dask_client,
        num_partitions=None,  # keep the frame's partitions (whole series, in unique_id order)
    )
    return fcst, list(dask_models)


def mean_of_seeds(frame: pd.DataFrame, name: str, members: list[str]) -> pd.DataFrame:
    """One column `name`: the model's own, or the mean of its seeds' (as SeedMean averages locally)."""
    if members == [name]:
        return frame
    return frame.assign(**{name: frame[members].mean(axis=1)}).drop(columns=members)


def future_exogenous(Y_df: pl.DataFrame, job: JobSpec, exog: pl.DataFrame | None) -> pd.DataFrame | None:
    """The exogenous columns of each series' next `horizon` periods (what MLForecast.make_future_dataframe joined
    with `exog` gives locally)."""
    if exog is None:
        return None
    from utilsforecast.processing import make_future_dataframe

    last = Y_df.group_by("unique_id").agg(pl.col("ds").max()).sort("unique_id")
    future = make_future_dataframe(last["unique_id"], last["ds"], POLARS_FREQ[job.freq], job.horizon)
    frame = future.join(exog, on=["unique_id", "ds"], how="left").to_pandas()
    frame["ds"] = frame["ds"].astype("datetime64[ns]")
    return frame


def in_sample_fits(fcst: DistributedMLForecast, name: str, members: list[str]) -> pd.DataFrame:
    """unique_id, ds, y, <name>: the fitted models' predictions on their training rows, computed on the cluster
    partition by partition by mlforecast's own MLForecast._compute_fitted_values (what MLForecast.fit(fitted=True)
    runs locally)."""
    import fugue.api as fa

    schema = "unique_id:str,ds:datetime,y:double," + ",".join(f"{m}:double" for m in members)
    frame = fa.transform(
        fcst._partition_results,
        _partition_fits,
        schema=schema,
        params={"models": fcst.models_},
        engine=fcst.engine,
    )
    return mean_of_seeds(fa.as_pandas(frame), name, members)


def _partition_fits(items: list[list[Any]], models) -> Iterable[pd.DataFrame]:  # noqa: ANN001 (Fugue reads hints)
    """In-sample fits of one partition (runs on a worker). Each item is a row of DistributedMLForecast's partition
    results: the partition's TimeSeries and its training frame. `models` has no type hint: Fugue takes annotated
    parameters for inputs."""
    from mlforecast import MLForecast
    from mlforecast.distributed import DistributedMLForecast

    for row in items:
        fields = dict(zip(DistributedMLForecast._PARTITION_FIELDS, row, strict=False))
        ts, train = cloudpickle.loads(fields["ts"]), cloudpickle.loads(fields["train"])
        local = MLForecast(models=models, freq=ts.freq)
        local.ts, local.models_ = ts, models
        yield local._compute_fitted_values(
            base=train[[ts.id_col, ts.time_col]],
            X=train[ts.features_order_],
            y=train[ts.target_col].to_numpy(),
            id_col=ts.id_col,
            time_col=ts.time_col,
            target_col=ts.target_col,
            max_horizon=None,
            weight_col=None,
        ).rename(columns={ts.id_col: "unique_id", ts.time_col: "ds", ts.target_col: "y"})
