"""The drivers of Base, per series and period: the forecast that is reconciled, split into driver families in units.

Base is one model's forecast or a combination of several. A combination that is a weighted mean (Mean, the job's
named means, Weighted, Top2) is split into its members' parts, each weighed as the combination weighs it. A member
is split by:
- a LightGBM: its TreeSHAP drivers (forecasting.models.drivers);
- a statistical model, where the level has at most `MAX_DECOMPOSED` such series: statsforecast's MSTL on the
  series' history; the forecast = the last trend value (recent level) + the seasonal component of the same season
  position in the last cycle (season and calendar) + the rest (trend and rest: what the model adds beyond both);
- anything else (a Median, a model without a decomposition, MSTL on too short a history): one row
  `no decomposition: <model>` holding its whole part, so the rows always add up to Base.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from statsforecast.mstl import mstl

from forecasting.job.context import Plan
from forecasting.job.models import MEAN
from forecasting.job.schema import JobSpec
from forecasting.models import registry
from forecasting.models.drivers import RECENT_LEVEL, SEASON, value_columns
from forecasting.models.frames import wide_model_names

TREND = "trend and rest"
UNDECOMPOSED = "no decomposition: "
MAX_DECOMPOSED = 2000  # MSTL per series: a few ms each; beyond this many a level's statistical parts stay whole
KEYS = ["unique_id", "ds"]


def member_weights(
    forecasts: pl.DataFrame, choice: pl.DataFrame, levels_of: pl.DataFrame, job: JobSpec, plan: Plan
) -> pl.DataFrame:
    """unique_id, ds, member, weight: the models whose weighted sum is each row's Base (a single model: weight 1;
    Mean: the models that ran for the row, equally; a named combination: its members, equally; a fitted
    combination: the plan's weights at the series' level). A Median or unknown combination stays one member."""
    names = set(wide_model_names(forecasts, KEYS))
    run = [m for m in dict.fromkeys([*job.models.aggregate_models, *job.models.bottom_models]) if m in names]
    rows = forecasts.select(*KEYS).join(choice, on="unique_id", how="left").join(levels_of, on="unique_id", how="left")
    parts = []
    for model, group in rows.group_by("model"):
        model = model[0]
        keys = group.select(*KEYS, "level")
        if model == MEAN:
            present = forecasts.join(keys, on=KEYS).select(*KEYS, *run)
            long = present.unpivot(run, index=KEYS, variable_name="member").drop_nulls("value")
            parts.append(long.with_columns((1.0 / pl.len().over(KEYS)).alias("weight")).drop("value"))
        elif model in job.models.combinations:
            members = job.models.combinations[model]
            weights = pl.DataFrame({"member": members, "weight": [1.0 / len(members)] * len(members)})
            parts.append(keys.drop("level").join(weights, how="cross"))
        elif model in plan.weights:
            table = [(lv, m, w) for lv, ws in plan.weights[model].items() for m, w in ws.items()]
            weights = pl.DataFrame(table, schema=["level", "member", "weight"], orient="row")
            parts.append(keys.join(weights, on="level").drop("level"))
        else:
            parts.append(keys.drop("level").with_columns(pl.lit(model).alias("member"), pl.lit(1.0).alias("weight")))
    return pl.concat([p.select(*KEYS, "member", "weight") for p in parts])


def mstl_components(history: pl.DataFrame, season_length: int) -> tuple[float, np.ndarray] | None:
    """(last trend value, seasonal component of the last cycle) of one series' history (ds, y) from statsforecast's
    MSTL decomposition; None when MSTL cannot decompose it (no season, or under two full seasons of history).
    statsforecast's `mstl` is the decomposition `MSTL.fit` makes before it fits a trend model on the seasonally
    adjusted series, which is not needed here (that AutoETS fit was 95 % of this function's time)."""
    y = history.sort("ds")["y"].to_numpy().astype(float)
    if season_length < 2 or len(y) < 2 * season_length:
        return None
    fitted = mstl(x=y, period=[season_length])
    seasonal = np.asarray(fitted.filter(like="seasonal").sum(axis=1))
    return float(np.asarray(fitted["trend"])[-1]), seasonal[-season_length:]


def mstl_parts(components: tuple[float, np.ndarray], forecast: pl.DataFrame) -> pl.DataFrame:
    """ds, family, effect of one series' forecast (ds, value): the MSTL level, the season at the same position of
    the last cycle, and the rest."""
    level, last_cycle = components
    steps = np.arange(forecast.height)
    season = last_cycle[steps % len(last_cycle)]
    value = forecast["value"].to_numpy()
    return pl.DataFrame(
        {
            "ds": np.repeat(forecast["ds"].to_numpy(), 3),
            "family": [RECENT_LEVEL, SEASON, TREND] * forecast.height,
            "effect": np.column_stack([np.full(forecast.height, level), season, value - level - season]).ravel(),
        }
    ).with_columns(pl.col("ds").cast(forecast.schema["ds"]))


def member_parts(
    forecasts: pl.DataFrame,
    needed: pl.DataFrame,
    explained: dict[str, pl.DataFrame],
    history: pl.DataFrame,
    job: JobSpec,
) -> pl.DataFrame:
    """unique_id, ds, member, family, effect: each needed (unique_id, member) part split into families (MSTL once
    per series, shared by its statistical members)."""
    parts = []
    components: dict[str, tuple[float, np.ndarray] | None] = {}
    for member, group in needed.group_by("member"):
        member = member[0]
        ids = group["unique_id"].unique()
        rows = forecasts.filter(pl.col("unique_id").is_in(ids.implode())).select(*KEYS, pl.col(member).alias("value"))
        if member in explained:
            wide = explained[member].join(rows.select(KEYS), on=KEYS, how="semi")
            long = wide.unpivot(value_columns(wide), index=KEYS, variable_name="family", value_name="effect")
            long = long.drop_nulls("effect")
            parts.append(long.with_columns(pl.lit(member).alias("member")))
            continue
        whole = rows.with_columns(pl.lit(UNDECOMPOSED + member).alias("family")).rename({"value": "effect"})
        if ids.len() > MAX_DECOMPOSED or not registry.is_local(member):
            parts.append(whole.with_columns(pl.lit(member).alias("member")))
            continue
        histories = history.filter(pl.col("unique_id").is_in(ids.implode())).partition_by("unique_id", as_dict=True)
        for (uid,), series in rows.sort(KEYS).partition_by("unique_id", as_dict=True).items():
            if uid not in components:
                components[uid] = mstl_components(histories.get((uid,), history.clear()), job.season_length)
            found = components[uid]
            split = mstl_parts(found, series) if found is not None else None
            if split is None:
                family = pl.lit(UNDECOMPOSED + member).alias("family")
                split = series.select("ds", family, pl.col("value").alias("effect"))
            parts.append(split.with_columns(pl.lit(uid).alias("unique_id"), pl.lit(member).alias("member")))
    columns = [*KEYS, "member", "family", "effect"]
    return pl.concat([p.select(columns) for p in parts]) if parts else pl.DataFrame(schema=dict.fromkeys(columns))


def base_drivers(
    forecasts: pl.DataFrame,
    choice: pl.DataFrame,
    levels_of: pl.DataFrame,
    explained: dict[str, pl.DataFrame],
    history: pl.DataFrame,
    job: JobSpec,
    plan: Plan,
) -> pl.DataFrame:
    """unique_id, ds, family, effect: Base of every series split into families; per series and period the effects
    sum to Base (a test checks it to 1e-6)."""
    weights = member_weights(forecasts, choice, levels_of, job, plan)
    parts = member_parts(forecasts, weights.select("unique_id", "member").unique(), explained, history, job)
    return (
        parts.join(weights, on=[*KEYS, "member"])
        .group_by(*KEYS, "family")
        .agg((pl.col("effect") * pl.col("weight")).sum())
        .sort(*KEYS, "family")
    )
