"""Reconciliation across time grains with hierarchicalforecast (docs/time-grains.md).

1. Each coarse grain (week, 4-week) is reconciled across the hierarchy over its whole horizon by MinTrace
   wls_struct (non-negative), BottomUp (both with the library's normality intervals) or TopDown with forecast
   proportions (keeps the top level's Base; the library's bootstrap intervals from in-sample residuals). The guard:
   the first of them no worse than the grain's Base at any level over the grain's rolling origins is published;
   if none is, the least harmful with Base at its harmed levels (flagged not coherent there).
2. Over the span every grain covers (the day horizon), the published days and the hierarchy-reconciled coarse
   periods are reconciled across time: `HierarchicalReconciliation.reconcile(..., temporal=True)` over the temporal
   hierarchy `aggregate_temporal` builds (MinTrace wls_struct, normality intervals). The temporal projection is
   linear and the same for every series, so days that add up across the hierarchy still do after it. Should it
   give a negative mean anywhere, the days summed (temporal BottomUp, non-negative by construction) are published
   instead, with a note. Closed days are set back to 0, their value moved onto the week's open days (`close_days`).
   Whether the step is published at a level is the run's guard (forecasting.reconcile.temporal_guard).

The library reconciles a temporal hierarchy one matrix per call with the series as the columns: each row of
`Y_hat_df` is one series x temporal period, its "time" column orders the series (series index x 1000 + period)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import polars as pl
from hierarchicalforecast.core import HierarchicalReconciliation
from hierarchicalforecast.methods import BottomUp, MinTrace, TopDown
from hierarchicalforecast.utils import aggregate_temporal

from forecasting.data.hierarchy import Hierarchy
from forecasting.data.transforms import closed_mask
from forecasting.job.grains import GrainsSpec
from forecasting.job.models import BASE
from forecasting.job.schema import JobSpec
from forecasting.models.grains import GrainBase, rmsse_by_level
from forecasting.reconcile.wide import tag_arrays

CROSS = "MinTrace_wls_struct"
BOTTOM_UP = "BottomUp"
TOP_DOWN = "TopDown"  # forecast proportions: keeps the top level's Base
CANDIDATES = (CROSS, BOTTOM_UP, TOP_DOWN)  # the coarse grains' hierarchy methods, in the guard's order of preference
TIME_RECONCILED = "hierarchy+time"  # the span reconciled across time (and the hierarchy)
DAYS_SUMMED = "days summed"  # the span at a level where the temporal step is not published: temporal BottomUp
ORDER = "order"  # the time column the library sorts a temporal period's rows by: series index x 1000 + period


@dataclass
class GrainResult:
    """Every grain's published rows (grain, unique_id, ds, days, method, published, mean, lo/hi), the days that
    replace the published day rows, and what the run should say."""

    table: pl.DataFrame
    days: pl.DataFrame  # unique_id, ds, mean, lo/hi: the temporally reconciled published days
    notes: list[str] = field(default_factory=list)
    guard: dict[str, list[str]] = field(default_factory=dict)  # grain -> levels publishing Base
    time_fallback: list[str] = field(default_factory=list)  # levels whose span is reconciled across the hierarchy only


def _bounds(levels: list[int]) -> list[str]:
    return [f"{side}_{lv}" for lv in levels for side in ("lo", "hi")]


def _library_bounds(name: str, levels: list[int]) -> dict[str, str]:
    return {f"{name}-{side}-{lv}": f"{side}_{lv}" for lv in levels for side in ("lo", "hi")}


def _reconciler(method: str) -> tuple[object, str]:
    """The library's reconciler of a hierarchy method and the name of its output column."""
    if method == BOTTOM_UP:
        return BottomUp(), f"{BASE}/BottomUp"
    if method == TOP_DOWN:
        return TopDown(method="forecast_proportions"), f"{BASE}/TopDown_method-forecast_proportions"
    return MinTrace(method="wls_struct", nonnegative=True), f"{BASE}/MinTrace_method-wls_struct_nonnegative-True"


def across_hierarchy(
    hierarchy: Hierarchy,
    frame: pl.DataFrame,
    levels: list[int] | None,
    method: str = CROSS,
    fitted: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """MinTrace wls_struct (non-negative), BottomUp or TopDown (forecast proportions) of a wide Base frame
    (unique_id, ds, Base[, Base-lo/hi]) across the hierarchy: unique_id, ds, mean[, lo/hi]. Intervals: the
    library's normality sampler; TopDown's, which the library only bootstraps, from the in-sample `fitted`
    (unique_id, ds, y, Base) residuals."""
    reconciler, name = _reconciler(method)
    columns = ["unique_id", "ds", BASE] + ([c for c in frame.columns if c.startswith(f"{BASE}-")] if levels else [])
    y_hat = frame.select(columns).with_columns(pl.col(BASE).clip(lower_bound=0.0))
    options: dict = {"intervals_method": "normality"}
    if method == TOP_DOWN and levels:
        if fitted is None:
            raise ValueError("TopDown intervals need the grain's in-sample fits")
        options = {"intervals_method": "bootstrap", "Y_df": fitted, "seed": 0}  # the library draws 200 samples
    out = HierarchicalReconciliation(reconcilers=[reconciler]).reconcile(
        Y_hat_df=y_hat, S_df=hierarchy.S, tags=tag_arrays(hierarchy), level=levels, **options
    )
    rename = {name: "mean"} | (_library_bounds(name, levels) if levels else {})
    out = out.select("unique_id", "ds", *rename).rename(rename)
    if method == TOP_DOWN and levels:
        # The bootstrap draws Base's in-sample residuals, whose mean is not 0 for a biased model (SeasonalNaive on a
        # trend): its bands can miss the reconciled mean. They are moved to centre on it (the innermost band's
        # midpoint onto the mean), keeping the bootstrap's spread and skew.
        inner = min(levels)
        shift = pl.col("mean") - (pl.col(f"lo_{inner}") + pl.col(f"hi_{inner}")) / 2
        out = out.with_columns([(pl.col(c) + shift).clip(lower_bound=0.0) for c in _bounds(levels)])
    return out


def hierarchy_scores(hierarchy: Hierarchy, grain: GrainBase, methods: tuple[str, ...]) -> pl.DataFrame:
    """Mean RMSSE per level of the grain's Base and of each hierarchy method over the grain's rolling origins:
    level, Base, <method>..."""
    frames = []
    for cutoff in grain.windows["cutoff"].unique().sort().to_list():
        window = grain.windows.filter(pl.col("cutoff") == cutoff)
        for method in methods:
            rec = across_hierarchy(hierarchy, window.select("unique_id", "ds", BASE), None, method)
            window = window.join(rec.rename({"mean": method}), on=["unique_id", "ds"])
        frames.append(window)
    scores = rmsse_by_level(pl.concat(frames), grain.history, hierarchy.members, [BASE, *methods])
    return scores.pivot(on="model", index="level", values="rmsse")


def strictly_nested(members: pl.DataFrame) -> bool:
    """Each level's series sit under exactly one series of the level above (its keys extend the level above's):
    the structure TopDown needs (a grouped hierarchy, e.g. categories beside regions, is not one)."""
    columns = [c for c in members.columns if c not in ("unique_id", "level")]
    levels = members["level"].unique(maintain_order=True).to_list()
    keys = [{c for c in columns if members.filter(pl.col("level") == lv)[c].null_count() == 0} for lv in levels]
    return all(upper <= lower for upper, lower in zip(keys, keys[1:], strict=False))


def harmed_levels(hierarchy: Hierarchy, grain: GrainBase) -> dict[str, list[str]]:
    """Per hierarchy method (MinTrace wls_struct, BottomUp, and TopDown where the hierarchy is strictly one), the
    levels where it scored worse (mean RMSSE) than the grain's Base over the grain's rolling origins."""
    methods = CANDIDATES if strictly_nested(hierarchy.members) else (CROSS, BOTTOM_UP)
    wide = hierarchy_scores(hierarchy, grain, methods)
    return {m: sorted(wide.filter(pl.col(m) > pl.col(BASE) * (1 + 1e-9))["level"].to_list()) for m in methods}


@dataclass
class HierarchyChoice:
    """A coarse grain's reconciliation across the hierarchy: the method published and the levels publishing Base."""

    method: str
    base_levels: list[str]
    said: str


def hierarchy_choice(hierarchy: Hierarchy, grain: GrainBase) -> HierarchyChoice:
    """The guard of the accuracy issue: the first of MinTrace wls_struct, BottomUp and TopDown (forecast
    proportions, which keeps the top level's Base) that is no worse than Base at any level; else the one harmful at
    the fewest levels (that order on ties), with Base at those levels."""
    harmed = harmed_levels(hierarchy, grain)
    method = min(harmed, key=lambda m: (len(harmed[m]), CANDIDATES.index(m)))
    name = grain.grain.name
    others = "; ".join(f"{m} was worse at {', '.join(harmed[m])}" for m in harmed if harmed[m] and m != method)
    if not harmed[method]:
        said = "no worse than Base at any level" + (f"; {others}" if others else "")
        return HierarchyChoice(method, [], f"{name}: {method} published ({said})")
    said = ", ".join(harmed[method])
    return HierarchyChoice(
        method,
        harmed[method],
        f"{name}: every hierarchy method was worse than Base somewhere ({others}); {method} published with Base at "
        f"{said}, not coherent there",
    )


def hierarchy_rows(
    hierarchy: Hierarchy,
    forecasts: pl.DataFrame,
    choice: HierarchyChoice,
    levels: list[int],
    fitted: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """A coarse grain's Base forecasts (wide: Base, Base-lo/hi; its in-sample `fitted` for TopDown) reconciled as
    `choice` says: unique_id, ds, mean, lo/hi, with Base at its levels."""
    rec = across_hierarchy(hierarchy, forecasts, levels, choice.method, fitted)
    if not choice.base_levels:
        return rec
    ids = hierarchy.members.filter(pl.col("level").is_in(choice.base_levels))["unique_id"].implode()
    base = forecasts.filter(pl.col("unique_id").is_in(ids)).select(
        "unique_id", "ds", BASE, *_library_bounds(BASE, levels)
    )
    base = base.rename({BASE: "mean"} | _library_bounds(BASE, levels)).select(rec.columns)
    return pl.concat([rec.filter(~pl.col("unique_id").is_in(ids)), base])


def temporal_spec(grains: GrainsSpec) -> dict[str, int]:
    return {g.name: g.periods for g in reversed(grains.coarser)} | {grains.base: 1}


def temporal_structure(grains: GrainsSpec, start: object, horizon: int) -> tuple[pl.DataFrame, dict, pl.DataFrame]:
    """The temporal hierarchy of the first `horizon` days from `start`, by `aggregate_temporal`: S (temporal_id x
    day-i), tags (grain -> temporal ids), and each temporal id's grain, number and first day."""
    days = pl.DataFrame(
        {
            "unique_id": "span",
            "ds": pl.datetime_range(start, start + timedelta(days=horizon - 1), "1d", eager=True),
            "y": 0.0,
        }
    )
    _, S, tags = aggregate_temporal(df=days, spec=temporal_spec(grains), aggregation_type="global")
    sizes = dict(temporal_spec(grains))
    ids = []
    for grain, members in tags.items():
        for temporal_id in members:
            number = int(str(temporal_id).rsplit("-", 1)[1])
            first = start + timedelta(days=(number - 1) * sizes[grain])
            ids.append((str(temporal_id), grain, number, first))
    periods = pl.DataFrame(ids, schema=["temporal_id", "grain", "number", "ds"], orient="row")
    return S, {k: np.asarray(v) for k, v in tags.items()}, periods.with_columns(pl.col("ds").cast(pl.Date))


def across_time(
    S: pl.DataFrame, tags: dict, rows: pl.DataFrame, levels: list[int], bottom_up: bool = False
) -> pl.DataFrame:
    """Temporal reconciliation of `rows` (unique_id, temporal_id, order, Base, Base-lo/hi) by the library: unique_id,
    temporal_id, mean, lo/hi. MinTrace wls_struct (linear: no non-negative QP), or BottomUp."""
    reconciler = BottomUp() if bottom_up else MinTrace(method="wls_struct")
    out = HierarchicalReconciliation(reconcilers=[reconciler]).reconcile(
        Y_hat_df=rows,
        S_df=S,
        tags=tags,
        level=levels,
        intervals_method="normality",
        time_col=ORDER,
        temporal=True,
    )
    name = f"{BASE}/BottomUp" if bottom_up else f"{BASE}/MinTrace_method-wls_struct"
    rename = {name: "mean"} | _library_bounds(name, levels)
    return out.select("unique_id", "temporal_id", *rename).rename(rename)


def close_days(
    timed: pl.DataFrame, grains: GrainsSpec, closed: list[str], members: pl.DataFrame, bounds: list[str]
) -> pl.DataFrame:
    """Closed days (Christmas) exactly 0 after the temporal step, which can move them off 0: each series' value on a
    closed day is moved onto the open days of the same finest coarse period (week), in proportion to the top
    level's (the total's) published days there. The weights are the same for every series, so the move is linear and
    days that added up across the hierarchy still do; the week keeps its sum, and so does every coarser period. A
    moved day's bounds shift with its mean (its spread is kept); the closed day's bounds are 0 too."""
    base = pl.col("grain") == grains.base
    is_closed = base & closed_mask(pl.col("ds"), closed)
    if not closed or timed.filter(is_closed).height == 0:
        return timed
    size = grains.coarser[0].periods
    start = timed.filter(base)["ds"].min()
    period = ((pl.col("ds") - pl.lit(start)).dt.total_days() // size).alias("__period")
    days = timed.filter(base).with_columns(period, closed_mask(pl.col("ds"), closed).alias("__closed"))
    moved = days.filter(pl.col("__closed")).group_by("unique_id", "__period").agg(pl.col("mean").sum().alias("__moved"))
    top = members.filter(pl.col("level") == members["level"][0])["unique_id"].implode()
    share = pl.col("mean") / pl.col("mean").sum().over("__period")
    equal = 1.0 / pl.len().over("__period")
    weights = (
        days.filter(pl.col("unique_id").is_in(top) & ~pl.col("__closed"))
        .group_by("__period", "ds")
        .agg(pl.col("mean").sum())
        .with_columns(pl.when(pl.col("mean").sum().over("__period") > 0).then(share).otherwise(equal).alias("__w"))
        .select("__period", "ds", "__w")
    )
    delta = (pl.col("__moved") * pl.col("__w")).fill_null(0.0)
    opened = (
        days.filter(~pl.col("__closed"))
        .join(weights, on=["__period", "ds"], how="left")
        .join(moved, on=["unique_id", "__period"], how="left")
        .with_columns([(pl.col(c) + delta).alias(c) for c in ["mean", *bounds]])
    )
    shut = days.filter(pl.col("__closed")).with_columns([pl.lit(0.0).alias(c) for c in ["mean", *bounds]])
    return pl.concat([timed.filter(~base), opened.select(timed.columns), shut.select(timed.columns)])


def _wide_base(frame: pl.DataFrame, levels: list[int]) -> pl.DataFrame:
    """Long published rows (mean, lo_L, hi_L) -> the library's Base columns."""
    rename = {"mean": BASE} | {v: k for k, v in _library_bounds(BASE, levels).items()}
    return frame.rename(rename)


def coarse_published(
    hierarchy: Hierarchy,
    grains: dict[str, GrainBase],
    levels: list[int],
    choices: dict[str, HierarchyChoice] | None = None,
) -> tuple[pl.DataFrame, dict[str, HierarchyChoice]]:
    """Every coarse grain reconciled across the hierarchy over its whole horizon, under the guard (`choices`, made
    here when not given): grain, unique_id, ds, mean, lo/hi; and each grain's choice."""
    choices = choices or {name: hierarchy_choice(hierarchy, grain) for name, grain in grains.items()}
    rows = [
        hierarchy_rows(hierarchy, grain.forecasts, choices[name], levels, grain.fitted).with_columns(
            pl.lit(name).alias("grain")
        )
        for name, grain in grains.items()
    ]
    return pl.concat(rows), choices


def time_step(
    hierarchy: Hierarchy, days: pl.DataFrame, coarse_rows: pl.DataFrame, job: JobSpec, days_summed: bool = False
) -> tuple[pl.DataFrame, list[str]]:
    """The published days and the hierarchy-reconciled coarse periods of the span every grain covers, reconciled
    across time (closed days kept at 0): grain, unique_id, ds, temporal_id, mean, lo/hi; and what to say. With
    `days_summed` the library's temporal BottomUp: the days as published, the periods their sums."""
    assert job.grains is not None
    levels = job.levels
    bounds = _bounds(levels)
    notes: list[str] = []
    S, tags, periods = temporal_structure(job.grains, days["ds"].min(), job.horizon)
    columns = ["grain", "unique_id", "ds", "mean", *bounds]
    span = pl.concat(
        [days.with_columns(pl.lit(job.grains.base).alias("grain")).select(columns), coarse_rows.select(columns)]
    ).join(periods, on=["grain", "ds"], how="inner")
    order = hierarchy.members.select("unique_id").with_row_index("series")
    span = span.join(order, on="unique_id").with_columns(
        (pl.col("series").cast(pl.Int64) * 1000 + pl.col("number")).alias(ORDER)
    )
    rows = _wide_base(span.select("unique_id", "temporal_id", ORDER, "mean", *bounds), levels)
    timed = across_time(S, tags, rows, levels, bottom_up=days_summed)
    if (timed["mean"] < -1e-9).any():
        notes.append("time: the temporal MinTrace gave a negative mean; the days summed (BottomUp) are published")
        timed = across_time(S, tags, rows, levels, bottom_up=True)
    timed = timed.join(periods, on="temporal_id")
    timed = timed.with_columns([pl.col(c).clip(lower_bound=0.0) for c in bounds])
    return close_days(timed, job.grains, job.closed_periods, hierarchy.members, bounds), notes


def reconcile_grains(
    hierarchy: Hierarchy,
    days: pl.DataFrame,
    grains: dict[str, GrainBase],
    job: JobSpec,
    time_fallback: list[str] | None = None,
    choices: dict[str, HierarchyChoice] | None = None,
) -> GrainResult:
    """Every grain made to agree: `days` are the published day rows (unique_id, ds, mean, lo/hi) of the job's
    horizon; `grains` the coarse grains' Base. At the levels of `time_fallback` (where the temporal step scored
    worse than the days summed, or was never scored: forecasting.reconcile.temporal_guard) the span publishes the
    days as they are and the coarse periods as their sums (temporal BottomUp: coherent across time and, as the days
    are, across the hierarchy). Returns the published rows of every grain and the new days."""
    assert job.grains is not None
    bounds = _bounds(job.levels)
    coarse_rows, choices = coarse_published(hierarchy, grains, job.levels, choices)
    notes = [c.said for c in choices.values()]
    guard = {name: c.base_levels for name, c in choices.items() if c.base_levels}
    columns = ["grain", "unique_id", "ds", "reconciled", "mean", *bounds]
    # The temporal hierarchy is per series: each level's span is reconciled across time or summed, never both.
    fallback = hierarchy.members.filter(pl.col("level").is_in(time_fallback or []))["unique_id"].implode()
    parts = []
    for summed, label in ((False, TIME_RECONCILED), (True, DAYS_SUMMED)):
        mine = pl.col("unique_id").is_in(fallback) if summed else ~pl.col("unique_id").is_in(fallback)
        if days.filter(mine).height:
            rows, said = time_step(hierarchy, days.filter(mine), coarse_rows.filter(mine), job, days_summed=summed)
            notes += said
            parts.append(rows.with_columns(pl.lit(label).alias("reconciled")).select(columns))
    timed = pl.concat(parts)
    beyond = coarse_rows.join(timed.select("unique_id", "grain", "ds"), on=["unique_id", "grain", "ds"], how="anti")
    sizes = temporal_spec(job.grains)
    table = pl.concat(
        [timed, beyond.with_columns(pl.lit("hierarchy").alias("reconciled")).select(columns)]
    ).with_columns(pl.col("grain").replace_strict(sizes, return_dtype=pl.Int64).alias("days"))
    new_days = timed.filter(pl.col("grain") == job.grains.base).select("unique_id", "ds", "mean", *bounds)
    return GrainResult(table, new_days, notes, guard, time_fallback or [])
