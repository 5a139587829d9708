"""M5-style accuracy metrics: RMSSE / WRMSSE and the scaled pinball loss (SPL), polars in and out.

The M5 organizers scale every series by its own in-sample one-step error, measured only from the series' first
non-zero value: zeros before a product is stocked are not demand and would shrink the scale. utilsforecast's
``mse`` / ``mqloss`` supply the forecast-side errors; the trimmed scales and the weighting are written here.
Ids follow the platform's paths ("total", "total/CA", "total/CA/CA_1", "total/CA/CA_1/FOODS_1_001").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
from hierarchicalforecast.utils import SMatrix
from utilsforecast.losses import mqloss, mse

KEY = ["unique_id", "ds"]

# M5 level -> platform level name. Levels 4-11 (category, department, item and their crossings) have no platform
# series; pass your own `levels` / `id_map` to m5_official_weights if a hierarchy has them.
M5_PLATFORM_LEVELS: dict[str, str] = {"Level1": "total", "Level2": "region", "Level3": "warehouse", "Level12": "sku"}


def _from_first_nonzero() -> pl.Expr:
    """y restricted to the history from the series' first non-zero value on (use inside a per-series agg)."""
    return pl.col("y").filter(pl.col("y").ne(0).cum_sum() > 0)


def _step_scale(history: pl.DataFrame, squared: bool) -> pl.DataFrame:
    step = _from_first_nonzero().diff()
    step = step.pow(2) if squared else step.abs()
    return history.sort(KEY).group_by("unique_id", maintain_order=True).agg(step.mean().cast(pl.Float64).alias("scale"))


def m5_rmsse_scale(history: pl.DataFrame) -> pl.DataFrame:
    """RMSSE denominator per series: mean (y_t - y_{t-1})^2 from the first non-zero value, as in the M5 evaluator.

    One row per unique_id of `history` (unique_id, ds, y); scale is null when fewer than two values remain
    (all-zero series), so such series surface as null RMSSE instead of silently vanishing.
    """
    return _step_scale(history, squared=True)


def m5_spl_scale(history: pl.DataFrame) -> pl.DataFrame:
    """SPL denominator per series: mean |y_t - y_{t-1}| from the first non-zero value (M5 Uncertainty)."""
    return _step_scale(history, squared=False)


def _with_actuals(forecasts: pl.DataFrame, actuals: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """Forecast rows joined to their actuals; a forecast without an actual is an error, not a dropped row."""
    df = forecasts.select(*KEY, *columns).join(actuals.select(*KEY, "y"), on=KEY, how="inner")
    if df.height != forecasts.height:
        raise ValueError(f"{forecasts.height - df.height} forecast rows have no actual (unique_id, ds) match")
    return df


def _per_model(wide: pl.DataFrame, models: Sequence[str], scale: pl.DataFrame, value: str, root: bool) -> pl.DataFrame:
    """utilsforecast's wide per-series losses -> long (unique_id, model, value) divided by the series' scale."""
    ratio = pl.col("loss") / pl.col("scale")
    return (
        wide.unpivot(index="unique_id", on=list(models), variable_name="model", value_name="loss")
        .join(scale.select("unique_id", "scale"), on="unique_id", how="left")
        .select("unique_id", "model", (ratio.sqrt() if root else ratio).alias(value))
        .sort("unique_id", "model")
    )


def rmsse_per_series(
    forecasts: pl.DataFrame, actuals: pl.DataFrame, scale: pl.DataFrame, models: Sequence[str]
) -> pl.DataFrame:
    """RMSSE = sqrt(mean_h (y - yhat)^2 / scale) per unique_id and model; returns unique_id, model, rmsse.

    `forecasts` is a Nixtla wide frame (unique_id, ds, <models>), `actuals` has unique_id, ds, y and `scale` comes
    from m5_rmsse_scale. The squared errors are utilsforecast's ``mse``.
    """
    wide = mse(_with_actuals(forecasts, actuals, models), models=list(models))
    return _per_model(wide, models, scale, "rmsse", root=True)


def _weighted(per_series: pl.DataFrame, weights: pl.DataFrame, value: str, out: str) -> pl.DataFrame:
    """sum_i w_i * value_i per level and model; refuses to score a level with a weighted series missing."""
    expected = weights.group_by("level").agg(pl.len().alias("expected"))
    res = (
        weights.select("unique_id", "level", "weight")
        .join(per_series.select("unique_id", "model", value), on="unique_id", how="inner")
        .sort("unique_id")  # the join keeps no row order, and the sum below depends on it (reruns: 1e-16)
        .group_by("level", "model")
        .agg(
            (pl.col("weight") * pl.col(value)).sum().alias(out),
            pl.len().alias("n"),
            pl.col(value).is_finite().fill_null(False).not_().sum().alias("not_finite"),
        )
        .join(expected, on="level", how="right")
    )
    bad = res.filter(pl.col("n").is_null() | (pl.col("n") != pl.col("expected")) | (pl.col("not_finite") > 0))
    if bad.height:
        raise ValueError(
            f"a weighted series lacks a finite score at (level, model) {bad.select('level', 'model').rows()}"
        )
    return res.select("level", "model", out).sort("level", "model")


def wrmsse(per_series_rmsse: pl.DataFrame, weights: pl.DataFrame) -> pl.DataFrame:
    """WRMSSE per level and model = sum_i weight_i * RMSSE_i; returns level, model, wrmsse.

    `weights` (unique_id, level, weight) should sum to 1 within each level (m5_official_weights or
    dollar_sales_weights). Every weighted series must have an RMSSE, else a ValueError: a silently missing series
    would understate the error.
    """
    return _weighted(per_series_rmsse, weights, "rmsse", "wrmsse")


def wspl(per_series_spl: pl.DataFrame, weights: pl.DataFrame) -> pl.DataFrame:
    """Weighted SPL per level and model (M5 Uncertainty uses the WRMSSE weights); returns level, model, wspl."""
    return _weighted(per_series_spl, weights, "spl", "wspl")


def m5_platform_id(level_id: str, agg1: str, agg2: str) -> str | None:
    """Official M5 weight row -> platform unique_id; None for levels the platform lacks.

    Level1 'Total' -> "total"; Level2 state 'CA' -> "total/CA"; Level3 store 'CA_1' -> "total/CA/CA_1";
    Level12 (Agg_Level_1 item, Agg_Level_2 store) -> "total/CA/CA_1/FOODS_1_001". A store's state is the part of the
    store id before '_' (CA_1 -> CA), as in M5.
    """
    if level_id == "Level1":
        return "total"
    if level_id == "Level2":
        return f"total/{agg1}"
    if level_id == "Level3":
        return f"total/{agg1.split('_')[0]}/{agg1}"
    if level_id == "Level12":
        return f"total/{agg2.split('_')[0]}/{agg2}/{agg1}"
    return None


def m5_official_weights(
    path: str | Path,
    id_map: Callable[[str, str, str], str | None] | Mapping[tuple[str, str, str], str] = m5_platform_id,
    levels: Mapping[str, str] = M5_PLATFORM_LEVELS,
) -> pl.DataFrame:
    """The organizers' WRMSSE weights (weights_evaluation) as unique_id, level, weight.

    Keeps the M5 levels in `levels` (M5 Level_id -> name written to `level`). `id_map` turns (Level_id,
    Agg_Level_1, Agg_Level_2) into a unique_id: a function or a dict keyed by that tuple. Rows it maps to None
    are dropped and the rest are NOT renormalised, so a partial mapping shows up as weights summing below 1.
    """
    raw = pl.read_parquet(path).filter(pl.col("Level_id").is_in(list(levels)))
    lookup = (lambda *key: id_map.get(key)) if isinstance(id_map, Mapping) else id_map
    ids = [lookup(lv, a1, a2) for lv, a1, a2 in raw.select("Level_id", "Agg_Level_1", "Agg_Level_2").iter_rows()]
    out = (
        raw.with_columns(pl.Series("unique_id", ids, dtype=pl.String))
        .filter(pl.col("unique_id").is_not_null())
        .select("unique_id", pl.col("Level_id").replace_strict(dict(levels)).alias("level"), "weight")
    )
    if out["unique_id"].is_duplicated().any():
        raise ValueError("id_map sends two M5 series to the same unique_id")
    return out


def sales_weights(
    history: pl.DataFrame, S: SMatrix, members: pl.DataFrame, last_n: int, prices: pl.DataFrame | None = None
) -> pl.DataFrame:
    """WRMSSE weights from recent sales when no official weights exist; returns unique_id, level, weight.

    Bottom series: sum of y * price (dollar sales, as the M5 organizers weighed) over the last `last_n` periods
    (distinct ds) of `history` (unique_id, ds, y), with `prices` (unique_id, ds, price); a period without a price
    counts as no sales (M5: no price = not on the shelf). Without prices, unit sales. Every other series gets the
    sales of the bottom series under it through the summing matrix `S`, so trees and grouped structures alike work.
    `members` (unique_id, level) names the level of each series; weights sum to 1 within each level.
    """
    window = history.select(pl.col("ds").unique().sort().tail(last_n))
    recent = history.join(window, on="ds")
    value = pl.col("y").cast(pl.Float64)
    if prices is not None:
        recent = recent.join(prices.select(*KEY, "price"), on=KEY, how="left")
        value = value * pl.col("price").cast(pl.Float64).fill_null(0.0)
    # Sorted: a join keeps no row order, and a float sum depends on it (reruns differed in the 16th digit).
    bottom = recent.sort("unique_id", "ds").group_by("unique_id").agg(value.sum().alias("sales"))
    order = pl.DataFrame({"unique_id": S.col_labels.astype(str)})
    vector = order.join(bottom, on="unique_id", how="left")["sales"].fill_null(0.0).to_numpy()
    totals = pl.DataFrame({"unique_id": S.row_labels.astype(str), "sales": S.to_csr() @ vector})
    return (
        members.select("unique_id", "level")
        .join(totals, on="unique_id", how="left")
        .select("unique_id", "level", (pl.col("sales") / pl.col("sales").sum().over("level")).alias("weight"))
        .sort("level", "unique_id")
    )


def quantile_col(model: str, tau: float) -> str:
    """Column holding `model`'s tau-quantile forecast: "<model>-q-<tau>" (e.g. "AutoETS-q-0.025")."""
    return f"{model}-q-{tau:g}"


def interval_quantiles(level: int | float) -> tuple[float, float]:
    """Nixtla interval level -> (lo, hi) quantiles: 80 -> (0.1, 0.9), 95 -> (0.025, 0.975)."""
    return (100 - level) / 200, (100 + level) / 200


def intervals_to_quantiles(
    forecasts: pl.DataFrame, models: Sequence[str], levels: Sequence[int | float], median_from_point: bool = True
) -> tuple[pl.DataFrame, list[float]]:
    """Nixtla interval columns (<model>-lo-80, <model>-hi-80, ...) -> quantile columns; returns (frame, quantiles).

    <model>-lo-L is the (100-L)/200 quantile, <model>-hi-L the (100+L)/200 one. With `median_from_point` the point
    column <model> is used as the 0.5 quantile: exact for symmetric intervals, an approximation otherwise.
    """
    taus: dict[float, str] = {}
    for lv in levels:
        lo, hi = interval_quantiles(lv)
        taus |= {lo: f"-lo-{lv}", hi: f"-hi-{lv}"}
    if median_from_point:
        taus[0.5] = ""
    exprs = [pl.col(f"{m}{suffix}").alias(quantile_col(m, tau)) for m in models for tau, suffix in sorted(taus.items())]
    return forecasts.select(*KEY, *exprs), sorted(taus)


def scaled_pinball_loss(
    quantile_forecasts: pl.DataFrame,
    actuals: pl.DataFrame,
    scale_mae: pl.DataFrame,
    quantiles: Sequence[float],
    models: Sequence[str] | None = None,
) -> pl.DataFrame:
    """M5 Uncertainty SPL per series and model: mean over quantiles of mean_h pinball_tau(y, q) / scale_mae.

    Quantile columns are named by quantile_col (see intervals_to_quantiles); `models` defaults to every model
    having a column for the first quantile. `scale_mae` comes from m5_spl_scale. The pinball part is utilsforecast's
    ``mqloss``; returns unique_id, model, spl.
    """
    taus = sorted(quantiles)
    if models is None:
        suffix = quantile_col("", taus[0])
        models = [c[: -len(suffix)] for c in quantile_forecasts.columns if c.endswith(suffix)]
    cols = {m: [quantile_col(m, t) for t in taus] for m in models}
    df = _with_actuals(quantile_forecasts, actuals, [c for m in models for c in cols[m]])
    wide = mqloss(df, models=cols, quantiles=np.array(taus))
    return _per_model(wide, models, scale_mae, "spl", root=False)
