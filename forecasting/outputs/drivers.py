"""drivers.parquet: what drives each published forecast, in units, per series, period and driver family.

Two bases per series (column `basis`):
- `hierarchy`: the bottom series' Base drivers (forecasting.models.base_drivers) plus a `reconciliation` row (the
  published reconciled forecast minus Base), summed up the hierarchy by the key columns. At every series and
  period the rows sum to the published forecast, and each family's effects of the children add up to the parent's.
  At a level whose published forecast is not the sum of its children (a plan that falls back to Base there), the
  difference sits in that level's `reconciliation` row: the only row that does not add up, by design.
- `own model`: levels above the bottom, their own Base model split the same way (an aggregate LightGBM's TreeSHAP,
  MSTL components of a statistical model, or `no decomposition`); these rows sum to that level's Base.
`share` is the effect over the forecast the rows sum to (null where that forecast is 0).
"""

from __future__ import annotations

import polars as pl

from forecasting.data import hierarchy as hier
from forecasting.job.models import BASE
from forecasting.job.schema import JobSpec
from forecasting.models.base import BaseForecasts
from forecasting.outputs.tables import published_expression, series_columns

RECONCILIATION = "reconciliation"
HIERARCHY, OWN = "hierarchy", "own model"
KEYS = ["unique_id", "ds"]


def published_means(hierarchy: hier.Hierarchy, base: BaseForecasts, reconciled: pl.DataFrame) -> pl.DataFrame:
    """unique_id, ds, mean of the published forecast of every series."""
    levels = hierarchy.members.select("unique_id", "level")
    return reconciled.join(levels, on="unique_id").filter(published_expression(base.plan)).select(*KEYS, "mean")


def hierarchy_drivers(
    hierarchy: hier.Hierarchy, base: BaseForecasts, published: pl.DataFrame, job: JobSpec
) -> pl.DataFrame:
    """unique_id, ds, family, effect at every level: the bottom series' drivers with their reconciliation row,
    summed to each series above by its key columns, plus that series' own incoherence in `reconciliation`."""
    assert base.drivers is not None
    members = hierarchy.members
    bottom = members.filter(pl.col("level") == job.hierarchy.bottom)
    ids = bottom.select("unique_id")
    adjustment = (
        published.join(ids, on="unique_id")
        .join(base.forecasts.select(*KEYS, BASE), on=KEYS, how="left")
        .select(*KEYS, pl.lit(RECONCILIATION).alias("family"), (pl.col("mean") - pl.col(BASE)).alias("effect"))
    )
    leaves = pl.concat([base.drivers.join(ids, on="unique_id"), adjustment])
    parts = [leaves]
    for level, keys in job.hierarchy.levels.items():
        if level == job.hierarchy.bottom:
            continue
        ancestors = members.filter(pl.col("level") == level).select(pl.col("unique_id").alias("parent"), *keys)
        children = bottom.select("unique_id", *keys)
        link = children.join(ancestors, on=keys, how="inner") if keys else children.join(ancestors, how="cross")
        summed = (
            leaves.join(link.select("unique_id", "parent"), on="unique_id")
            .group_by("parent", "ds", "family")
            .agg(pl.col("effect").sum())
            .rename({"parent": "unique_id"})
        )
        totals = summed.group_by(KEYS).agg(pl.col("effect").sum().alias("__sum"))
        incoherence = (
            published.join(ancestors.select(pl.col("parent").alias("unique_id")), on="unique_id")
            .join(totals, on=KEYS, how="left")
            .select(
                *KEYS,
                pl.lit(RECONCILIATION).alias("family"),
                (pl.col("mean") - pl.col("__sum").fill_null(0.0)).alias("effect"),
            )
        )
        parts.append(
            pl.concat([summed.select(leaves.columns), incoherence])
            .group_by(KEYS + ["family"])
            .agg(pl.col("effect").sum())
            .select(leaves.columns)
        )
    return pl.concat(parts)


def drivers_table(
    hierarchy: hier.Hierarchy, base: BaseForecasts, reconciled: pl.DataFrame, job: JobSpec
) -> pl.DataFrame:
    """The published drivers table (module docstring): level, unique_id, keys, ds, basis, model, family, effect,
    share."""
    published = published_means(hierarchy, base, reconciled)
    assert base.drivers is not None
    above = hierarchy.members.filter(pl.col("level") != job.hierarchy.bottom).select("unique_id")
    own = base.drivers.join(above, on="unique_id").with_columns(pl.lit(OWN).alias("basis"))
    summed = hierarchy_drivers(hierarchy, base, published, job).with_columns(pl.lit(HIERARCHY).alias("basis"))
    rows = pl.concat([summed, own.select(summed.columns)])
    totals = pl.col("effect").sum().over("basis", *KEYS)
    rows = rows.with_columns(pl.when(totals != 0).then(pl.col("effect") / totals).alias("share"))
    return (
        hier.level_of(hierarchy.members, rows)
        .join(base.choice, on="unique_id", how="left")
        .select(*series_columns(job), "basis", "model", "family", "effect", "share")
        .sort("level", "unique_id", "basis", "ds", "family")
    )
