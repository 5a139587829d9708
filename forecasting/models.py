"""Base forecasts at every level: statsforecast local models and mlforecast LightGBM, with prediction intervals.

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
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl
from mlforecast import MLForecast
from mlforecast.lag_transforms import RollingMean
from mlforecast.target_transforms import LocalStandardScaler
from mlforecast.utils import PredictionIntervals
from sklearn.base import BaseEstimator, RegressorMixin, clone
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
from forecasting.specs import LIGHTGBM, LightGBMSpec
from forecasting.transforms import LevelRatio

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


class SeedMean(RegressorMixin, BaseEstimator):
    """The mean of one regressor per seed: bagged LightGBMs (row / feature subsampling) differ by seed, and their
    mean is steadier than any one of them."""

    def __init__(self, estimator: lgb.LGBMRegressor, seeds: tuple[int, ...] = (0,)) -> None:
        self.estimator = estimator
        self.seeds = seeds

    def fit(self, X: Any, y: Any, **fit_params: Any) -> SeedMean:
        self.estimators_ = [
            clone(self.estimator).set_params(random_state=s).fit(X, y, **fit_params) for s in self.seeds
        ]
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.mean([e.predict(X) for e in self.estimators_], axis=0)


def _lightgbm(
    job: JobSpec, spec: LightGBMSpec, objective: str, min_child_samples: int, threads: int
) -> lgb.LGBMRegressor | SeedMean:
    model = lgb.LGBMRegressor(
        objective=objective,
        n_estimators=spec.n_estimators,
        learning_rate=spec.learning_rate,
        num_leaves=spec.num_leaves,
        min_child_samples=min_child_samples,
        subsample=spec.subsample,
        subsample_freq=1 if spec.subsample < 1 else 0,
        colsample_bytree=spec.colsample_bytree,
        random_state=job.seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=threads,
        verbosity=-1,
    )
    return SeedMean(model, tuple(spec.seeds)) if spec.seeds else model


def _target_transforms(spec: LightGBMSpec, aggregate: bool) -> list[Any] | None:
    """Level ratio when the job asks for it; else standardised aggregates (few series of very different scales)
    and, with `scale_target`, standardised bottom series."""
    if spec.level_ratio is not None:
        return [LevelRatio(spec.level_ratio.shift, spec.level_ratio.window)]
    return [LocalStandardScaler()] if aggregate or spec.scale_target else None


@dataclass(frozen=True)
class HorizonBlock:
    """Periods first..last of the horizon (1-based), forecast by one model whose lags reach `last` or further."""

    first: int
    last: int


def horizon_blocks(spec: LightGBMSpec, horizon: int) -> list[HorizonBlock]:
    """The blocks of grouped direct horizons (one block, the whole horizon, without `horizon_blocks`)."""
    size = spec.horizon_blocks or horizon
    return [HorizonBlock(first, min(first + size - 1, horizon)) for first in range(1, horizon + 1, size)]


def block_spec(spec: LightGBMSpec, horizon: int, block: HorizonBlock) -> LightGBMSpec:
    """The model of one block: lags, rolling lag and level shift brought `horizon - block.last` periods nearer (the
    job writes them for the last block), fixed lags (a year back) kept. The whole horizon: the spec as written."""
    nearer = horizon - block.last
    update: dict[str, Any] = {
        "lags": [lag - nearer for lag in spec.lags] + list(spec.fixed_lags),
        "rolling_lag": spec.rolling_lag - nearer,
    }
    if spec.level_ratio is not None:
        update["level_ratio"] = spec.level_ratio.model_copy(update={"shift": spec.level_ratio.shift - nearer})
    return spec.model_copy(update=update)


def lightgbm_forecast(
    Y_df: pl.DataFrame,
    job: JobSpec,
    exog: pl.DataFrame | None = None,
    aggregate: bool = False,
    name: str = LIGHTGBM,
) -> LevelForecast:
    """One global LightGBM over the given series (one per horizon block with `horizon_blocks`), named `name` (the
    job's `lightgbm` or one of its `lightgbm_variants`). `exog` holds dynamic features for history and horizon.

    Aggregate series have few rows and very different scales: they share one model on standardised targets.
    Each block's model forecasts the whole horizon and keeps its own periods; the in-sample fits are the last
    block's (the model as the job writes it). On a Dask engine the same setup trains on the cluster
    (forecasting.dask_lightgbm)."""
    if job.engine.kind == "dask":
        from forecasting.dask_lightgbm import dask_lightgbm_forecast

        return dask_lightgbm_forecast(Y_df, job, exog, aggregate, name)
    forecasts, fitted = [], None
    for block, (fcst, train, intervals) in lightgbm_setups(Y_df, job, exog, aggregate, name):
        fcst.fit(
            train,
            static_features=static_features(job),
            fitted=True,
            prediction_intervals=intervals,
            weight_col=weight_column(train),
        )
        X_df = None
        if exog is not None:
            X_df = fcst.make_future_dataframe(job.horizon).join(exog, on=["unique_id", "ds"], how="left")
        predicted = fcst.predict(h=job.horizon, level=job.levels, X_df=X_df)
        forecasts.append(in_block(predicted, block, ["unique_id"]))
        fitted = fcst.forecast_fitted_values().select("unique_id", "ds", "y", name)
    assert fitted is not None
    return LevelForecast(pl.concat(forecasts).sort("unique_id", "ds"), fitted, [name])


def in_block(frame: pl.DataFrame, block: HorizonBlock, by: list[str]) -> pl.DataFrame:
    """The rows of `frame` (a forecast per `by`: series, or series and cutoff) in the block's periods."""
    step = pl.col("ds").rank("ordinal").over(by)
    return frame.filter(step.is_between(block.first, block.last))


def lightgbm_setups(
    Y_df: pl.DataFrame,
    job: JobSpec,
    exog: pl.DataFrame | None,
    aggregate: bool,
    name: str = LIGHTGBM,
    held_back: int = 0,
) -> list[tuple[HorizonBlock, tuple[MLForecast, pl.DataFrame, PredictionIntervals]]]:
    """(block, unfitted setup) for each horizon block of the LightGBM called `name`. `held_back`: the last periods
    of `Y_df` that the earliest fit does not see (a backtest's first window: its horizon and the later windows)."""
    spec = job.models.lightgbm_spec(name)
    return [
        (block, lightgbm_setup(Y_df, job, exog, aggregate, block_spec(spec, job.horizon, block), name, held_back))
        for block in horizon_blocks(spec, job.horizon)
    ]


def lightgbm_setup(
    Y_df: pl.DataFrame,
    job: JobSpec,
    exog: pl.DataFrame | None,
    aggregate: bool,
    spec: LightGBMSpec | None = None,
    name: str = LIGHTGBM,
    held_back: int = 0,
) -> tuple[MLForecast, pl.DataFrame, PredictionIntervals]:
    """The unfitted MLForecast, its training frame (with exogenous columns) and conformal settings; shared by the
    nightly forecast and the backtests so both fit the same model. `spec`: one block's settings (default: the
    job's `lightgbm` as written, fixed lags included)."""
    if spec is None:
        spec = job.models.lightgbm
        spec = spec.model_copy(update={"lags": spec.lags + spec.fixed_lags})
    max_lag = max(spec.lags)
    if aggregate:
        # A few hundred rows: extra OpenMP threads only add barrier waits (minutes when the cores are shared).
        model = _lightgbm(job, spec, "regression", 5, threads=1)
    else:
        # All the job's cores: statsforecast's workers come from a forkserver, so LightGBM's OpenMP pool is never
        # inherited by a forked child (which deadlocked a long-lived process: tests, `prefect serve`).
        model = _lightgbm(job, spec, spec.objective, 20, threads=job.n_jobs)
    fcst = MLForecast(
        models={name: model},
        freq=POLARS_FREQ[job.freq],
        lags=spec.lags,
        lag_transforms={spec.rolling_lag: [RollingMean(window_size=w) for w in spec.rolling_windows]},
        date_features=_date_features(job),
        target_transforms=_target_transforms(spec, aggregate),
        num_threads=1,
    )
    train = Y_df.select("unique_id", "ds", "y")
    if spec.series_feature:
        train = train.with_columns(pl.col("unique_id").rank("dense").cast(pl.Float64).alias(SERIES_CODE))
    if exog is not None:
        train = train.join(exog, on=["unique_id", "ds"], how="left")
    if spec.half_life is not None:
        # Relative to the frame's last period; mlforecast's cross-validation windows see the same weights times a
        # constant, which leaves LightGBM's splits and leaf values unchanged.
        age = pl.col("ds").rank("ordinal", descending=True).over("unique_id") - 1
        train = train.with_columns((0.5 ** (age / spec.half_life)).alias(WEIGHT))
    intervals = PredictionIntervals(n_windows=job.models.conformal_windows, h=job.horizon)
    lengths = Y_df.group_by("unique_id").len()["len"]
    # mlforecast's conformal model trains on the periods before its windows: at or below max_lag + calibration a
    # series has no row with every lag. Every series must have one in the nightly fit; in a backtest's first window
    # (which lacks `held_back` periods) at least the longest must, or LightGBM fails with "num_data > 0".
    calibration = job.horizon * job.models.conformal_windows
    for n_periods, where in [(lengths.min(), ""), (lengths.max() - held_back, " in the first backtest window")]:
        if n_periods <= max_lag + calibration:
            raise ValueError(
                f"series too short for {name}: {n_periods} periods{where}, need more than {max_lag} (the "
                f"longest lag) + {calibration} (models.conformal_windows={job.models.conformal_windows} windows of "
                f"{job.horizon}); use fewer backtest windows or conformal windows"
            )
    return fcst, train, intervals


SERIES_CODE = "series_code"
WEIGHT = "sample_weight"


def weight_column(train: pl.DataFrame) -> str | None:
    """The sample-weight column lightgbm_setup added to `train` (with `half_life`), else None."""
    return WEIGHT if WEIGHT in train.columns else None


def static_features(job: JobSpec) -> list[str]:
    """Static columns lightgbm_setup adds to the training frame (the series code when the job asks for it)."""
    return [SERIES_CODE] if job.models.lightgbm.series_feature else []


def _date_features(job: JobSpec) -> list[str]:
    return {
        "day": ["weekday", "month", "day"],  # polars names (the frames are polars)
        "week": ["month", "week"],
        "month": ["month"],
        "quarter": ["quarter"],
    }[job.freq]


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
