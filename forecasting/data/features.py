"""Exogenous features for the global LightGBM models, per series and period, for the history and the horizon.

Prices exist per bottom series (sku x warehouse); calendar features (events, SNAP days) per period, and keyed
flags per value of a hierarchy key (a state's SNAP days). A series that does not carry the key (the total) gets the
mean over the key's values: the share of states with SNAP that day.
"""

from __future__ import annotations

import polars as pl

from forecasting.data.transforms import closed_mask
from forecasting.job.schema import JobSpec


def price_features(prices: pl.DataFrame, bottom_members: pl.DataFrame) -> pl.DataFrame:
    """Price, its change on the previous period and its ratio to the series' 12-period mean, keyed by unique_id.
    `prices` holds the keys it is set by (e.g. sku, warehouse), ds and price; `bottom_members` the bottom series."""
    keys = [c for c in prices.columns if c not in ("ds", "price")]
    keyed = bottom_members.select("unique_id", *keys)
    return (
        prices.join(keyed, on=keys, how="inner")
        .sort("unique_id", "ds")
        .with_columns(pl.col("price").forward_fill().over("unique_id"))
        .with_columns(
            (pl.col("price") / pl.col("price").shift(1).over("unique_id")).alias("price_change"),
            (pl.col("price") / pl.col("price").rolling_mean(12, min_samples=1).over("unique_id")).alias("price_ratio"),
        )
        .select("unique_id", "ds", "price", "price_change", "price_ratio")
    )


def calendar_features(calendar: pl.DataFrame, members: pl.DataFrame, job: JobSpec) -> pl.DataFrame:
    """unique_id, ds, one column per calendar feature: the period's counts, and each keyed flag resolved to the
    series' own key value (or the mean over values when the series' level does not group by that key)."""
    spec = job.source.calendar_features
    calendar = with_distances(calendar, job)
    keyed = spec.keyed_flags if spec is not None else {}
    keyed_columns = {f"{name}@{value}" for name, flag in keyed.items() for value in flag.columns}
    shared = [c for c in calendar.columns if c != "ds" and c not in keyed_columns]
    frame = members.select("unique_id", *{flag.key for flag in keyed.values()}).join(calendar, how="cross")
    resolved = []
    for name, flag in keyed.items():
        own = pl.lit(None, dtype=pl.Float64)
        for value in flag.columns:
            own = pl.when(pl.col(flag.key) == value).then(pl.col(f"{name}@{value}")).otherwise(own)
        share = pl.mean_horizontal([pl.col(f"{name}@{value}") for value in flag.columns])
        resolved.append(pl.when(pl.col(flag.key).is_null()).then(share).otherwise(own).alias(name))
    return frame.select("unique_id", "ds", *shared, *resolved).sort("unique_id", "ds")


MAX_TYPES = 10  # event columns with at most this many values (event types) get a distance pair per value


def with_distances(calendar: pl.DataFrame, job: JobSpec) -> pl.DataFrame:
    """Add days to the next / since the last event (any, and per event type) and closed day, capped.

    Sales build up before a holiday and dip after it, and the day of the event alone cannot say so; the calendar
    is known ahead, so these are known for the horizon too. Off unless the job's LightGBM sets the caps."""
    spec = job.models.lightgbm
    calendar = calendar.sort("ds")
    parts: dict[str, pl.Expr] = {}
    if spec.event_distance:
        events = job.source.calendar_features.events if job.source.calendar_features is not None else []
        groups = {"any_event": [c for c in calendar.columns if c.split("=")[0] in events]}
        for column in events:
            values = [c for c in calendar.columns if c.startswith(f"{column}=")]
            if len(values) <= MAX_TYPES:
                groups |= {c: [c] for c in values}
        for name, columns in groups.items():
            if columns:
                parts |= _distance_pair(name, pl.any_horizontal(pl.col(c) > 0 for c in columns), spec.event_distance)
    if spec.closed_day_distance and job.closed_periods:
        closed = closed_mask(pl.col("ds"), job.closed_periods)
        parts |= _distance_pair("closed", closed, spec.closed_day_distance)
    return calendar.with_columns(expr.alias(name) for name, expr in parts.items()) if parts else calendar


def _distance_pair(name: str, happens: pl.Expr, cap: int) -> dict[str, pl.Expr]:
    on_day = pl.when(happens).then(pl.col("ds"))
    days_to = (on_day.backward_fill() - pl.col("ds")).dt.total_days()
    days_since = (pl.col("ds") - on_day.forward_fill()).dt.total_days()
    return {
        f"days_to_{name}": days_to.clip(upper_bound=cap).fill_null(cap).cast(pl.Float64),
        f"days_since_{name}": days_since.clip(upper_bound=cap).fill_null(cap).cast(pl.Float64),
    }


def exogenous(
    members: pl.DataFrame,
    prices: pl.DataFrame | None,
    calendar: pl.DataFrame | None,
    job: JobSpec,
    bottom: bool,
) -> pl.DataFrame | None:
    """The dynamic features of the given series (`members`: unique_id, level, keys): prices at the bottom level,
    calendar features everywhere; None when there are none."""
    parts = []
    if bottom and prices is not None:
        parts.append(price_features(prices, members))
    if calendar is not None:
        parts.append(calendar_features(calendar, members, job))
    if not parts:
        return None
    out = parts[0]
    for part in parts[1:]:
        out = out.join(part, on=["unique_id", "ds"], how="full", coalesce=True)
    return out.sort("unique_id", "ds")
