"""Reorder point and safety stock per bottom series from the forecast's own daily quantiles.

The demand over a lead time of L days is a sum of L daily demands, whose quantiles are not the sums of the daily
quantiles (that would assume the days move together perfectly) nor those of independent days (a level error is
shared by every day of the lead time). So sample paths are drawn: each day's value by inverse CDF from that day's
published quantiles (forecasting.staffing.rules: linear between the interval bounds, normal tails beyond the widest),
the days joined by a Gaussian copula with equal correlation `day_correlation` (0: independent days, 1: the sum of the
daily quantiles, exactly). The reorder point for a cycle service level a is the a-quantile of the path sums rounded up
to whole units (P(demand <= ROP) >= a for integer demand); the safety stock is the ROP less the mean lead-time demand.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.stats import norm

from forecasting.data.hierarchy import Hierarchy
from forecasting.job.inventory import InventorySpec
from forecasting.job.schema import JobSpec
from forecasting.models.base import BaseForecasts
from forecasting.staffing.rules import draw_demand, quantile_grid

SERIES_PER_BLOCK = 500  # series drawn at once: block x days x samples doubles (500 x 28 x 2000 = 224 MB at most)
COLUMNS = [
    "unique_id",
    "lead_time",
    "service_level",
    "first_day",
    "last_day",
    "lead_time_demand_mean",
    "lead_time_demand_quantile",
    "reorder_point",
    "safety_stock",
]


def lead_times(members: pl.DataFrame, spec: InventorySpec, keys: list[str]) -> pl.DataFrame:
    """unique_id -> lead time: the value set for the key nearest the bottom among `keys` (sku before category), else
    the default. `members` has unique_id and the key columns."""
    out = pl.lit(spec.lead_time)
    for key in keys:  # top to bottom: each later key overrides the ones before it
        table = spec.lead_times.get(key)
        if table:
            mapped = pl.col(key).replace_strict(table, default=None, return_dtype=pl.Int64)
            out = pl.coalesce(mapped, out)
    return members.select("unique_id", out.cast(pl.Int64).alias("lead_time"))


def path_draws(
    forecast: pl.DataFrame, levels: list[int], samples: int, correlation: float, rng: np.random.Generator
) -> np.ndarray:
    """Sample paths of one block of series: `forecast` holds `days` rows per series (sorted by series, then ds) with
    mean and lo/hi columns; returns series x days x samples draws. Uniforms come from a Gaussian copula with equal
    correlation between the days of a path."""
    n = forecast["unique_id"].n_unique()
    days = forecast.height // n
    common = rng.standard_normal((n, 1, samples))
    own = rng.standard_normal((n, days, samples))
    z = np.sqrt(correlation) * common + np.sqrt(1.0 - correlation) * own
    u = np.clip(norm.cdf(z), 1e-12, 1 - 1e-12).reshape(n * days, samples)
    probs, values = quantile_grid(forecast, levels)
    return draw_demand(probs, values, u).reshape(n, days, samples)


def reorder_points(sums: np.ndarray, service_levels: list[float]) -> np.ndarray:
    """Per row of path sums (rows x samples): the ROP per service level (rows x levels), whole units."""
    q = np.quantile(sums, service_levels, axis=1).T
    return np.ceil(q - 1e-9), q


def inventory_quantities(
    forecast: pl.DataFrame, lead: pl.DataFrame, levels: list[int], spec: InventorySpec, seed: int
) -> pl.DataFrame:
    """The inventory table: per series and service level, the lead-time demand (mean and quantile), reorder point
    and safety stock over the first `lead_time` days of the forecast. `forecast` is one published forecast per
    series x day (unique_id, ds, mean, lo_*/hi_*); `lead` maps unique_id -> lead_time. Same inputs and seed, same
    table: series are drawn in id order, a block at a time."""
    rng = np.random.default_rng(seed)
    ranked = forecast.join(lead, on="unique_id").sort("unique_id", "ds")
    ranked = ranked.filter(pl.int_range(pl.len()).over("unique_id") < pl.col("lead_time"))
    parts = []
    for (lt,), group in sorted(ranked.group_by("lead_time"), key=lambda item: item[0][0]):
        ids = group["unique_id"].unique(maintain_order=True)
        for start in range(0, ids.len(), SERIES_PER_BLOCK):
            block = group.filter(pl.col("unique_id").is_in(ids.slice(start, SERIES_PER_BLOCK).implode()))
            if block.height != block["unique_id"].n_unique() * lt:
                raise ValueError(f"inventory: a lead time of {lt} days is beyond some series' forecast")
            draws = path_draws(block, levels, spec.samples, spec.day_correlation, rng)
            parts.append(_rows(block, lt, draws.sum(axis=1), spec.service_levels))
    if not parts:
        return pl.DataFrame(schema={c: pl.Float64 for c in COLUMNS})
    return pl.concat(parts).sort("unique_id", "service_level")


def _rows(block: pl.DataFrame, lead_time: int, sums: np.ndarray, service_levels: list[float]) -> pl.DataFrame:
    per_series = block.group_by("unique_id", maintain_order=True).agg(
        pl.col("ds").min().alias("first_day"),
        pl.col("ds").max().alias("last_day"),
        pl.col("mean").clip(lower_bound=0).sum().alias("lead_time_demand_mean"),
    )
    rop, q = reorder_points(sums, service_levels)
    frames = [
        per_series.with_columns(
            pl.lit(lead_time, dtype=pl.Int64).alias("lead_time"),
            pl.lit(level).alias("service_level"),
            pl.Series("lead_time_demand_quantile", q[:, i]),
            pl.Series("reorder_point", rop[:, i]),
        )
        for i, level in enumerate(service_levels)
    ]
    return (
        pl.concat(frames)
        .with_columns((pl.col("reorder_point") - pl.col("lead_time_demand_mean")).alias("safety_stock"))
        .select(COLUMNS)
    )


def for_job(hierarchy: Hierarchy, base: BaseForecasts, reconciled: pl.DataFrame, job: JobSpec) -> pl.DataFrame:
    """The run's inventory table: the published reconciled forecast of the job's inventory level (default: the
    bottom) -> reorder points per series, with each series' level and keys leading. Empty without `inventory`."""
    spec = job.inventory
    if spec is None:
        return pl.DataFrame()
    level = spec.level or hierarchy.bottom
    members = hierarchy.members.filter(pl.col("level") == level)
    published = base.plan.published_at(level)
    rows = reconciled.filter(
        pl.col("unique_id").is_in(members["unique_id"].implode()) & (pl.col("method") == published)
    )
    lead = lead_times(members, spec, job.hierarchy.columns)
    table = inventory_quantities(rows, lead, job.levels, spec, job.seed)
    keys = ["unique_id", "level", *job.hierarchy.columns]
    return members.select(keys).join(table, on="unique_id").with_columns(pl.lit(published).alias("method"))
