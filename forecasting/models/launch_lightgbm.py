"""LaunchLightGBM: the global LightGBM route for new and short series (issue 35).

One mlforecast LightGBM trained on the early lives of earlier launches (the bottom series that start after the data
does) and the young series themselves, so a series of one or two periods is forecast by a global model and not only
by a rule. What makes it work on short histories is mlforecast's own machinery:

- the job's lags and rolling means with `dropna=False`: a lag before a series' first period is left missing and
  LightGBM routes missing values down its learned default branch (no zero padding, no hand-written lags); the rolling
  means and the expanding mean (the series' mean so far, what LaunchCurve scales) take `min_samples=1`;
- the series' age (periods since its first row, its first sale in order-shaped data) as a dynamic feature, given
  for the horizon in `X_df`;
- the parent keys (the levels above the bottom, e.g. region and warehouse) as static features, coded as integers;
- `keep_last_n` so the prediction state holds only the periods the longest lag and window read.

Intervals: the model's mean times the relative bounds of the LaunchCurve of the same series (the spread of earlier
launches' later sales relative to their early mean, forecasting.models.young), or Poisson quantiles of the mean
where no curve exists. So a new series' intervals stay calibrated on earlier launches whichever launch model serves
it.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from mlforecast import MLForecast
from mlforecast.lag_transforms import ExpandingMean, RollingMean
from scipy.stats import poisson

from forecasting.data.hierarchy import Hierarchy
from forecasting.job.schema import POLARS_FREQ, JobSpec
from forecasting.models.lightgbm import _date_features, _lightgbm

LAUNCH_LIGHTGBM = "LaunchLightGBM"
AGE = "age"
MIN_LAUNCHES = 20  # fewer observed launches than this: the model also learns from the series that start with the data


def static_keys(hierarchy: Hierarchy) -> pl.DataFrame:
    """unique_id and the parent keys of every bottom series as integer codes (static features)."""
    names = hierarchy.spec.names
    keys = list(hierarchy.spec.levels[names[-2]]) if len(names) > 1 else []
    members = hierarchy.members.filter(pl.col("level") == hierarchy.bottom)
    return members.select(
        "unique_id", *[pl.col(k).cast(pl.String).rank("dense").cast(pl.Float64).alias(f"key_{k}") for k in keys]
    )


def training_series(Y_bottom: pl.DataFrame, young_ids: pl.Series) -> pl.DataFrame:
    """The rows the launch model learns from: observed launches (series starting after the data's first period)
    and the young series; every bottom series when too few launches were observed (e.g. one year of data)."""
    firsts = Y_bottom.group_by("unique_id").agg(pl.col("ds").min().alias("first"))
    launched = firsts.filter(pl.col("first") > firsts["first"].min())["unique_id"]
    if launched.len() < MIN_LAUNCHES:
        return Y_bottom
    keep = pl.col("unique_id").is_in(launched.implode()) | pl.col("unique_id").is_in(young_ids.implode())
    return Y_bottom.filter(keep)


def with_age(frame: pl.DataFrame, start: pl.DataFrame | None = None) -> pl.DataFrame:
    """Add `age` (1 at a series' first row); `start` (unique_id, age0): the age before the frame's first row."""
    age = pl.int_range(1, pl.len() + 1).over("unique_id")
    frame = frame.sort("unique_id", "ds").with_columns(age.alias(AGE))
    if start is not None:
        frame = frame.join(start, on="unique_id", how="left").with_columns(pl.col(AGE) + pl.col("age0")).drop("age0")
    return frame.with_columns(pl.col(AGE).cast(pl.Float64))


def launch_lightgbm_forecast(
    Y_bottom: pl.DataFrame, young_ids: pl.Series, keys: pl.DataFrame, job: JobSpec
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(forecasts: unique_id, ds, LaunchLightGBM; in-sample one-step fits: unique_id, ds, LaunchLightGBM) of the
    bottom series in `young_ids`, from one LightGBM over `training_series`. Intervals are added by the caller
    (`with_intervals`)."""
    ids = Y_bottom.filter(pl.col("unique_id").is_in(young_ids.implode()))["unique_id"].unique().sort()
    if ids.is_empty():
        empty = pl.DataFrame(schema={"unique_id": pl.String, "ds": Y_bottom.schema["ds"], LAUNCH_LIGHTGBM: pl.Float64})
        return empty, empty
    spec = job.models.lightgbm
    lags = sorted(set(spec.lags + spec.fixed_lags))
    first = min(lags)
    train = with_age(training_series(Y_bottom.select("unique_id", "ds", "y"), ids)).join(
        keys, on="unique_id", how="left"
    )
    statics = [c for c in keys.columns if c != "unique_id"]
    fcst = MLForecast(
        models={LAUNCH_LIGHTGBM: _lightgbm(job, spec, spec.objective, 20, threads=job.n_jobs)},
        freq=POLARS_FREQ[job.freq],
        lags=lags,
        lag_transforms={
            first: [ExpandingMean(), *[RollingMean(window_size=w, min_samples=1) for w in spec.rolling_windows]]
        },
        date_features=_date_features(job),
        num_threads=1,
    )
    # The prediction state keeps the periods the longest lag and window read (the expanding mean keeps its own
    # running state: the same forecasts as with every period kept).
    keep = max([*lags, *(w + first - 1 for w in spec.rolling_windows)])
    fcst.fit(train, static_features=statics, dropna=False, fitted=True, keep_last_n=keep)
    ages = train.filter(pl.col("unique_id").is_in(ids.implode())).group_by("unique_id").agg(pl.col(AGE).max())
    future = fcst.make_future_dataframe(job.horizon).filter(pl.col("unique_id").is_in(ids.implode()))
    future = future.join(ages, on="unique_id").with_columns(
        (pl.col(AGE) + pl.int_range(1, pl.len() + 1).over("unique_id")).cast(pl.Float64)
    )
    predicted = fcst.predict(h=job.horizon, X_df=future, ids=ids.to_list())
    fits = fcst.forecast_fitted_values().filter(pl.col("unique_id").is_in(ids.implode()))
    clip = pl.col(LAUNCH_LIGHTGBM).clip(lower_bound=0.0)
    return (
        predicted.select("unique_id", "ds", clip).sort("unique_id", "ds"),
        fits.select("unique_id", "ds", clip).sort("unique_id", "ds"),
    )


def with_intervals(forecasts: pl.DataFrame, curve: str, levels: list[int]) -> pl.DataFrame:
    """LaunchLightGBM's bounds: its mean times the `curve` model's bounds relative to that model's mean (calibrated
    on earlier launches), else Poisson quantiles of its mean."""
    mean = pl.col(LAUNCH_LIGHTGBM)
    values = forecasts[LAUNCH_LIGHTGBM].fill_null(0.0).to_numpy()
    exprs = []
    for lv in levels:
        lo_q, hi_q = (1 - lv / 100) / 2, 1 - (1 - lv / 100) / 2
        for side, q in (("lo", lo_q), ("hi", hi_q)):
            relative = pl.col(f"{curve}-{side}-{lv}") / pl.col(curve)
            fallback = pl.Series(poisson.ppf(q, np.maximum(values, 1e-9)))
            bound = pl.when(pl.col(curve) > 0).then(mean * relative).otherwise(pl.lit(fallback))
            limit = pl.min_horizontal(bound, mean) if side == "lo" else pl.max_horizontal(bound, mean)
            exprs.append(pl.when(mean.is_null()).then(None).otherwise(limit).alias(f"{LAUNCH_LIGHTGBM}-{side}-{lv}"))
    return forecasts.with_columns(exprs)
