"""New and short series: every series with at least one sale gets a forecast.

A series shorter than what a level's models need (the LightGBM's lags and conformal windows, SeasonalNaive's season)
is not an error: it is routed here, to the launch models of forecasting.models.launch_curve. Two rules, stated so a
planner can check them:

- **LaunchCurve** (a peer model): earlier launches in the same parent group (the bottom level's parent keys, e.g.
  the warehouse) say how sales at age a + h relate to the mean of their first a periods. The new series' forecast is
  its own mean so far times that ratio (the ratio of the peers' sums, so big launches weigh as they sell). Its
  intervals are the peers' own ratios' quantiles times the same mean: calibrated on earlier launches, not on the
  series' two or three points. A group with fewer than `MIN_PEERS` launches old enough uses every group's launches.
- **Flat** (the stated fallback, e.g. a single period and no launch old enough to learn from): the mean of the
  series' sales so far, repeated; intervals from Poisson quantiles of that mean.

A series' age is counted from its first row: in order-shaped data (no rows before a product's first sale) that is
its launch. A launch is "observed" when the series starts after the data does; only those teach the curve.

Models are offered per group where they can run: a bottom model whose need exceeds the longest bottom series, or an
aggregate model whose need exceeds the shortest aggregate series (a year of weekly data and a 52-week season), is
not run, and the summary says so in one line (statsforecast 2.1.1's SeasonalNaive raises in `_add_fitted_pi` on a
series of a season or less when in-sample intervals are asked for; 2.1.1 is the newest release).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from forecasting.data.hierarchy import Hierarchy
from forecasting.job.models import BASE
from forecasting.job.schema import JobSpec
from forecasting.models.launch_curve import FLAT, LAUNCH, future_steps, launch_forecast
from forecasting.models.launch_lightgbm import LAUNCH_LIGHTGBM

YOUNG_MODELS = (LAUNCH, FLAT, LAUNCH_LIGHTGBM)
CHOSEN = (LAUNCH, LAUNCH_LIGHTGBM)  # the launch models a backtest chooses between per level (Flat: the fallback)


@dataclass
class Routes:
    """Which series the level models forecast and which the launch models do, and what was not offered."""

    job: JobSpec  # the job with only the models offered (model lists, combinations, primary narrowed)
    lengths: pl.DataFrame  # unique_id, history_periods: every series of every level
    young: pl.DataFrame  # unique_id, model (LaunchCurve or Flat): series too short for their level's models
    need: int  # periods a bottom series needs for the bottom models offered
    notes: list[str] = field(default_factory=list)  # one line per model not offered, one for the young series

    @property
    def young_ids(self) -> pl.Series:
        return self.young["unique_id"]


def history_lengths(Y_df: pl.DataFrame) -> pl.DataFrame:
    return Y_df.group_by("unique_id").agg(pl.len().cast(pl.Int64).alias("history_periods"))


def route(hierarchy: Hierarchy, job: JobSpec, until: date | None = None) -> Routes:
    """The job narrowed to the models each group (the aggregate levels, the bottom one) can run, and the series too
    short for them; with `until` (a backtest's first cutoff), counting only the periods up to it (a series that
    starts later has 0). A group's model is offered when its longest series can feed it; a series shorter than
    what the group's offered models need (at the bottom at least `min_history`) goes to the launch models."""
    Y_df = hierarchy.Y_df if until is None else hierarchy.Y_df.filter(pl.col("ds") <= until)
    levels = hierarchy.members.select("unique_id", "level")
    sized = levels.join(history_lengths(Y_df), on="unique_id", how="left").with_columns(
        pl.col("history_periods").fill_null(0)
    )
    notes: list[str] = []
    spec = job.models
    primary = dict(spec.primary)
    offered_in: dict[bool, list[str]] = {}
    needs: dict[bool, int] = {}
    young_parts = []
    for bottom in (True, False):
        names = spec.bottom_models if bottom else spec.aggregate_models
        group = sized.filter((pl.col("level") == hierarchy.bottom) == bottom)
        if group.is_empty():
            offered_in[bottom], needs[bottom] = names, 0
            continue
        longest = int(group["history_periods"].max())
        where = hierarchy.bottom if bottom else "aggregate"
        offered = [n for n in names if job.minimum_history(n) <= longest]
        notes += [
            f"{n} not offered at the {where} level: the longest series there has {longest} periods, it needs "
            f"{job.minimum_history(n)}"
            for n in names
            if n not in offered
        ]
        need = max([1, *(job.minimum_history(m) for m in offered)] + ([job.min_history] if bottom else []))
        if not offered:  # every series of the group goes to the launch models
            need = longest + 1
            primary |= {lv: LAUNCH for lv in job.hierarchy.names if (lv == hierarchy.bottom) == bottom}
        offered_in[bottom], needs[bottom] = offered, need
        young_parts.append(group.filter(pl.col("history_periods") < need).select("unique_id"))
    run = set(spec.bottom_models) | set(spec.aggregate_models)
    offered_all = set(offered_in[True]) | set(offered_in[False])
    models = spec.model_copy(
        update={
            "bottom_models": offered_in[True],
            "aggregate_models": offered_in[False],
            "combinations": {n: m for n, m in spec.combinations.items() if set(m) <= offered_all},
            "primary": {lv: m for lv, m in primary.items() if m in offered_all or m not in run},
            "intermittent_model": spec.intermittent_model if spec.intermittent_model in offered_in[True] else None,
        }
    )
    young = pl.concat(young_parts).with_columns(pl.lit(LAUNCH).alias("model"))
    lengths = sized.select("unique_id", "history_periods")
    return Routes(job.model_copy(update={"models": models}), lengths, young, needs[True], notes)


def served_by(
    forecasts: pl.DataFrame,
    young: pl.DataFrame,
    prefer: dict[str, str] | None = None,
    members: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """unique_id, model: per series the launch model `prefer` names for its level (members: unique_id, level; a
    backtest's choice or the job's `launch_model` at the bottom) where its forecast exists at every step, else
    LaunchCurve where it does, else Flat."""
    present = [m for m in CHOSEN if m in forecasts.columns]
    complete = forecasts.group_by("unique_id").agg(pl.col(m).is_not_null().all().alias(m) for m in present)
    rows = young.join(complete, on="unique_id", how="left")
    if prefer and members is not None:
        rows = rows.join(members.select("unique_id", "level"), on="unique_id", how="left").with_columns(
            pl.col("level").replace_strict(prefer, default=LAUNCH).alias("prefer")
        )
    else:
        rows = rows.with_columns(pl.lit(LAUNCH).alias("prefer"))
    pick = pl.when(pl.col("model") == FLAT).then(pl.lit(FLAT))
    for m in present:
        pick = pick.when((pl.col("prefer") == m) & pl.col(m).fill_null(False)).then(pl.lit(m))
    if LAUNCH in present:
        pick = pick.when(pl.col(LAUNCH).fill_null(False)).then(pl.lit(LAUNCH))
    return rows.select("unique_id", pick.otherwise(pl.lit(FLAT)).alias("model"))


def parent_groups(hierarchy: Hierarchy) -> pl.DataFrame:
    """unique_id, group of the bottom series: the keys of the level above the bottom (the warehouse), joined."""
    names = hierarchy.spec.names
    above = hierarchy.spec.levels[names[-2]] if len(names) > 1 else []
    members = hierarchy.members.filter(pl.col("level") == hierarchy.bottom)
    key = pl.concat_str([pl.col(k).cast(pl.String) for k in above], separator="/") if above else pl.lit("all")
    return members.select("unique_id", key.alias("group"))


def pad_before_first(fitted: pl.DataFrame, hierarchy: Hierarchy) -> pl.DataFrame:
    """In-sample rows (y = 0, Base = 0) for the periods before each series' first one.

    The reconciled intervals are calibrated on the periods every series has (hierarchicalforecast's conformal
    sampler drops a period any series lacks); a product not yet listed sold nothing and was forecast nothing, so
    without these rows the newest launch would shrink the calibration set of every series to its own few periods."""
    if BASE not in fitted.columns:
        return fitted
    firsts = hierarchy.Y_df.group_by("unique_id").agg(pl.col("ds").min().alias("first"))
    start = firsts["first"].min()
    late = firsts.filter(pl.col("first") > start)
    if late.is_empty():
        return fitted
    grid = fitted.select(pl.col("ds").unique()).filter(pl.col("ds") >= start)
    pad = (
        late.lazy()
        .join(grid.lazy(), how="cross")
        .filter(pl.col("ds") < pl.col("first"))
        .select("unique_id", "ds", pl.lit(0.0).alias("y"), pl.lit(0.0).alias(BASE))
        .collect(engine="streaming")
    )
    return pl.concat([fitted, pad.cast({"ds": fitted.schema["ds"]})], how="diagonal_relaxed")


def launch_intervals(
    reconciled: pl.DataFrame, forecasts: pl.DataFrame, served: pl.DataFrame | None, levels: list[int]
) -> pl.DataFrame:
    """The new series' reconciled intervals: their launch model's bounds relative to its mean (calibrated on earlier
    launches) around the reconciled mean. The conformal sampler would otherwise give them the in-sample errors of a
    few periods, mostly the zeros before their launch."""
    if served is None or served.is_empty():
        return reconciled
    bounds = [f"{side}_{lv}" for lv in levels for side in ("lo", "hi")]
    relative = forecasts.join(served.select("unique_id"), on="unique_id").select(
        "unique_id",
        "ds",
        *[
            pl.when(pl.col(BASE) > 0).then(pl.col(f"{BASE}-{b.replace('_', '-')}") / pl.col(BASE)).alias(f"r_{b}")
            for b in bounds
        ],
    )
    out = reconciled.join(relative, on=["unique_id", "ds"], how="left")
    return out.with_columns(
        pl.when(pl.col(f"r_{b}").is_not_null()).then(pl.col("mean") * pl.col(f"r_{b}")).otherwise(pl.col(b)).alias(b)
        for b in bounds
    ).drop([f"r_{b}" for b in bounds])


def launch_backtest(
    Y_bottom: pl.DataFrame,
    young: pl.DataFrame,
    groups: pl.DataFrame,
    job: JobSpec,
    cutoffs: list[date],
    keys: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(forecasts, in-sample fits) of the launch models at each backtest cutoff, from the history up to it, with a
    `cutoff` column as the libraries' cross-validation gives. A series not launched by a cutoff was unknown then:
    its forecast is 0 (every bound too)."""
    forecasts, fitted = [], []
    for cutoff in cutoffs:
        history = Y_bottom.filter(pl.col("ds") <= cutoff)
        present = young.join(history.select("unique_id").unique(), on="unique_id")
        frames = []
        if present.height:
            ages = history.join(present.select("unique_id"), on="unique_id").group_by("unique_id").len()["len"]
            launched = launch_forecast(history, present, groups, job, int(ages.max()), keys)
            frames.append(launched.forecasts)
            fitted.append(launched.fitted.with_columns(pl.lit(cutoff).alias("cutoff")))
        absent = young.join(present, on="unique_id", how="anti")
        if absent.height:
            models = YOUNG_MODELS if keys is not None else (LAUNCH, FLAT)
            columns = [f"{m}{s}" for m in models for s in _suffixes(job.levels)]
            steps = future_steps(history["ds"].max(), job).select("ds")
            zero = absent.select("unique_id").join(steps, how="cross")
            frames.append(zero.with_columns(pl.lit(0.0).alias(c) for c in columns))
        forecasts.append(pl.concat(frames, how="diagonal_relaxed").with_columns(pl.lit(cutoff).alias("cutoff")))
    return pl.concat(forecasts).sort("unique_id", "cutoff", "ds"), pl.concat(fitted, how="diagonal_relaxed")


def _suffixes(levels: list[int]) -> list[str]:
    return ["", *[f"-{side}-{lv}" for lv in levels for side in ("lo", "hi")]]


def pad_backtest_fits(fitted: pl.DataFrame, hierarchy: Hierarchy) -> pl.DataFrame:
    """pad_before_first for a backtest's in-sample fits (a `cutoff` column): every model's fit and y are 0 in the
    periods before each series' first one."""
    firsts = hierarchy.Y_df.group_by("unique_id").agg(pl.col("ds").min().alias("first"))
    late = firsts.filter(pl.col("first") > firsts["first"].min())
    if late.is_empty():
        return fitted
    models = [c for c in fitted.columns if c not in ("unique_id", "ds", "cutoff", "y")]
    grid = fitted.select("cutoff", "ds").unique()
    pad = (
        late.lazy()
        .join(grid.lazy(), how="cross")
        .filter(pl.col("ds") < pl.col("first"))
        .select("unique_id", "ds", "cutoff", *[pl.lit(0.0).alias(c) for c in ["y", *models]])
        .collect(engine="streaming")
    )
    return pl.concat(
        [fitted, pad.cast({"ds": fitted.schema["ds"], "cutoff": fitted.schema["cutoff"]})], how="diagonal_relaxed"
    )


def split_scores(series_metrics: pl.DataFrame, young: pl.DataFrame, bottom: str) -> pl.DataFrame:
    """The published backtest's bottom-level accuracy and coverage, new series apart from established ones: mean
    per-series MAE, RMSSE, bias and 80 / 95 % coverage over the windows (series_metrics of kind `published`)."""
    rows = series_metrics.filter((pl.col("level") == bottom) & (pl.col("kind") == "published"))
    is_new = pl.col("unique_id").is_in(young["unique_id"].implode())
    return (
        rows.with_columns(pl.when(is_new).then(pl.lit("new")).otherwise(pl.lit("established")).alias("series_group"))
        .group_by("series_group", "model")
        .agg(
            pl.len().alias("series"),
            *[pl.col(c).filter(pl.col(c).is_finite()).mean() for c in ("mae", "rmsse", "bias")],
            pl.col("coverage_80").mean(),
            pl.col("coverage_95").mean(),
        )
        .sort("series_group", "model")
    )


def summary(served: pl.DataFrame | None, members: pl.DataFrame, need: int) -> dict[str, object]:
    """For the run summary: how many series the launch models served (per level and model), and the bottom
    threshold below which a series is new."""
    if served is None or served.is_empty():
        return {"count": 0, "shorter_than_periods": need, "served_by": {}, "per_level": {}}
    leveled = served.join(members.select("unique_id", "level"), on="unique_id")
    return {
        "count": leveled.height,
        "shorter_than_periods": need,
        "served_by": dict(sorted(leveled.group_by("model").len().rows())),
        "per_level": dict(sorted(leveled.group_by("level").len().rows())),
    }
