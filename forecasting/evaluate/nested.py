"""Nested rolling-origin evaluation: each backtest window is forecast, reconciled and published with the plan chosen
only from the windows before it (forecasting.evaluate.plan), exactly as the nightly run chooses from a published
backtest. The windows' published forecasts, scored, are what a user would have got; the same rows with the plan chosen
from every window (the in-sample choice) are scored beside them, to show what choosing on the scored windows
flatters.

Per window, in order: Weighted's weights from the earlier windows -> score Weighted -> the plan -> Base per series
-> reconcile every method (calibrated on the earlier windows' Base errors with `calibration: backtest`) -> score
Base and the methods -> the published rows (the plan's method, or its fallback per level), intervals scaled by the
plan's factors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from forecasting.data import hierarchy as hier
from forecasting.data import transforms
from forecasting.evaluate import plan as plans
from forecasting.job.models import BASE, FITTED_COMBINATIONS
from forecasting.job.schema import JobSpec
from forecasting.models import young
from forecasting.models.base import base_columns, choose_base, select_base
from forecasting.models.combinations import add_fitted
from forecasting.models.frames import wide_to_long
from forecasting.reconcile import core as rec
from forecasting.reconcile.calibration import out_of_sample_errors

KEYS = ["unique_id", "ds", "cutoff"]
Scorer = Callable[[pl.DataFrame, str, str], pl.DataFrame]  # (long rows, by, kind) -> per-window level scores


@dataclass
class Windows:
    """Everything the nested pass produced, window by window."""

    base: list[pl.DataFrame] = field(default_factory=list)  # long rows of Weighted and Base (the nested choice)
    reconciled: list[pl.DataFrame] = field(default_factory=list)  # long rows of every method
    published: list[pl.DataFrame] = field(default_factory=list)  # published rows, intervals scaled
    raw_published: list[pl.DataFrame] = field(default_factory=list)  # the same before the interval factors
    base_scores: list[pl.DataFrame] = field(default_factory=list)  # per-window level scores, candidates + Base
    reconciled_scores: list[pl.DataFrame] = field(default_factory=list)
    plans: list[plans.Plan] = field(default_factory=list)


@dataclass
class Context:
    """What every window needs: the hierarchy, the job, the candidates' wide forecasts and fits, their actuals and
    per-window scores, the scorer, and the Base rows of an earlier published backtest to calibrate on."""

    hierarchy: hier.Hierarchy
    job: JobSpec
    forecasts: pl.DataFrame
    fitted: pl.DataFrame
    actuals: pl.DataFrame
    candidate_scores: pl.DataFrame
    score: Scorer
    prior_base: pl.DataFrame | None = None
    notes: list[str] = field(default_factory=list)  # reconciliation fallbacks of every window, as they happen
    young: pl.DataFrame | None = None  # unique_id, model: the launch model serving each new series

    @property
    def young_ids(self) -> pl.Series | None:
        return None if self.young is None else self.young["unique_id"]

    @property
    def levels_of(self) -> pl.DataFrame:
        return self.hierarchy.members.select("unique_id", "level")

    def long(self, wide: pl.DataFrame) -> pl.DataFrame:
        """Wide rows of some models -> long rows with level, keys and actuals."""
        rows = wide_to_long(wide, self.job.levels, KEYS)
        return hier.level_of(self.hierarchy.members, rows).join(self.actuals, on=KEYS, how="left")


def published_rows(reconciled: pl.DataFrame, base: pl.DataFrame, plan: plans.Plan) -> pl.DataFrame:
    """Per level, the rows of the method the plan publishes there (`Base`: the Base rows, as method Base)."""
    parts = []
    for (level,), rows in reconciled.group_by("level"):
        chosen = plan.published_at(level)
        if chosen == BASE:
            source = base.filter((pl.col("level") == level) & (pl.col("model") == BASE)).rename({"model": "method"})
            parts.append(source.select(rows.columns))
        else:
            parts.append(rows.filter(pl.col("method") == chosen))
    return pl.concat(parts).with_columns(pl.lit(True).alias("published"))


def publish_window(
    context: Context,
    window_fc: pl.DataFrame,
    window_fit: pl.DataFrame,
    plan: plans.Plan,
    cutoff: date,
    earlier: pl.DataFrame | None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(Base rows, reconciled rows of every method, raw published rows) of one window under `plan`."""
    job, hierarchy = context.job, context.hierarchy
    served = None
    if context.young is not None:  # this window's launch model per new series: the plan's, where it has a forecast
        routed = context.young.with_columns(pl.lit(young.LAUNCH).alias("model"))
        served = young.served_by(window_fc, routed, plan.launch, hierarchy.members)
    choice = choose_base(hierarchy, job, plan.base, served)
    window_fc = select_base(window_fc, choice, job.levels)
    window_fit = select_base(window_fit, choice, job.levels, with_intervals=False)
    base_rows = context.long(window_fc.select(*KEYS, *base_columns(job.levels)))
    calibration, source = calibration_for(hierarchy, job, earlier, window_fit.drop("cutoff"), cutoff)
    notes: list[str] = []
    reconciled = rec.reconcile(hierarchy, window_fc, calibration, job, notes=notes)
    reconciled = young.launch_intervals(reconciled, window_fc, served, job.levels)
    reconciled = transforms.zero_closed_days(reconciled, job.closed_periods)
    context.notes += [f"{cutoff}: {note}" for note in notes]
    reconciled = hier.level_of(hierarchy.members, reconciled.with_columns(pl.lit(cutoff).alias("cutoff")))
    reconciled = reconciled.join(context.actuals, on=KEYS, how="left").with_columns(
        pl.lit(source).alias("calibration"), pl.lit(False).alias("published")
    )
    base_for_publish = base_rows.with_columns(pl.lit(source).alias("calibration"), pl.lit(False).alias("published"))
    return base_rows, reconciled, published_rows(reconciled, base_for_publish, plan)


def calibration_for(
    hierarchy: hier.Hierarchy, job: JobSpec, earlier: pl.DataFrame | None, window_fit: pl.DataFrame, cutoff: date
) -> tuple[pl.DataFrame, str]:
    """The errors a window's reconciled intervals are calibrated on, as the nightly run would have had them at that
    cutoff: its in-sample fits, or with `calibration: backtest` the out-of-sample Base errors of the earlier windows
    (and of an earlier published backtest), periods up to the cutoff; in-sample while fewer than 2 per series."""
    if job.reconciliation.calibration == "backtest" and earlier is not None:
        errors = out_of_sample_errors(earlier.filter(pl.col("cutoff") < cutoff), cutoff, hierarchy.members.height)
        if errors is not None:
            return errors, "earlier windows"
    return window_fit, "in-sample fits"


def run_windows(context: Context, progress: Callable[[str], None]) -> Windows:
    """The nested pass over every window, oldest first."""
    job = context.job
    out = Windows()
    cutoffs = sorted(context.forecasts["cutoff"].unique().to_list())
    ends = dict(context.forecasts.group_by("cutoff").agg(pl.col("ds").max()).iter_rows())
    base_scores = context.candidate_scores
    for k, cutoff in enumerate(cutoffs):
        # Only windows whose every actual was known at this cutoff (with a step shorter than the horizon, the
        # windows just before it end after it).
        prior = [c for c in cutoffs[:k] if ends[c] <= cutoff]
        progress(f"window {k + 1}/{len(cutoffs)} (cutoff {cutoff}): plan from {len(prior)} earlier windows")
        weights = plans.combination_weights(base_scores, prior, job)
        window_fc = add_fitted(
            context.forecasts.filter(pl.col("cutoff") == cutoff), weights, context.levels_of, job.levels
        )
        window_fit = add_fitted(
            context.fitted.filter(pl.col("cutoff") == cutoff),
            weights,
            context.levels_of,
            job.levels,
            with_intervals=False,
        )
        fitted_names = [c for c in window_fc.columns if c.split("-")[0] in FITTED_COMBINATIONS]
        weighted = context.long(window_fc.select(*KEYS, *fitted_names)) if fitted_names else None
        if weighted is not None and weighted.height:
            base_scores = pl.concat([base_scores, context.score(weighted, "model", "base")], how="diagonal_relaxed")
        raw_prior = pl.concat(out.raw_published) if out.raw_published else None
        reconciled_scores = pl.concat(out.reconciled_scores) if out.reconciled_scores else base_scores.clear()
        plan = plans.choose(base_scores, reconciled_scores, raw_prior, prior, job, context.young_ids)
        if context.young is not None:
            progress(f"  new series served by {', '.join(f'{lv}: {m}' for lv, m in sorted(plan.launch.items()))}")
        earlier = _earlier_base(context, out)
        base_rows, reconciled, raw = publish_window(context, window_fc, window_fit, plan, cutoff, earlier)
        base_scores = pl.concat([base_scores, context.score(base_rows, "model", "base")], how="diagonal_relaxed")
        out.reconciled_scores.append(context.score(reconciled, "method", "reconciled"))
        out.base.append(base_rows if weighted is None else pl.concat([weighted, base_rows], how="diagonal_relaxed"))
        out.reconciled.append(reconciled)
        out.raw_published.append(raw)
        out.published.append(plans.scale_published(raw, plan.interval_scale, job.levels, context.young_ids))
        out.plans.append(plan)
    out.base_scores = [base_scores]
    return out


def _earlier_base(context: Context, out: Windows) -> pl.DataFrame | None:
    """The Base rows windows calibrate on (this backtest's so far, and an earlier published backtest's)."""
    if context.job.reconciliation.calibration != "backtest":
        return None
    columns = ["unique_id", "ds", "cutoff", "model", "y", "mean"]
    parts = [rows.filter(pl.col("model") == BASE).select(columns) for rows in out.base]
    if context.prior_base is not None:
        parts.insert(0, context.prior_base.filter(pl.col("model") == BASE).select(columns))
    return pl.concat(parts) if parts else None


def in_sample_published(context: Context, windows: Windows, final: plans.Plan) -> pl.DataFrame:
    """Every window published with the plan chosen from all of them (the in-sample choice), reusing a window's
    reconciliation when its nested Base was the same."""
    job = context.job
    cutoffs = sorted(context.forecasts["cutoff"].unique().to_list())
    published = []
    for k, cutoff in enumerate(cutoffs):
        nested = windows.plans[k]
        same_base = (
            nested.base == final.base
            and nested.launch == final.launch
            and (not set(FITTED_COMBINATIONS) & set(final.base.values()) or nested.weights == final.weights)
        )
        if same_base:
            base = (
                windows.base[k]
                .filter(pl.col("model") == BASE)
                .with_columns(pl.lit("").alias("calibration"), pl.lit(False).alias("published"))
            )
            raw = published_rows(windows.reconciled[k], base, final)
        else:
            fc = add_fitted(
                context.forecasts.filter(pl.col("cutoff") == cutoff), final.weights, context.levels_of, job.levels
            )
            fit = add_fitted(
                context.fitted.filter(pl.col("cutoff") == cutoff),
                final.weights,
                context.levels_of,
                job.levels,
                with_intervals=False,
            )
            _, _, raw = publish_window(context, fc, fit, final, cutoff, _earlier_base(context, windows))
        published.append(plans.scale_published(raw, final.interval_scale, job.levels, context.young_ids))
    return pl.concat(published)
