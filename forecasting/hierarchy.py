"""Hierarchy: complete periods only, then total -> region -> warehouse -> SKU through hierarchicalforecast.aggregate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl
from hierarchicalforecast.utils import aggregate

from forecasting.config import LEVELS, JobSpec

# Level name -> columns that identify a series at that level (aggregate() joins them with "/" into unique_id).
LEVEL_COLUMNS: dict[str, list[str]] = {
    "total": ["total"],
    "region": ["total", "region"],
    "warehouse": ["total", "region", "warehouse"],
    "sku": ["total", "region", "warehouse", "sku"],
}


@dataclass
class Hierarchy:
    """All levels' series (Nixtla long format), the sparse summing matrix, the tags, and who is who."""

    Y_df: pl.DataFrame  # unique_id, ds, y
    S: object  # hierarchicalforecast SMatrix (sparse) or dense S_df
    tags: dict[str, object]  # level name -> unique_ids
    members: pl.DataFrame  # unique_id, level, region, warehouse, sku (null above its level)

    def ids(self, level: str) -> list[str]:
        return list(self.tags[level])


@dataclass(frozen=True)
class PeriodReport:
    kept_from: date
    kept_to: date
    dropped: list[str]
    prorated: list[str]


def complete_periods(history: pl.DataFrame, job: JobSpec) -> tuple[pl.DataFrame, PeriodReport]:
    """Handle partial periods deliberately.

    A period the source covers only in part (the M5 monthly file: Jan-2011 has 3 days, Apr-2016 24) is dropped, or with
    ``incomplete_periods: prorate`` scaled to a full period (y * days_in_period / days_observed). The period that holds
    the as-of date is never used: its rows may contain days after the as-of date.
    """
    partial = history.filter(pl.col("days_observed") < pl.col("days_in_period"))
    partial_periods = partial.select("ds", "days_observed", "days_in_period", "cut_by_as_of").unique().sort("ds")
    dropped: list[str] = []
    prorated: list[str] = []
    drop_ds: list[date] = []
    for ds, seen, full, cut in partial_periods.iter_rows():
        label = f"{ds} ({seen}/{full} days)"
        if cut or job.incomplete_periods == "drop" or seen == 0:
            dropped.append(label)
            drop_ds.append(ds)
        else:
            prorated.append(label)
    out = history.filter(~pl.col("ds").is_in(drop_ds)).with_columns(
        pl.when(pl.col("days_observed") < pl.col("days_in_period"))
        .then(pl.col("y") * pl.col("days_in_period") / pl.col("days_observed"))
        .otherwise(pl.col("y"))
        .alias("y")
    )
    out = out.select("sku", "warehouse", "region", "ds", "y")
    if out.is_empty():
        return out, PeriodReport(history["ds"].min(), history["ds"].min(), dropped, prorated)
    return out, PeriodReport(out["ds"].min(), out["ds"].max(), dropped, prorated)


def build_hierarchy(history: pl.DataFrame, sparse: bool = True) -> Hierarchy:
    """Aggregate bottom series to every level. Sparse S keeps memory linear in the number of SKUs."""
    bottom = history.with_columns(pl.lit("total").alias("total")).select(
        "total", "region", "warehouse", "sku", "ds", "y"
    )
    spec = [LEVEL_COLUMNS[level] for level in LEVELS]
    Y_df, S, raw_tags = aggregate(bottom, spec, sparse_s=sparse)
    tags = {level: raw_tags["/".join(LEVEL_COLUMNS[level])] for level in LEVELS}
    return Hierarchy(Y_df=Y_df, S=S, tags=tags, members=_members(tags))


def _members(tags: dict[str, object]) -> pl.DataFrame:
    frames = []
    for level in LEVELS:
        ids = pl.Series("unique_id", list(tags[level]), dtype=pl.String)
        parts = ids.str.split("/")
        cols = LEVEL_COLUMNS[level]
        frame = pl.DataFrame({"unique_id": ids, "level": [level] * len(ids)})
        for name in ("region", "warehouse", "sku"):
            value = parts.list.get(cols.index(name)) if name in cols else pl.Series([None] * len(ids), dtype=pl.String)
            frame = frame.with_columns(value.alias(name))
        frames.append(frame)
    return pl.concat(frames)


def level_of(members: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """Attach level, region, warehouse and sku to any frame keyed by unique_id."""
    return frame.join(members, on="unique_id", how="left")
