"""The frames every model returns and how they are put together: Nixtla wide frames (unique_id, ds, <model>,
<model>-lo-<L>, <model>-hi-<L>) side by side across models, stacked across groups of series, and turned long (one row
per series x period x model) for the outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl


@dataclass
class LevelForecast:
    forecasts: pl.DataFrame  # unique_id, ds, model columns with intervals
    fitted: pl.DataFrame  # unique_id, ds, y, model columns (in-sample)
    models: list[str]
    # model -> wide drivers of its forecasts (forecasting.models.drivers), for the models that were explained
    drivers: dict[str, pl.DataFrame] = field(default_factory=dict)


def interval_suffixes(levels: list[int], with_intervals: bool = True) -> list[str]:
    """The column suffixes of a model's mean and interval bounds: "", "-lo-80", "-hi-80", ..."""
    suffixes = [""]
    if with_intervals:
        suffixes += [f"-{side}-{lv}" for lv in levels for side in ("lo", "hi")]
    return suffixes


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


def calibration_periods(errors: pl.DataFrame, columns: list[str], last: int | None = None) -> pl.DataFrame:
    """The rows of the periods in which every series of `errors` has y and at least one of `columns` (only the
    `last` of those periods, if given).

    hierarchicalforecast's conformal sampler drops every period in which any series lacks y or a fit (its
    calibration set is the periods complete across the hierarchy), so passing only those periods gives the same
    intervals, without pivoting every series' whole in-sample history (25M rows at 1M series x 26 weeks)."""
    usable = errors.filter(pl.col("y").is_not_null() & pl.any_horizontal(pl.col(columns).is_not_null()))
    complete = usable.group_by("ds").len().filter(pl.col("len") == errors["unique_id"].n_unique())["ds"].sort()
    return errors.filter(pl.col("ds").is_in(complete.tail(last or complete.len()).implode()))
