"""Why a published forecast changed between two runs (`forecasting diff`): the change split into the drivers'
changes, the change of model or method, and a remainder, from the two runs' drivers.parquet.

At each bottom series, over the periods both runs forecast: when the model behind Base and the method published at
the bottom level are the same in both runs, the change is each driver family's change (`reconciliation` included:
what the reconciliation's adjustment did differently); these add up to the change exactly, since each run's rows
sum to its published forecast. When the model or the method changed, the whole change of that series is `model or
method change`: the two runs' families then describe different models and their differences would mean nothing.
Above the bottom the bottom series' parts are summed by the key columns; `remainder` is what they leave of the
level's change (a series in one run only, a level whose published forecast is not its children's sum).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from forecasting.job.schema import JobSpec
from forecasting.outputs.runs import read_manifest

MODEL_CHANGE = "model or method change"
REMAINDER = "remainder"
KEYS = ["unique_id", "ds"]


def _drivers(folder: Path) -> pl.DataFrame | None:
    path = folder / "drivers.parquet"
    return pl.read_parquet(path).filter(pl.col("basis") == "hierarchy") if path.exists() else None


def _published(folder: Path) -> pl.DataFrame:
    return pl.read_parquet(folder / "reconciled_forecasts.parquet").filter(pl.col("published"))


def _bottom_method(folder: Path, bottom: str) -> str | None:
    return read_manifest(folder).get("summary", {}).get("published_per_level", {}).get(bottom)


def split_change(job: JobSpec, before: Path, after: Path) -> pl.DataFrame | None:
    """level, unique_id, part, change: every series' change over the common periods, split into parts (module
    docstring); per series the parts sum to its change. None when either run has no drivers."""
    a, b = _drivers(before), _drivers(after)
    if a is None or b is None:
        return None
    bottom = job.hierarchy.bottom
    pub_a, pub_b = _published(before), _published(after)
    common = pub_a.select(KEYS).join(pub_b.select(KEYS), on=KEYS)
    method_changed = _bottom_method(before, bottom) != _bottom_method(after, bottom)
    leaves = [
        frame.filter(pl.col("level") == bottom).join(common, on=KEYS).select(*KEYS, "model", "family", "effect")
        for frame in (a, b)
    ]
    models = (
        leaves[0]
        .select("unique_id", "model")
        .unique()
        .join(leaves[1].select("unique_id", pl.col("model").alias("model_after")).unique(), on="unique_id")
    )
    changed = models.filter((pl.col("model") != pl.col("model_after")) | pl.lit(method_changed))["unique_id"]
    both = models["unique_id"]
    deltas = (
        leaves[0]
        .select(*KEYS, "family", pl.col("effect").alias("before"))
        .join(
            leaves[1].select(*KEYS, "family", pl.col("effect").alias("after")),
            on=[*KEYS, "family"],
            how="full",
            coalesce=True,
        )  # fmt: skip
        .filter(pl.col("unique_id").is_in(both.implode()))
        .with_columns(
            (pl.col("after").fill_null(0.0) - pl.col("before").fill_null(0.0)).alias("change"),
            pl.when(pl.col("unique_id").is_in(changed.implode()))
            .then(pl.lit(MODEL_CHANGE))
            .otherwise(pl.col("family"))
            .alias("part"),
        )
        .group_by("unique_id", "part")
        .agg(pl.col("change").sum())
    )
    members = pl.concat([a, b]).select("unique_id", "level", *job.hierarchy.columns).unique("unique_id")
    parts = [deltas]
    leaf_keys = members.filter(pl.col("level") == bottom)
    for level, keys in job.hierarchy.levels.items():
        if level == bottom:
            continue
        parents = members.filter(pl.col("level") == level).select(pl.col("unique_id").alias("parent"), *keys)
        children = leaf_keys.select("unique_id", *keys)
        link = children.join(parents, on=keys) if keys else children.join(parents, how="cross")
        parts.append(
            deltas.join(link.select("unique_id", "parent"), on="unique_id")
            .group_by("parent", "part")
            .agg(pl.col("change").sum())
            .rename({"parent": "unique_id"})
        )
    split = pl.concat(parts)
    totals = (
        pub_a.select(*KEYS, "mean")
        .join(pub_b.select(*KEYS, pl.col("mean").alias("mean_after")), on=KEYS)
        .group_by("unique_id")
        .agg((pl.col("mean_after") - pl.col("mean")).sum().alias("total"))
    )
    explained = split.group_by("unique_id").agg(pl.col("change").sum().alias("explained"))
    remainder = totals.join(explained, on="unique_id", how="left").select(
        "unique_id",
        pl.lit(REMAINDER).alias("part"),
        (pl.col("total") - pl.col("explained").fill_null(0.0)).alias("change"),
    )
    return (
        pl.concat([split, remainder])
        .join(members.select("unique_id", "level"), on="unique_id")
        .select("level", "unique_id", "part", "change")
    )


def explained_top(split: pl.DataFrame, top_series: pl.DataFrame, tolerance: float = 1e-9) -> pl.DataFrame:
    """The parts of the series in `top_series` (level, unique_id, change: the diff's largest changes), each
    series' parts largest first, parts that are zero left out."""
    return (
        top_series.select(
            "level", "unique_id", pl.col("change").alias("series_change"), pl.int_range(pl.len()).alias("__order")
        )
        .join(split, on=["level", "unique_id"])
        .filter(pl.col("change").abs() > tolerance)
        .sort("__order", pl.col("change").abs(), descending=[False, True])
        .select("level", "unique_id", "series_change", "part", "change")
    )
