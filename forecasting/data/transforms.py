"""Target-side transforms for the global LightGBM: a level-normalised target, and days the business is closed.

Trees cannot extrapolate a trend: on raw or standardised daily sales LightGBM kept forecasting about 3 % low. Dividing
each value by a recent level of its own series that is already known at the forecast origin (the mean of `window`
values ending `shift` periods back) turns the target into a ratio near 1 that trees can fit; the forecast ratio is
multiplied back by the same level. With every lag and this shift at or beyond the horizon, nothing predicted feeds a
feature or a level, so the model is non-recursive.

Closed days (all M5 stores shut on Dec 25, sales near 0) would teach the model a one-day collapse: their history is
replaced by a backward-looking estimate for training and their forecasts are set to 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import polars as pl
from mlforecast.target_transforms import BaseTargetTransform

Frame = pl.DataFrame | pd.DataFrame


class LevelRatio(BaseTargetTransform):
    """y_t / L_t with L_t = mean(y_{t-shift-window+1} .. y_{t-shift}) per series (mlforecast target transform).

    For a forecast origin T, L_{T+h} only uses values up to T while h <= shift; beyond that the last computable level
    is carried forward. Rows without a level (the first shift + window - 1 of each series) or with L <= 0 get a null
    target, which mlforecast drops from training."""

    def __init__(self, shift: int = 28, window: int = 28) -> None:
        if shift < 1 or window < 1:
            raise ValueError("shift and window must be positive")
        self.shift = shift
        self.window = window

    def _level(self) -> pl.Expr:
        return pl.col(self.target_col).shift(self.shift).rolling_mean(self.window).over(self.id_col)

    def fit_transform(self, df: Frame) -> Frame:
        frame, was_pandas = _to_polars(df)
        frame = frame.with_row_index("__row").sort(self.id_col, self.time_col)
        level = frame.select(self.id_col, self.time_col, self._level().alias("__level"))
        self.history_ = level
        self.last_ = frame.group_by(self.id_col).agg(pl.col(self.time_col).max().alias("__last"))
        # Levels of the next `shift` periods: the rolling mean of the last `shift` windows of the history.
        self.future_ = (
            frame.select(
                self.id_col, pl.col(self.target_col).rolling_mean(self.window).over(self.id_col).alias("__level")
            )
            .group_by(self.id_col, maintain_order=True)
            .tail(self.shift)
            .with_columns(pl.int_range(1, pl.len() + 1).over(self.id_col).alias("__step"))
        )
        ratio = pl.when(pl.col("__level") > 0).then(pl.col(self.target_col) / pl.col("__level"))
        out = frame.with_columns(level["__level"]).with_columns(ratio.cast(pl.Float64).alias(self.target_col))
        out = out.sort("__row").drop("__row", "__level")
        return _back(out, df, was_pandas)

    def levels_for(self, df: Frame) -> pl.Series:
        """The level each row of `df` (id, time) is multiplied by: the history's own level, or for periods after
        the history the level of that step ahead (the last computable one beyond `shift`)."""
        frame, _ = _to_polars(df)
        keys = frame.select(self.id_col, self.time_col).with_row_index("__row")
        keys = keys.with_columns(pl.col(self.time_col).cast(self.history_.schema[self.time_col]))
        keys = keys.join(self.last_, on=self.id_col, how="left")
        past = keys.filter(pl.col(self.time_col) <= pl.col("__last")).join(
            self.history_, on=[self.id_col, self.time_col], how="left"
        )
        ahead = (
            keys.filter(pl.col(self.time_col) > pl.col("__last"))
            .with_columns(pl.col(self.time_col).rank("ordinal").over(self.id_col).alias("__step"))
            .with_columns(pl.col("__step").clip(upper_bound=self.shift).cast(pl.Int64))
            .join(self.future_.cast({"__step": pl.Int64}), on=[self.id_col, "__step"], how="left")
        )
        both = pl.concat([past.select("__row", "__level"), ahead.select("__row", "__level")])
        return keys.select("__row").join(both, on="__row", how="left").sort("__row")["__level"]

    def inverse_transform(self, df: Frame) -> Frame:
        frame, was_pandas = _to_polars(df)
        level = self.levels_for(frame)
        values = [c for c in frame.columns if c not in (self.id_col, self.time_col)]
        out = frame.with_columns((pl.col(c) * level).alias(c) for c in values)
        return _back(out, df, was_pandas)

    def update(self, df: Frame) -> Frame:
        raise NotImplementedError("LevelRatio does not support MLForecast.update: refit on the longer history")

    @staticmethod
    def stack(transforms: Sequence[BaseTargetTransform]) -> BaseTargetTransform:
        raise NotImplementedError("LevelRatio does not support distributed forecasting")


def _to_polars(df: Frame) -> tuple[pl.DataFrame, bool]:
    if isinstance(df, pd.DataFrame):
        return pl.from_pandas(df), True
    return df, False


def _back(out: pl.DataFrame, original: Frame, was_pandas: bool) -> Any:
    if not was_pandas:
        return out
    result = out.to_pandas()
    result.index = original.index
    return result.astype(original.dtypes.to_dict(), errors="ignore")


def closed_mask(ds: pl.Expr, closed_days: list[str]) -> pl.Expr:
    """True on the closed calendar days (`MM-DD`, every year)."""
    return ds.dt.strftime("%m-%d").is_in(closed_days)


def impute_closed_days(Y: pl.DataFrame, closed_days: list[str], season_length: int) -> pl.DataFrame:
    """y on a closed day -> mean of the values one and two seasons earlier in the same series (Dec 25 -> the same
    weekday 1 and 2 weeks before). Backward-looking only, so a training set cut at any origin sees nothing after it;
    the first seasons of a series, which have nothing to look back on, keep their value."""
    if not closed_days:
        return Y
    lag = pl.col("y").shift(season_length).over("unique_id", order_by="ds")
    lag2 = pl.col("y").shift(2 * season_length).over("unique_id", order_by="ds")
    estimate = (lag + lag2) / 2
    return Y.with_columns(
        pl.when(closed_mask(pl.col("ds"), closed_days) & estimate.is_not_null())
        .then(estimate)
        .otherwise(pl.col("y"))
        .alias("y")
    )


def zero_closed_days(frame: pl.DataFrame, closed_days: list[str], keep: Sequence[str] = ()) -> pl.DataFrame:
    """Set every float column except `keep` (actuals, keys) to 0 on closed days: nothing is sold when closed."""
    if not closed_days:
        return frame
    closed = closed_mask(pl.col("ds"), closed_days)
    values = [c for c, t in frame.schema.items() if t.is_float() and c not in keep]
    return frame.with_columns(pl.when(closed).then(0.0).otherwise(pl.col(c)).alias(c) for c in values)
