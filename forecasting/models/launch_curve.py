"""The launch models' forecasts of young series (forecasting.models.young routes them here).

- **LaunchCurve**: earlier launches in the same parent group say how sales at age a + h relate to the mean of their
  first a periods; the young series' mean so far times that ratio, intervals from the peers' own ratios' quantiles.
  A group with fewer than `MIN_PEERS` launches old enough uses every group's launches.
- **Flat**: the mean so far, repeated; intervals from Poisson quantiles of that mean.
- **LaunchLightGBM** (forecasting.models.launch_lightgbm) for the young bottom series when their static keys are given.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
from scipy.stats import poisson

from forecasting.job.schema import POLARS_FREQ, JobSpec
from forecasting.models.frames import LevelForecast
from forecasting.models.launch_lightgbm import LAUNCH_LIGHTGBM, launch_lightgbm_forecast, with_intervals

LAUNCH, FLAT = "LaunchCurve", "Flat"
MIN_PEERS = 10  # launches of the needed age a group must hold before its own curve is trusted over the pooled one


def _quantile_pairs(levels: list[int]) -> list[tuple[int, float, float]]:
    return [(lv, (1 - lv / 100) / 2, 1 - (1 - lv / 100) / 2) for lv in levels]


def launch_forecast(
    Y_bottom: pl.DataFrame,
    young: pl.DataFrame,
    groups: pl.DataFrame,
    job: JobSpec,
    max_age: int,
    keys: pl.DataFrame | None = None,
) -> LevelForecast:
    """LaunchCurve and Flat forecasts (with intervals) and one-step in-sample fits of the `young` series, and with
    `keys` (the bottom series' static parent keys, forecasting.models.launch_lightgbm) LaunchLightGBM's for the
    young bottom series.

    `Y_bottom`: every bottom series (the peers), `groups`: unique_id, group (the parent keys), `max_age`: the oldest
    age a young series can have (the routing's need - 1)."""
    H = job.horizon
    start = Y_bottom["ds"].min()
    aged = (
        Y_bottom.select("unique_id", "ds", "y")
        .sort("unique_id", "ds")
        .with_columns(
            pl.int_range(1, pl.len() + 1).over("unique_id").alias("age"),
            pl.col("ds").min().over("unique_id").alias("first"),
        )
        .with_columns((pl.col("y").cum_sum().over("unique_id") / pl.col("age")).alias("base"))
    )
    peers = aged.filter((pl.col("first") > start) & (pl.col("age") <= max_age + H)).join(groups, on="unique_id")
    bases = peers.filter(pl.col("age") <= max_age).select("unique_id", "group", pl.col("age").alias("a"), "base")
    pairs = pl.concat(
        [
            bases.join(
                peers.select("unique_id", (pl.col("age") - h).alias("a"), pl.col("y").alias("later")),
                on=["unique_id", "a"],
            ).with_columns(pl.lit(h, dtype=pl.Int32).alias("h"))
            for h in range(1, H + 1)
        ]
    ).with_columns((pl.col("later") / pl.col("base")).alias("ratio"))
    pairs_ = _quantile_pairs(job.levels)
    stats = [
        (pl.col("later").sum() / pl.col("base").sum()).alias("curve"),
        pl.len().alias("peers"),
        *[pl.col("ratio").quantile(q, "linear").alias(f"q_{q}") for _, lo, hi in pairs_ for q in (lo, hi)],
    ]
    own = pairs.group_by("group", "a", "h").agg(stats).filter(pl.col("peers") >= MIN_PEERS)
    pooled = pairs.group_by("a", "h").agg(stats).filter(pl.col("peers") >= MIN_PEERS)
    curve_columns = ["curve", *[f"q_{q}" for _, lo, hi in pairs_ for q in (lo, hi)]]

    target = aged.join(young.select("unique_id"), on="unique_id").join(groups, on="unique_id", how="left")
    last = target.group_by("unique_id", "group").agg(
        pl.col("age").max().alias("a"), pl.col("base").sort_by("age").last()
    )
    steps = future_steps(Y_bottom["ds"].max(), job).cast({"ds": Y_bottom.schema["ds"]})
    rows = _with_curve(last.join(steps, how="cross"), own, pooled, curve_columns)
    launch = [(pl.col("base") * pl.col("curve")).alias(LAUNCH)]
    flat = [pl.col("base").alias(FLAT)]
    base_np = rows["base"].to_numpy()
    for lv, lo, hi in pairs_:
        mean, flat_mean = pl.col("base") * pl.col("curve"), pl.col("base")
        launch += [
            pl.min_horizontal(pl.col("base") * pl.col(f"q_{lo}"), mean).alias(f"{LAUNCH}-lo-{lv}"),
            pl.max_horizontal(pl.col("base") * pl.col(f"q_{hi}"), mean).alias(f"{LAUNCH}-hi-{lv}"),
        ]
        flat += [
            pl.min_horizontal(pl.Series(poisson.ppf(lo, np.maximum(base_np, 1e-9))), flat_mean).alias(
                f"{FLAT}-lo-{lv}"
            ),
            pl.max_horizontal(pl.Series(poisson.ppf(hi, np.maximum(base_np, 1e-9))), flat_mean).alias(
                f"{FLAT}-hi-{lv}"
            ),
        ]
    forecasts = rows.select("unique_id", "ds", *launch, *flat).sort("unique_id", "ds")
    # A series whose curve is missing for any step of the horizon is served by Flat, stated per series.
    fitted = _in_sample(target, own, pooled, curve_columns)
    if keys is None:
        return LevelForecast(forecasts, fitted, [LAUNCH, FLAT])
    bottom = Y_bottom.join(keys.select("unique_id"), on="unique_id")
    gbm, gbm_fit = launch_lightgbm_forecast(bottom, young["unique_id"], keys, job)
    forecasts = with_intervals(forecasts.join(gbm, on=["unique_id", "ds"], how="left"), LAUNCH, job.levels)
    fitted = fitted.join(gbm_fit, on=["unique_id", "ds"], how="left")
    return LevelForecast(forecasts, fitted, [LAUNCH, FLAT, LAUNCH_LIGHTGBM])


def future_steps(last: date, job: JobSpec) -> pl.DataFrame:
    """h (1..horizon) and the period it falls in after `last`."""
    unit = POLARS_FREQ[job.freq]
    count, name = int(unit.rstrip("dwmoq")), unit.lstrip("0123456789")
    future = [pl.select(pl.lit(last).dt.offset_by(f"{count * h}{name}")).item() for h in range(1, job.horizon + 1)]
    return pl.DataFrame({"h": list(range(1, job.horizon + 1)), "ds": future}).cast({"h": pl.Int32})


def _with_curve(rows: pl.DataFrame, own: pl.DataFrame, pooled: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Attach the group's curve where it has enough peers, else the pooled one (null where neither has)."""
    rows = rows.join(own.drop("peers"), on=["group", "a", "h"], how="left")
    rows = rows.join(pooled.drop("peers"), on=["a", "h"], how="left", suffix="_pooled")
    use_own = pl.col("curve").is_not_null()
    return rows.with_columns(
        pl.when(use_own).then(pl.col(c)).otherwise(pl.col(f"{c}_pooled")).alias(c) for c in columns
    ).drop([f"{c}_pooled" for c in columns])


def _in_sample(target: pl.DataFrame, own: pl.DataFrame, pooled: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """One-step in-sample fits of the young series: age k from the mean of ages 1..k-1 and the curve (a, h) =
    (k-1, 1); Flat: that mean. The launch period itself is no model's error: its fit is its value."""
    previous = target.sort("unique_id", "ds").select(
        "unique_id",
        "ds",
        "y",
        "group",
        (pl.col("age") - 1).alias("a"),
        pl.col("base").shift(1).over("unique_id").alias("base"),
    )
    fits = _with_curve(previous.with_columns(pl.lit(1, dtype=pl.Int32).alias("h")), own, pooled, columns)
    first = pl.col("a") == 0
    return fits.select(
        "unique_id",
        "ds",
        "y",
        pl.when(first).then(pl.col("y")).otherwise(pl.col("base") * pl.col("curve").fill_null(1.0)).alias(LAUNCH),
        pl.when(first).then(pl.col("y")).otherwise(pl.col("base")).alias(FLAT),
    ).sort("unique_id", "ds")
