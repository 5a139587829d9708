"""Forecast combinations: the job's named means of models, and the automatic candidates every level gets (the M4 and
M5 competitions found combinations of diverse families hold up on new windows where single tuned models do not):

- `Mean`: the equal-weight mean of every model run for the series;
- `Median`: their median (three models or more);
- `Weighted`: weights per level fitted on earlier backtest windows only (forecasting.evaluate.plan), applied here;
- `Top2`: the mean of the two models best on the earlier windows, per level (select, then combine).

Interval bounds are combined the same way as the means (a simple, conservative approximation: a combination of the
members' quantiles, not a quantile of the combined forecast). A combination is null where a member did not run.
"""

from __future__ import annotations

import polars as pl

from forecasting.job.models import AUTO_COMBINATIONS, MEAN, MEDIAN, TOP2, WEIGHTED
from forecasting.models.frames import interval_suffixes

__all__ = ["AUTO_COMBINATIONS", "MEAN", "MEDIAN", "TOP2", "WEIGHTED", "add_automatic", "add_combinations", "add_fitted"]


def add_combinations(
    frame: pl.DataFrame, combinations: dict[str, list[str]], levels: list[int], with_intervals: bool = True
) -> pl.DataFrame:
    """Add each combination: the mean of its members' forecasts, and of their interval bounds (a simple,
    conservative approximation: averaging quantiles of the members, not a quantile of the averaged forecast).
    Null where a member did not run."""
    exprs = [
        (pl.sum_horizontal([pl.col(f"{m}{suffix}") for m in members], ignore_nulls=False) / len(members)).alias(
            f"{name}{suffix}"
        )
        for name, members in combinations.items()
        if all(m in frame.columns for m in members)
        for suffix in interval_suffixes(levels, with_intervals)
    ]
    return frame.with_columns(exprs) if exprs else frame


def add_automatic(
    frame: pl.DataFrame, models: list[str], levels: list[int], with_intervals: bool = True
) -> pl.DataFrame:
    """Add `Mean` and, with three models or more, `Median` of the models in `models` that ran for each series (the
    aggregate and bottom levels run different models: a row combines those it has)."""
    present = [m for m in models if m in frame.columns]
    if len(present) < 2:
        return frame
    exprs = []
    for suffix in interval_suffixes(levels, with_intervals):
        columns = [pl.col(f"{m}{suffix}") for m in present]
        exprs.append(pl.mean_horizontal(columns).alias(f"{MEAN}{suffix}"))
        if len(present) >= 3:
            exprs.append(pl.concat_list(columns).list.median().alias(f"{MEDIAN}{suffix}"))
    return frame.with_columns(exprs)


def add_fitted(
    frame: pl.DataFrame,
    combinations: dict[str, dict[str, dict[str, float]]],
    levels_of: pl.DataFrame,
    levels: list[int],
    with_intervals: bool = True,
) -> pl.DataFrame:
    """Add each fitted combination (`combinations`: name -> level -> model -> weight, summing to 1; `levels_of`:
    unique_id, level): per series, the weighted mean of its level's models. Null at a level without weights or
    where a weighted model is null."""
    for name, weights in sorted(combinations.items()):
        frame = _add_weighted(frame, name, weights, levels_of, levels, with_intervals)
    return frame


def _add_weighted(
    frame: pl.DataFrame,
    name: str,
    weights: dict[str, dict[str, float]],
    levels_of: pl.DataFrame,
    levels: list[int],
    with_intervals: bool,
) -> pl.DataFrame:
    frame = frame.join(levels_of.select("unique_id", pl.col("level").alias("__level")), on="unique_id", how="left")
    exprs = []
    for suffix in interval_suffixes(levels, with_intervals):
        value = pl.lit(None, dtype=pl.Float64)
        for level, members in sorted(weights.items()):
            usable = {m: w for m, w in members.items() if f"{m}{suffix}" in frame.columns}
            if not usable:
                continue
            total = sum(w * pl.col(f"{m}{suffix}") for m, w in sorted(usable.items()))
            value = pl.when(pl.col("__level") == level).then(total).otherwise(value)
        exprs.append(value.alias(f"{name}{suffix}"))
    return frame.with_columns(exprs).drop("__level")
