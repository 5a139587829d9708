"""Backtest scores: every forecast row of every window scored per series, then summed up per level.

utilsforecast's `evaluate` gives MAE, RMSE, MASE, bias and coverage per series and window; RMSSE and the scaled
pinball loss use the M5 organizers' first-non-zero scales (forecasting.evaluate.metrics). The per-series table is kept
as well as the per-level one: a planner asks which warehouses or SKUs a model gets wrong, not only how wrong a level is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import polars as pl
from utilsforecast.evaluation import evaluate
from utilsforecast.losses import bias, coverage, mae, mase, rmse

from forecasting.evaluate import metrics as ev

METRIC_COLUMNS = [
    "level", "kind", "model", "mae", "rmse", "rmsse", "wrmsse", "mase", "bias",
    "coverage_80", "coverage_95", "spl", "wspl", "series", "windows",
]  # fmt: skip
SERIES_METRIC_COLUMNS = [
    "unique_id", "level", "kind", "model", "mae", "rmse", "rmsse", "mase", "bias",
    "coverage_80", "coverage_95", "spl", "mean_y", "windows",
]  # fmt: skip


WINDOW_METRIC_COLUMNS = [
    "level", "kind", "model", "cutoff", "mae", "rmse", "rmsse", "wrmsse", "mase", "bias",
    "coverage_80", "coverage_95", "spl", "wspl", "series",
]  # fmt: skip


@dataclass
class Scores:
    levels: pl.DataFrame  # METRIC_COLUMNS: per level and model, over series and windows
    series: pl.DataFrame  # SERIES_METRIC_COLUMNS: per series and model, over windows
    windows: pl.DataFrame  # WINDOW_METRIC_COLUMNS: per level, model and window (what nested choices read)


def scores(
    long: pl.DataFrame,
    by: str,
    train: pl.DataFrame,
    weigh: Callable[[pl.DataFrame], pl.DataFrame],
    kind: str,
    season_length: int = 1,
) -> Scores:
    """Per level and model, over series and windows, and per series and model, over windows: MAE, RMSE, RMSSE
    (M5's: scaled by the one-step naive error of the history before the cutoff from the series' first non-zero
    value), MASE (scaled by the seasonal naive error at lag `season_length`, fpp3's), bias (sum of errors / sum of
    actuals), 80/95 % coverage, scaled pinball loss over the 2.5/10/50/90/97.5 % quantiles; per level also the
    weighted WRMSSE and WSPL (weights from `weigh(history)`), averaged over windows."""
    rows, weighted = [], []
    for cutoff in sorted(long["cutoff"].unique().to_list()):
        history = train.filter(pl.col("ds") <= cutoff)
        # A series launched after the cutoff was no forecast anyone had then (its rows hold 0): not scored.
        window = long.filter(pl.col("cutoff") == cutoff).join(
            history.select("unique_id").unique(), on="unique_id", how="semi"
        )
        wide = _nixtla_wide(window, by)
        names = sorted(window[by].unique().to_list())
        per_series = evaluate(
            wide,
            metrics=[mae, rmse, partial(mase, seasonality=season_length), bias, coverage],
            models=names,
            train_df=history,
            level=[80, 95],
        )
        melted = per_series.unpivot(index=["unique_id", "metric"], variable_name=by, value_name="value")
        actuals = wide.select("unique_id", "ds", "y")
        scale = ev.m5_rmsse_scale(history)
        m5 = ev.rmsse_per_series(wide, actuals, scale, names).join(
            _spl(wide, actuals, history, names), on=["unique_id", "model"]
        )
        m5_long = m5.unpivot(index=["unique_id", "model"], variable_name="metric", value_name="value").rename(
            {"model": by}
        )
        # Pivoted per window: the long form of every window at once (series x models x windows x metrics rows) was
        # the backtest's peak memory at 30,490 SKUs and 12 methods.
        long_window = pl.concat([melted, m5_long.select(melted.columns)])
        wide_window = long_window.pivot(on="metric", index=["unique_id", by], values="value")
        rows.append(wide_window.with_columns(pl.lit(cutoff).alias("cutoff")))
        weighted.append(_weighted_scores(m5, weigh(history)).with_columns(pl.lit(cutoff).alias("cutoff")))
    per_series = pl.concat(rows, how="diagonal_relaxed").rename(
        {"coverage_level80": "coverage_80", "coverage_level95": "coverage_95"}
    )
    # Sorted before every mean: a float sum depends on the order of its terms, and joins and unique() do not keep
    # one, so reruns differed in the 14th digit.
    mean_y = (
        long.sort("unique_id", by, "cutoff", "ds")
        .group_by("unique_id", by, "cutoff")
        .agg(pl.col("y").mean().alias("mean_y"))
    )
    levels = long.select("unique_id", "level").unique()
    joined = (
        per_series.join(mean_y, on=["unique_id", by, "cutoff"])
        .join(levels, on="unique_id")
        .sort("unique_id", by, "cutoff")
    )
    per_level = _summed(joined, ["level", by]).rename({by: "model"})
    weighted_windows = pl.concat(weighted).sort("level", "model", "cutoff")
    weighted_mean = weighted_windows.group_by("level", "model").agg(pl.col("wrmsse").mean(), pl.col("wspl").mean())
    level_table = (
        per_level.join(weighted_mean, on=["level", "model"], how="left")
        .with_columns(pl.lit(kind).alias("kind"))
        .select(*METRIC_COLUMNS)
        .sort("level", "kind", "model")
    )
    series_table = (
        _summed(joined, ["unique_id", "level", by], with_mean_y=True)
        .rename({by: "model"})
        .with_columns(pl.lit(kind).alias("kind"))
        .select(*SERIES_METRIC_COLUMNS)
        .sort("level", "unique_id", "model")
    )
    window_table = (
        _summed(joined, ["level", by, "cutoff"])
        .drop("windows")
        .rename({by: "model"})
        .join(weighted_windows, on=["level", "model", "cutoff"], how="left")
        .with_columns(pl.lit(kind).alias("kind"))
        .select(*WINDOW_METRIC_COLUMNS)
        .sort("level", "kind", "model", "cutoff")
    )
    return Scores(level_table, series_table, window_table)


def _summed(joined: pl.DataFrame, by: list[str], with_mean_y: bool = False) -> pl.DataFrame:
    """Means over the (series and) windows in each group; bias relative to the actuals' sum (null where nothing was
    sold). Scores that are not finite (a series without non-zero history has no scale) are left out of their mean,
    so a series' RMSSE may average fewer windows than `windows` counts."""
    finite_mean = [pl.col(c).filter(pl.col(c).is_finite()).mean() for c in ("rmsse", "mase", "spl")]
    extra = [pl.col("mean_y").mean()] if with_mean_y else [pl.col("unique_id").n_unique().alias("series")]
    return joined.group_by(by).agg(
        pl.col("mae").mean(),
        pl.col("rmse").mean(),
        *finite_mean,
        pl.when(pl.col("mean_y").sum() > 0).then(pl.col("bias").sum() / pl.col("mean_y").sum()).alias("bias"),
        pl.col("coverage_80").mean(),
        pl.col("coverage_95").mean(),
        *extra,
        pl.col("cutoff").n_unique().alias("windows"),
    )


def _nixtla_wide(window: pl.DataFrame, by: str) -> pl.DataFrame:
    """Long rows of one window -> unique_id, ds, y, <model>, <model>-lo-80 ... as utilsforecast's metrics expect."""
    wide = window.select("unique_id", "ds", "y").unique().sort("unique_id", "ds")  # left joins keep this order
    for name in sorted(window[by].unique().to_list()):
        rename = {"mean": name} | {f"{side}_{lv}": f"{name}-{side}-{lv}" for lv in (80, 95) for side in ("lo", "hi")}
        part = window.filter(pl.col(by) == name).select("unique_id", "ds", *rename).rename(rename)
        wide = wide.join(part, on=["unique_id", "ds"], how="left")
    return wide


def _weighted_scores(per_series: pl.DataFrame, weights: pl.DataFrame) -> pl.DataFrame:
    """WRMSSE and WSPL per level and model, for the models run at that level. Series without a finite score (no
    non-zero history before the cutoff, so no scale) or without weight are left out and the level's weights
    renormalised over the rest, as M5 scored only series with sales."""
    finite = per_series.filter(pl.col("rmsse").is_finite() & pl.col("spl").is_finite())
    frames = []
    for model in finite["model"].unique().sort().to_list():
        scores = finite.filter(pl.col("model") == model)
        usable = weights.filter((pl.col("weight") > 0) & pl.col("unique_id").is_in(scores["unique_id"].implode()))
        usable = usable.with_columns(pl.col("weight") / pl.col("weight").sum().over("level"))
        frames.append(ev.wrmsse(scores, usable).join(ev.wspl(scores, usable), on=["level", "model"]))
    return pl.concat(frames)


def _spl(wide: pl.DataFrame, actuals: pl.DataFrame, history: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Scaled pinball loss per series over the quantiles the 80/95 % intervals and the point forecast give."""
    quantiles, taus = ev.intervals_to_quantiles(wide, names, [80, 95])
    return ev.scaled_pinball_loss(quantiles, actuals, ev.m5_spl_scale(history), taus, models=names)
