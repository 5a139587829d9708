"""Hierarchy: complete periods only, then every level of the job's hierarchy through hierarchicalforecast.aggregate.

The default is the tree total -> region -> warehouse -> SKU; a job may declare a grouped structure instead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl
from hierarchicalforecast.utils import aggregate

from forecasting.job.hierarchy import HierarchySpec
from forecasting.job.schema import JobSpec

TOTAL = "total"  # constant column every level starts with: aggregate() joins a level's columns with "/" into its ids


@dataclass
class Hierarchy:
    """All levels' series (Nixtla long format), the sparse summing matrix, the tags, and who is who."""

    Y_df: pl.DataFrame  # unique_id, ds, y
    S: object  # hierarchicalforecast SMatrix (sparse) or dense S_df
    tags: dict[str, object]  # level name -> unique_ids
    members: pl.DataFrame  # unique_id, level, then every key column (null where the level does not group by it)
    spec: HierarchySpec

    def ids(self, level: str) -> list[str]:
        return list(self.tags[level])

    @property
    def bottom(self) -> str:
        return self.spec.bottom


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
    # Filtering or recomputing a column copies it: at 1M series x 2 years each copy is GBs, so the history's columns
    # are shared as they are when no period is dropped or prorated.
    kept = history.filter(~pl.col("ds").is_in(drop_ds)) if drop_ds else history
    y = pl.col("y")
    if prorated:
        partial_row = pl.col("days_observed") < pl.col("days_in_period")
        y = pl.when(partial_row).then(y * pl.col("days_in_period") / pl.col("days_observed")).otherwise(y).alias("y")
    out = kept.select(*job.hierarchy.columns, "ds", y)
    if out.is_empty():
        return out, PeriodReport(history["ds"].min(), history["ds"].min(), dropped, prorated)
    return out, PeriodReport(out["ds"].min(), out["ds"].max(), dropped, prorated)


def build_hierarchy(history: pl.DataFrame, spec: HierarchySpec, sparse: bool = True) -> Hierarchy:
    """Aggregate bottom series to every level. Sparse S keeps memory linear in the number of bottom series.

    hierarchicalforecast's aggregate() builds S, the tags and the ids from one row per bottom series (they depend on
    which series exist, not on their history); the history is then summed per level with a group-by, and the bottom
    level's ids are looked up per series instead of being written out per row. Same Y_df, S and tags as aggregate()
    on the whole history (tested), without its per-row id strings and window sums over every row of every level
    (10 GB at 1M series x 26 weeks)."""
    columns = {level: [TOTAL, *keys] for level, keys in spec.levels.items()}
    series = history.lazy().select(spec.columns).unique().collect(engine="streaming")  # groups only, not row keys
    series = series.with_columns(pl.col(spec.columns).cast(pl.String))
    # With no key columns (the total alone, middle-out's upper part from the top) the one series has no keys.
    keyed = series.with_columns(pl.lit(TOTAL).alias(TOTAL)) if spec.columns else pl.DataFrame({TOTAL: [TOTAL]})
    first = history["ds"].min()
    one_row = keyed.select(TOTAL, *spec.columns, pl.lit(first).alias("ds"), pl.lit(0.0).alias("y"))
    _, S, raw_tags = aggregate(one_row, list(columns.values()), sparse_s=sparse)
    tags = {level: raw_tags["/".join(cols)] for level, cols in columns.items()}
    levels = sorted(columns.values(), key=len)  # aggregate()'s order of levels in Y_df
    Y_df = pl.concat([_level_history(history, keyed, cols) for cols in levels])
    return Hierarchy(Y_df=Y_df, S=S, tags=tags, members=_members(keyed, columns, tags, spec), spec=spec)


def _level_history(history: pl.DataFrame, keyed: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    """unique_id, ds, y of one level, sorted by id and period. A level keyed by every column is the history itself:
    its ids are joined per series (each row's id shares that series' string) and it is ordered by the position of
    its id, not by comparing id strings."""
    keys = [c for c in cols if c != TOTAL]
    if not keys:
        total = history.select("ds", pl.col("y").sum().over("ds")).unique(subset=["ds"]).sort("ds")
        return total.select(pl.lit(TOTAL).alias("unique_id"), "ds", "y")
    ids = (
        keyed.select(*keys, pl.concat_str(cols, separator="/").alias("unique_id"))
        .unique()
        .sort("unique_id")
        .with_row_index("position")
    )
    ids = ids.with_columns(pl.col(k).cast(history.schema[k]) for k in keys)
    if set(keys) == set(keyed.columns) - {TOTAL}:
        rows = history.select(*keys, "ds", "y")
    else:
        # aggregate()'s own sum (a window sum, then one row per group): bit-identical totals for fractional data
        rows = history.select(*keys, "ds", pl.col("y").sum().over(*keys, "ds")).unique(subset=[*keys, "ds"])
    # The row order (id position, period) is computed first and each output column gathered once: joining the ids
    # onto the rows and sorting that would hold two more copies of the level (GBs at 1M series x 2 years).
    position = rows.select(keys).join(ids.select(*keys, "position"), on=keys, how="left", maintain_order="left")
    placed = rows.select("ds", "y").with_columns(position["position"])
    if placed.schema["ds"] == pl.Date:  # one u64 key (position, day) sorts 3x faster than two sort columns
        day = pl.col("ds").to_physical()
        key = pl.col("position").cast(pl.UInt64) * 2**32 + (day - day.min()).cast(pl.UInt64)
        order = placed.select(key.arg_sort())["position"]
    else:
        order = placed.select(pl.arg_sort_by("position", "ds"))["position"]
    return pl.DataFrame(
        {
            "unique_id": ids["unique_id"].gather(placed["position"].gather(order)),
            "ds": placed["ds"].gather(order),
            "y": placed["y"].gather(order),
        }
    )


def _members(
    bottom: pl.DataFrame, columns: dict[str, list[str]], tags: dict[str, object], spec: HierarchySpec
) -> pl.DataFrame:
    """unique_id -> level and key values, built from the data with aggregate()'s own id rule (columns joined by
    "/"), so a key value that itself holds "/" cannot be split wrongly."""
    frames = []
    for level, cols in columns.items():
        keys = [c for c in cols if c != TOTAL]
        frame = (
            bottom.select(cols)
            .unique()
            .with_columns(pl.concat_str(cols, separator="/").alias("unique_id"), pl.lit(level).alias("level"))
        )
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(k) for k in spec.columns if k not in keys)
        frames.append(frame.select("unique_id", "level", *spec.columns).sort("unique_id"))
    members = pl.concat(frames)
    expected = sum(len(tags[level]) for level in columns)
    if members.height != expected or members["unique_id"].n_unique() != expected:
        raise ValueError("hierarchy ids are ambiguous: a key value contains '/' that collides with another series")
    return members


def level_of(members: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """Attach the level and the key columns to any frame keyed by unique_id."""
    return frame.join(members, on="unique_id", how="left")
