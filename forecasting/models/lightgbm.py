"""Base forecasts from mlforecast's LightGBM: one global model per group of series (lags, rolling means, calendar,
price), grouped direct horizons (`horizon_blocks`), mlforecast's conformal intervals, bagging over seeds.

The nightly run, the backtests and the Dask engine (forecasting.models.dask_lightgbm) build the same model from
`lightgbm_setups`; forecasting.models.engines picks where it trains.
"""

from __future__ import annotations

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

from forecasting.data.transforms import LevelRatio
from forecasting.job.errors import MethodError
from forecasting.job.models import LIGHTGBM, LightGBMSpec
from forecasting.job.schema import POLARS_FREQ, JobSpec
from forecasting.models import drivers
from forecasting.models.frames import LevelForecast


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


def local_lightgbm_forecast(
    Y_df: pl.DataFrame,
    job: JobSpec,
    exog: pl.DataFrame | None = None,
    aggregate: bool = False,
    name: str = LIGHTGBM,
    explain: bool = False,
) -> LevelForecast:
    """One global LightGBM over the given series (one per horizon block with `horizon_blocks`), named `name` (the
    job's `lightgbm` or one of its `lightgbm_variants`). `exog` holds dynamic features for history and horizon.
    `explain`: also the drivers of every forecast (forecasting.models.drivers), from the rows it was made from.

    Aggregate series have few rows and very different scales: they share one model on standardised targets.
    Each block's model forecasts the whole horizon and keeps its own periods; the in-sample fits are the last
    block's (the model as the job writes it)."""
    forecasts, fitted, explained = [], None, []
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
        capture = drivers.FeatureCapture() if explain else None
        predicted = fcst.predict(h=job.horizon, level=job.levels, X_df=X_df, before_predict_callback=capture)
        forecasts.append(in_block(predicted, block, ["unique_id"]))
        if capture is not None:
            explanation = drivers.explain_forecast(fcst, name, capture, predicted, job)
            explained.append(in_block(explanation, block, ["unique_id"]))
        fitted = fcst.forecast_fitted_values().select("unique_id", "ds", "y", name)
    assert fitted is not None
    found = {name: pl.concat(explained).sort("unique_id", "ds")} if explained else {}
    return LevelForecast(pl.concat(forecasts).sort("unique_id", "ds"), fitted, [name], found)


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
    _check_history(Y_df, job, name, max(spec.lags), held_back)
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
    return fcst, train, intervals


def _check_history(Y_df: pl.DataFrame, job: JobSpec, name: str, max_lag: int, held_back: int) -> None:
    """Refuse, before any fit, a history too short for the lags and the conformal windows. mlforecast's conformal
    model trains on the periods before its windows: at or below max_lag + calibration a series has no row with every
    lag. Every series must have one in the nightly fit; in a backtest's first window (which lacks `held_back`
    periods) at least the longest must, or LightGBM fails with "num_data > 0"."""
    lengths = Y_df.group_by("unique_id").len()["len"]
    calibration = job.lightgbm_history()[1]
    for n_periods, where in [(lengths.min(), ""), (lengths.max() - held_back, " in the first backtest window")]:
        if n_periods <= max_lag + calibration:
            raise MethodError(
                f"series too short for {name}: {n_periods} periods{where}, need more than {max_lag} (the "
                f"longest lag) + {calibration} (models.conformal_windows={job.models.conformal_windows} windows of "
                f"{job.horizon}); use fewer backtest windows or conformal windows"
            )


SERIES_CODE = drivers.SERIES_CODE
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
