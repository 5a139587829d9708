"""The guard of the temporal step inside each run (docs/time-grains.md): reconciling the day horizon across time is
published at a level only if, over the windows of the backtest the run reads, it scored no worse (mean RMSSE) than
the days summed at every grain of that level; elsewhere (and in a run with no past day forecasts to check it on)
the span publishes the days as they are and the coarse periods as their sums, the library's temporal BottomUp:
coherent across time and the hierarchy (said in the run's warnings and manifest).

What a run knows at run time: the backtest's published day forecasts of each past window (chosen nested), and the
days up to the as-of. At each window's cutoff the coarse grains are refit on the history up to it with the run's
own Base model per level and hierarchy choice (both made on the grain's rolling origins up to the as-of, which
overlap the windows: the choice is not re-made per window, see the doc's limits), reconciled across the hierarchy
and then across time exactly as the run does, and scored against the days' actuals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import polars as pl

from forecasting.data.hierarchy import Hierarchy
from forecasting.job.context import FoundBacktest, Plan
from forecasting.job.schema import JobSpec
from forecasting.models.grains import GrainBase, grain_histories, refit_base, rmsse_by_level
from forecasting.reconcile.temporal import (
    DAYS_SUMMED,
    TIME_RECONCILED,
    GrainResult,
    HierarchyChoice,
    hierarchy_choice,
    hierarchy_rows,
    reconcile_grains,
    time_step,
)

TIME, HIERARCHY = TIME_RECONCILED, DAYS_SUMMED  # HIERARCHY: what the span publishes without the temporal step


@dataclass
class TimeCheck:
    """The levels whose span falls back to the days summed, the scores behind it, and what the run says."""

    fallback: list[str]
    said: str
    scores: pl.DataFrame | None = None  # grain, level, hierarchy+time, hierarchy (mean RMSSE), windows
    cutoffs: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        rows = self.scores.to_dicts() if self.scores is not None else []
        return {"fallback_levels": self.fallback, "windows": self.cutoffs, "rmsse": rows, "said": self.said}


def backtest_days(backtest: FoundBacktest, job: JobSpec) -> tuple[pl.DataFrame | None, str]:
    """The published day forecasts of the backtest's scored windows (unique_id, ds, cutoff, mean, lo/hi), or None
    and why there are none."""
    folder, reason = backtest
    if folder is None:
        return None, reason
    bounds = [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]
    rows = (
        pl.scan_parquet(folder / "backtest_reconciled.parquet")
        .filter(pl.col("published"))
        .select("unique_id", "ds", "cutoff", "mean", *bounds)
        .collect()
    )
    per_window = rows.group_by("cutoff", "unique_id").len()
    full = per_window.group_by("cutoff").agg((pl.col("len") == job.horizon).all().alias("ok"))
    cutoffs = sorted(full.filter(pl.col("ok"))["cutoff"].to_list())
    if not cutoffs:
        return None, f"the backtest in {folder} has no window of {job.horizon} days"
    cutoffs = cutoffs[-job.backtest.scored_windows(len(cutoffs)) :]
    return rows.filter(pl.col("cutoff").is_in(cutoffs)), f"the backtest in {folder}"


def _period_actuals(days: pl.DataFrame, start: object, size: int) -> pl.DataFrame:
    """Daily actuals summed into periods of `size` days counted from `start`: unique_id, ds (first day), y."""
    period = (pl.col("ds") - pl.lit(start)).dt.total_days() // size
    first = (pl.lit(start) + pl.duration(days=period * size)).cast(pl.Date)
    return days.group_by("unique_id", first.alias("ds")).agg(pl.col("y").sum())


def window_scores(
    hierarchy: Hierarchy,
    days: pl.DataFrame,
    grains: dict[str, GrainBase],
    choices: dict[str, HierarchyChoice],
    job: JobSpec,
) -> pl.DataFrame:
    """One past window: its published days (cutoff, unique_id, ds, mean, lo/hi) and the coarse grains refit up to
    its cutoff, reconciled across the hierarchy and then across time as the run does. Mean RMSSE per grain and
    level of the span reconciled across time and of the days summed: grain, level, model, rmsse."""
    assert job.grains is not None
    cutoff = days["cutoff"][0]
    history = hierarchy.Y_df.filter(pl.col("ds") <= cutoff)
    histories = grain_histories(history, job.grains)
    coarse = []
    for grain in job.grains.coarser:
        h = job.horizon // grain.periods
        choice = grains[grain.name].choice
        base, fitted = refit_base(histories[grain.name], grain, hierarchy.members, choice, job, h, days=history)
        rows = hierarchy_rows(hierarchy, base, choices[grain.name], job.levels, fitted)
        coarse.append(rows.with_columns(pl.lit(grain.name).alias("grain")))
    coarse_rows = pl.concat(coarse)
    day_rows = days.drop("cutoff").with_columns(pl.lit(job.grains.base).alias("grain"))
    timed, _ = time_step(hierarchy, day_rows.drop("grain"), coarse_rows, job)
    summed, _ = time_step(hierarchy, day_rows.drop("grain"), coarse_rows, job, days_summed=True)
    start, end = day_rows["ds"].min(), day_rows["ds"].max()
    actual_days = hierarchy.Y_df.filter(pl.col("ds").is_between(start, end))
    scores = []
    for grain, size in [(job.grains.base, 1), *((g.name, g.periods) for g in job.grains.coarser)]:
        alone = summed.filter(pl.col("grain") == grain)
        frame = (
            timed.filter(pl.col("grain") == grain)
            .select("unique_id", "ds", pl.col("mean").alias(TIME))
            .join(alone.select("unique_id", "ds", pl.col("mean").alias(HIERARCHY)), on=["unique_id", "ds"])
            .join(_period_actuals(actual_days, start, size), on=["unique_id", "ds"])
            .with_columns(pl.lit(cutoff).alias("cutoff"))
        )
        scale = history if size == 1 else histories[grain]
        scored = rmsse_by_level(frame, scale, hierarchy.members, [TIME, HIERARCHY])
        scores.append(scored.with_columns(pl.lit(grain).alias("grain"), pl.lit(str(cutoff)).alias("cutoff")))
    return pl.concat(scores)


def fallback_levels(scores: pl.DataFrame, hierarchy: Hierarchy) -> tuple[pl.DataFrame, list[str]]:
    """Mean RMSSE per grain and level over the windows of `scores` (window_scores' rows), and the levels where the
    temporal step scored worse than the days summed at any grain, in the hierarchy's order."""
    table = (
        scores.group_by("grain", "level", "model")
        .agg(pl.col("rmsse").mean(), pl.len().alias("windows"))
        .pivot(on="model", index=["grain", "level", "windows"], values="rmsse")
        .sort("grain", "level")
    )
    worse = set(table.filter(pl.col(TIME) > pl.col(HIERARCHY) * (1 + 1e-9))["level"].to_list())
    order = hierarchy.members["level"].unique(maintain_order=True).to_list()
    return table, [level for level in order if level in worse]


def check_time_step(
    hierarchy: Hierarchy,
    grains: dict[str, GrainBase],
    choices: dict[str, HierarchyChoice],
    backtest: FoundBacktest,
    job: JobSpec,
) -> TimeCheck:
    """Per level, whether the temporal step scored worse than the days summed at any grain over the backtest's
    scored windows. No backtest with the job's day horizon: the step is not published (the days summed are), and the
    run says so."""
    assert job.grains is not None
    days, source = backtest_days(backtest, job)
    if days is None:
        # No evidence that the temporal step helps: the days as published and the periods as their sums (coherent
        # both ways), as the plan keeps its anchor until something is clearly better.
        levels = hierarchy.members["level"].unique(maintain_order=True).to_list()
        said = (
            f"time: the first {job.horizon} days not reconciled across time, the periods are the days summed (no "
            f"past day forecasts to check the step on: {source})"
        )
        return TimeCheck(levels, said)
    cutoffs = sorted(days["cutoff"].unique().to_list())
    scores = pl.concat(
        [window_scores(hierarchy, days.filter(pl.col("cutoff") == c), grains, choices, job) for c in cutoffs]
    )
    table, fallback = fallback_levels(scores, hierarchy)
    span = f"{cutoffs[0]} .. {cutoffs[-1] + timedelta(days=job.horizon)}"
    if fallback:
        said = (
            f"time: reconciling the first {job.horizon} days across time scored worse than the days summed at "
            f"{', '.join(fallback)} over {len(cutoffs)} backtest windows ({span}): there the days are as published "
            "and the periods their sums"
        )
    else:
        said = f"time: reconciled across time at every level (no worse than the days summed over {span})"
    return TimeCheck(fallback, said, table, [str(c) for c in cutoffs])


def publish_grains(
    hierarchy: Hierarchy,
    plan: Plan,
    reconciled: pl.DataFrame,
    grains: dict[str, GrainBase],
    job: JobSpec,
    backtest: FoundBacktest = (None, "no backtest given"),
) -> tuple[pl.DataFrame, GrainResult, TimeCheck]:
    """The run's reconciled rows with their published day rows replaced by the days reconciled across time (so
    staffing and inventory read the coherent days), every grain's published rows, and the temporal step's guard."""
    bounds = [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]
    rows = reconciled.join(hierarchy.members.select("unique_id", "level"), on="unique_id", how="left")
    published = pl.lit(False)
    for level in sorted(plan.base):
        published = (
            pl.when(pl.col("level") == level).then(pl.col("method") == plan.published_at(level)).otherwise(published)
        )
    rows = rows.with_columns(published.alias("__published"))
    days = rows.filter(pl.col("__published"))
    choices = {name: hierarchy_choice(hierarchy, grain) for name, grain in grains.items()}
    check = check_time_step(hierarchy, grains, choices, backtest, job)
    published_days = days.select("unique_id", "ds", "mean", *bounds)
    result = reconcile_grains(hierarchy, published_days, grains, job, check.fallback, choices)
    result.notes.append(check.said)
    replaced = days.drop("mean", *bounds).join(result.days, on=["unique_id", "ds"], how="left")
    out = pl.concat([rows.filter(~pl.col("__published")), replaced.select(rows.columns)])
    return out.drop("level", "__published").select(reconciled.columns), result, check
