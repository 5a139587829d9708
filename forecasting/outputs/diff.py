"""What changed between two published runs of a job: the series whose forecast moved most and the staffing rows
whose headcount moved most. Planners ask "why is tonight's plan different from yesterday's?"; this answers where.

Runs are compared on the periods both forecast (runs with different as-of dates overlap only in part)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from forecasting.job.schema import JobSpec
from forecasting.outputs.diff_drivers import explained_top, split_change
from forecasting.outputs.runs import LATEST, published_as_of, read_manifest, run_dir


@dataclass
class RunDiff:
    before: Path
    after: Path
    forecasts: pl.DataFrame  # top series per level by absolute change of the summed forecast over common periods
    staffing: pl.DataFrame  # top warehouse x process x period x quantile rows by absolute headcount change
    notes: list[str] = field(default_factory=list)
    # the top series' changes split into drivers, model or method change and remainder (forecasting.outputs.
    # diff_drivers); None when either run has no drivers
    explained: pl.DataFrame | None = None


def previous_as_of(job: JobSpec, as_of: str | None = None) -> str | None:
    """The published as-of date just before `as_of` (default: the latest run's), or None if there is none."""
    if as_of is None:
        latest = job.output_dir() / LATEST
        if not latest.is_symlink():
            return None
        as_of = os.readlink(latest)
    earlier = [d for d in published_as_of(job) if d < as_of]
    return earlier[-1] if earlier else None


def resolve_pair(job: JobSpec, runs: list[str]) -> tuple[Path, Path]:
    """Two run folders from zero, one or two as-of dates: none = latest vs the run before it; one = that run vs
    the run before it; two = the first vs the second. Only published as-of dates are accepted: the diff reads its
    two run folders (with polars, no SQL), so a `--run ../elsewhere` must not lead it out of the job's outputs."""
    if len(runs) > 2:
        raise ValueError(f"give at most two runs to compare, got {len(runs)}")
    published = published_as_of(job)
    unknown = [run for run in runs if run not in published]  # an as-of date, never a path out of the job's outputs
    if unknown:
        raise FileNotFoundError(
            f"no published run {', '.join(unknown)} for job {job.name!r}; published: {', '.join(published) or 'none'}"
        )
    if len(runs) == 2:
        return run_dir(job, runs[0]), run_dir(job, runs[1])
    after = run_dir(job, runs[0] if runs else None)
    before = previous_as_of(job, read_manifest(after)["as_of"])
    if before is None:
        raise FileNotFoundError(f"job {job.name!r}: no published run before {after.name} to compare with")
    return run_dir(job, before), after


def diff_runs(job: JobSpec, before: Path, after: Path, top: int = 10) -> RunDiff:
    """The largest forecast changes (per level, published reconciliation) and staffing changes from `before` to
    `after`, on the periods both runs cover."""
    keys = list(job.hierarchy.columns)
    a = _published(before)
    b = _published(after)
    notes = []
    common = set(a["ds"].unique().to_list()) & set(b["ds"].unique().to_list())
    only_a = sorted(set(a["ds"].unique().to_list()) - common)
    only_b = sorted(set(b["ds"].unique().to_list()) - common)
    if not common:
        notes.append("the runs forecast no period in common: nothing to compare")
    if only_a or only_b:
        notes.append(
            f"compared on {len(common)} common periods; only in {before.name}: {_span(only_a)};"
            f" only in {after.name}: {_span(only_b)}"
        )
    present = [k for k in keys if k in a.columns and k in b.columns]
    joined = a.join(b.select("unique_id", "ds", "mean"), on=["unique_id", "ds"], suffix="_after")
    series = set(a["unique_id"].unique().to_list()) ^ set(b["unique_id"].unique().to_list())
    if series:
        notes.append(f"{len(series)} series are in one run only (not compared)")
    forecasts = (
        joined.group_by("level", "unique_id", *present)
        .agg(
            pl.len().alias("periods"),
            pl.col("mean").sum().alias("before"),
            pl.col("mean_after").sum().alias("after"),
        )
        .with_columns((pl.col("after") - pl.col("before")).alias("change"))
        .with_columns((pl.col("change") / pl.col("before")).alias("change_pct"))
        .with_columns(pl.col("change").abs().alias("_abs"))
        .sort(["_abs", "unique_id"], descending=[True, False])
        .group_by("level", maintain_order=True)
        .head(top)
        .drop("_abs")
    )
    order = {lv: i for i, lv in enumerate(job.hierarchy.names)}
    forecasts = forecasts.sort(pl.col("level").replace_strict(order, default=len(order)), maintain_order=True)
    split = split_change(job, before, after)
    if split is None:
        notes.append("one of the runs has no drivers.parquet: the changes are not split into drivers")
    explained = explained_top(split, forecasts) if split is not None else None
    return RunDiff(before, after, forecasts, _staffing_changes(before, after, top), notes, explained)


def _published(folder: Path) -> pl.DataFrame:
    return pl.read_parquet(folder / "reconciled_forecasts.parquet").filter(pl.col("published"))


def _span(days: list[date]) -> str:
    if not days:
        return "none"
    return f"{days[0]}" if len(days) == 1 else f"{days[0]} .. {days[-1]} ({len(days)})"


def _staffing_changes(before: Path, after: Path, top: int) -> pl.DataFrame:
    on = ["warehouse", "process", "ds", "quantile"]
    a = pl.read_parquet(before / "staffing.parquet")
    b = pl.read_parquet(after / "staffing.parquet")
    if a.is_empty() or b.is_empty():
        return pl.DataFrame()
    return (
        a.select(*on, pl.col("headcount").alias("headcount_before"), pl.col("fte").alias("fte_before"))
        .join(b.select(*on, pl.col("headcount").alias("headcount_after"), pl.col("fte").alias("fte_after")), on=on)
        .with_columns(
            (pl.col("headcount_after") - pl.col("headcount_before")).alias("headcount_change"),
            (pl.col("fte_after") - pl.col("fte_before")).alias("fte_change"),
        )
        .with_columns(pl.col("headcount_change").abs().alias("_h"), pl.col("fte_change").abs().alias("_f"))
        .sort(["_h", "_f", *on], descending=[True, True, False, False, False, False])
        .head(top)
        .drop("_h", "_f")
    )
