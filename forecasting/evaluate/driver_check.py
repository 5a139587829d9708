"""Are the event drivers real? On the backtest's scored (nested) windows, the units an event family adds to the
LightGBM forecast on that event's days, against the uplift that was realised: the actuals minus the forecast without
the event (the forecast less the family's effect). Per event value (type or name, as the job's event columns hold).

Each window refits the job's LightGBM on the history before its cutoff, exactly as the nightly run would on that
date (same setup, features and target transforms; the conformal calibration, which moves no point forecast, is
left out) and explains its forecast (forecasting.models.drivers). The backtest publishes the table as
`driver_check.parquet`; the report says which events have the wrong sign on average.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from forecasting.data import features, trading_days, transforms
from forecasting.data.hierarchy import Hierarchy
from forecasting.job.models import LIGHTGBM
from forecasting.job.schema import JobSpec
from forecasting.models import drivers
from forecasting.models.inputs import model_inputs
from forecasting.models.lightgbm import lightgbm_setups, static_features, weight_column

EVENT = "event "


def event_days(calendar: pl.DataFrame) -> pl.DataFrame:
    """ds, family: the periods on which each event value happens (its `<column>=<value>` count above 0)."""
    columns = [c for c in calendar.columns if "=" in c]
    if not columns:
        return pl.DataFrame(schema={"ds": calendar.schema["ds"], "family": pl.String})
    long = calendar.select("ds", *columns).unpivot(columns, index="ds", variable_name="column")
    return (
        long.filter(pl.col("value") > 0)
        .select(
            "ds", (pl.lit(EVENT) + pl.col("column").str.split_exact("=", 1).struct.field("field_1")).alias("family")
        )
        .unique()
    )


def _window(
    hierarchy: Hierarchy, prices: pl.DataFrame | None, calendar: pl.DataFrame, job: JobSpec, cutoff: date
) -> pl.DataFrame:
    """unique_id, ds, forecast, then one column per family: the explained LightGBM forecast from `cutoff`."""
    out = []
    for aggregate, Y in zip((True, False), model_inputs(hierarchy, job), strict=True):
        Y = Y.filter(pl.col("ds") <= cutoff)
        if Y.is_empty() or LIGHTGBM not in (job.models.aggregate_models if aggregate else job.models.bottom_models):
            continue
        members = hierarchy.members.filter(pl.col("unique_id").is_in(Y["unique_id"].unique().implode()))
        exog = features.exogenous(members, prices, calendar, job, bottom=not aggregate)
        parts = []
        for block, (fcst, train, _) in lightgbm_setups(Y, job, exog, aggregate):
            fcst.fit(train, static_features=static_features(job), weight_col=weight_column(train))
            X_df = None
            if exog is not None:
                X_df = fcst.make_future_dataframe(job.horizon).join(exog, on=["unique_id", "ds"], how="left")
            capture = drivers.FeatureCapture()
            predicted = fcst.predict(h=job.horizon, X_df=X_df, before_predict_callback=capture)
            wide = drivers.explain_forecast(fcst, LIGHTGBM, capture, predicted, job)
            wide = wide.with_columns(pl.sum_horizontal(drivers.value_columns(wide)).alias("__forecast"))
            step = pl.col("ds").rank("ordinal").over("unique_id")
            parts.append(wide.filter(step.is_between(block.first, block.last)))
        out.append(trading_days.in_units(pl.concat(parts, how="diagonal_relaxed"), job, aggregate))
    if not out:
        return pl.DataFrame()
    frame = pl.concat(out, how="diagonal_relaxed")
    return transforms.zero_closed_days(frame, job.closed_periods)


def scored_cutoffs(reconciled: pl.DataFrame, job: JobSpec) -> list[date]:
    """The cutoffs of a backtest's scored (nested) windows."""
    cutoffs = sorted(reconciled["cutoff"].unique().to_list())
    return cutoffs[-job.backtest.scored_windows(len(cutoffs)) :]


def event_check(
    hierarchy: Hierarchy, prices: pl.DataFrame | None, calendar: pl.DataFrame | None, job: JobSpec, cutoffs: list[date]
) -> pl.DataFrame:
    """family, windows, event_rows, mean_effect, mean_realised, same_sign, wrong_sign: per event value, over the
    series and event days of the windows from `cutoffs` (empty without events or a LightGBM)."""
    schema = {"family": pl.String, "windows": pl.UInt32, "event_rows": pl.UInt32, "mean_effect": pl.Float64,
              "mean_realised": pl.Float64, "same_sign": pl.Float64, "wrong_sign": pl.Boolean}  # fmt: skip
    runs_lightgbm = LIGHTGBM in {*job.models.aggregate_models, *job.models.bottom_models}
    if calendar is None or not job.drivers or not runs_lightgbm:
        return pl.DataFrame(schema=schema)
    days = event_days(calendar)
    rows = []
    for cutoff in cutoffs:
        wide = _window(hierarchy, prices, calendar, job, cutoff) if not days.is_empty() else pl.DataFrame()
        families = [c for c in wide.columns if c.startswith(EVENT)]
        if not families:
            continue
        long = wide.unpivot(
            families, index=["unique_id", "ds", "__forecast"], variable_name="family", value_name="effect"
        )
        on_day = long.join(days, on=["ds", "family"]).drop_nulls("effect")
        rows.append(on_day.with_columns(pl.lit(cutoff).alias("cutoff")))
    if not rows:
        return pl.DataFrame(schema=schema)
    checked = pl.concat(rows).join(hierarchy.Y_df.select("unique_id", "ds", "y"), on=["unique_id", "ds"])
    realised = pl.col("y") - (pl.col("__forecast") - pl.col("effect"))
    return (
        checked.with_columns(realised.alias("realised"))
        .group_by("family")
        .agg(
            pl.col("cutoff").n_unique().alias("windows"),
            pl.len().alias("event_rows"),
            pl.col("effect").mean().alias("mean_effect"),
            pl.col("realised").mean().alias("mean_realised"),
            (pl.col("effect").sign() == pl.col("realised").sign()).mean().alias("same_sign"),
        )
        .with_columns(((pl.col("mean_effect").sign() * pl.col("mean_realised").sign()) < 0).alias("wrong_sign"))
        .sort("family")
        .cast(schema)
    )


def wrong_signs(check: pl.DataFrame) -> list[str]:
    """The report's words for each event whose average effect has the wrong sign."""
    return [
        f"Backtest: the {family} driver adds {effect:+.1f} units on average on its days, but its realised uplift "
        f"(actuals minus the forecast without it) was {realised:+.1f} over {rows} series-days in {windows} windows: "
        "the wrong sign."
        for family, effect, realised, rows, windows in check.filter(pl.col("wrong_sign"))
        .select("family", "mean_effect", "mean_realised", "event_rows", "windows")
        .rows()
    ]
