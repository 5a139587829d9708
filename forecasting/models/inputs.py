"""The series as the models are fitted on them: the aggregate and bottom levels apart, closed days imputed, and
with `models.trading_days` per calendar-adjusted period. The nightly run and the backtest share it."""

from __future__ import annotations

import polars as pl

from forecasting.data import trading_days, transforms
from forecasting.data.hierarchy import Hierarchy
from forecasting.job.schema import JobSpec


def split_levels(hierarchy: Hierarchy) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(aggregate series, bottom series) of the hierarchy's Y_df. aggregate() puts the bottom level last: then the
    two are slices of Y_df, not copies of the history."""
    Y_df = hierarchy.Y_df
    is_bottom = Y_df["unique_id"].is_in(pl.Series(hierarchy.ids(hierarchy.bottom)))
    first = Y_df.height - int(is_bottom.sum())
    if not is_bottom.head(first).any():
        return Y_df.head(first), Y_df.slice(first)
    return Y_df.filter(~is_bottom), Y_df.filter(is_bottom)


def model_inputs(hierarchy: Hierarchy, job: JobSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(aggregate, bottom) series as the models are fitted on them: closed days imputed, and with
    `models.trading_days` per calendar-adjusted period."""
    Y_agg, Y_bottom = (
        transforms.impute_closed_days(Y, job.closed_periods, job.season_length) for Y in split_levels(hierarchy)
    )
    return trading_days.for_models(Y_agg, job, aggregate=True), trading_days.for_models(Y_bottom, job, aggregate=False)
