"""Reconciliation through hierarchicalforecast: BottomUp (baseline) and MinTrace (non-negative), intervals included.

Why conformal intervals (hierarchicalforecast's split-conformal sampler, Principato et al. 2024): the library's
normality sampler builds dense n x n covariances (7 GB per horizon step at 30,504 series) and its bootstrap and permbu
samplers refuse non-negative MinTrace. The conformal sampler reconciles the in-sample fits with the same P and takes
per-series quantiles of the signed errors: linear in the number of series, sparse-aware, non-negative compatible.
Caveat (the library's own): in-sample errors are smaller than out-of-sample ones, so intervals tend to be narrow;
the backtests measure actual coverage.

Middle-out (`MiddleOut_<upper>`, or `MiddleOut_<upper>@<level>` from a level other than the job's `middle_level`;
from the top level it is top-down): the few series down to the middle level (M5 monthly: total and 3 regions) are
reconciled among themselves (BottomUp from the middle level, or MinTrace with a dense covariance of
those series only, which mint_shrink needs), then every lower series is split from them by forecast proportions
(hierarchicalforecast's TopDown, sparse). Why: at 30,490 SKUs, MinTrace on the whole tree lets the SKU sum outvote
better aggregate forecasts, and a dense covariance of all 30,504 series does not fit in memory. Intervals: the
upper series get the conformal intervals of their own reconciliation; a lower series' base interval is scaled by
the same factor as its mean (reconciled / base), which is what forecast proportions do to every quantile.
"""

from __future__ import annotations

from datetime import date
from inspect import signature

import numpy as np
import polars as pl
from hierarchicalforecast.core import HierarchicalReconciliation
from hierarchicalforecast.methods import BottomUp, BottomUpSparse, MinTrace, MinTraceSparse, TopDown, TopDownSparse
from hierarchicalforecast.utils import SMatrix

from forecasting.config import JobSpec
from forecasting.hierarchy import Hierarchy, build_hierarchy
from forecasting.models import BASE
from forecasting.reconcile_spec import MIDDLE_OUT, middle_out_parts
from forecasting.specs import HierarchySpec

DENSE_ONLY = {"mint_shrink"}  # the library has no sparse version: an n x n shrunk covariance
# MinTrace variants whose weights are estimated from the calibration errors: their points move with the calibration.
FROM_ERRORS = {"wls_var", "mint_shrink"}
MAX_DENSE_SERIES = 5000  # 5,000^2 doubles = 200 MB per covariance; M5 monthly's 30,504 series would need 7.4 GB


def reconcilers(job: JobSpec, sparse: bool, n_series: int = 0) -> list[tuple[str, object]]:
    """(output label, hierarchicalforecast reconciler) per configured method."""
    spec = job.reconciliation
    chosen = []
    for method in spec.methods:
        label = spec.label(method)
        if label.startswith(MIDDLE_OUT):
            continue  # reconciled by middle_out()
        if label == "BottomUp":
            chosen.append((label, BottomUpSparse() if sparse else BottomUp()))
            continue
        variant = label.removeprefix("MinTrace_")
        dense_only = variant in DENSE_ONLY
        if dense_only and n_series > MAX_DENSE_SERIES:
            raise ValueError(
                f"reconciliation {label} needs a dense {n_series} x {n_series} covariance; "
                f"use wls_var or wls_struct above {MAX_DENSE_SERIES} series"
            )
        # One thread for mint_shrink: the library's covariance sums over OpenMP threads in no fixed order, and
        # reruns of the same backtest differed by up to 7e-10.
        threads = 1 if dense_only else job.n_jobs
        chosen.append((label, min_trace(variant, job, sparse=sparse and not dense_only, threads=threads)))
    return chosen


def min_trace(variant: str, job: JobSpec, sparse: bool, threads: int = 1) -> MinTrace:
    """The library's MinTrace for a variant, non-negative as the job says: sparse with the QP or the clip heuristic,
    dense with the QP (the library's dense MinTrace has only the QP)."""
    how = job.reconciliation.nonnegative_method
    if sparse:
        return MinTraceSparse(variant, nonnegative=how is not None, num_threads=threads, qp=how != "clip")
    return MinTrace(method=variant, nonnegative=how is not None, num_threads=threads)


def uses_error_history(job: JobSpec) -> bool:
    """Whether a configured method estimates error variances from the calibration errors (wls_var, mint_shrink):
    then it needs every period of them; otherwise only the conformal intervals read them."""
    spec = job.reconciliation
    upper = {middle_out_parts(label)[0] for label in map(spec.label, spec.methods) if label.startswith(MIDDLE_OUT)}
    return bool(upper & FROM_ERRORS) or any(
        getattr(reconciler, "insample", False) for _, reconciler in reconcilers(job, sparse=False)
    )


def calibration_periods(errors: pl.DataFrame, columns: list[str], last: int | None = None) -> pl.DataFrame:
    """The rows of the periods in which every series of `errors` has y and at least one of `columns` (only the
    `last` of those periods, if given).

    hierarchicalforecast's conformal sampler drops every period in which any series lacks y or a fit (its
    calibration set is the periods complete across the hierarchy), so passing only those periods gives the same
    intervals, without pivoting every series' whole in-sample history (25M rows at 1M series x 26 weeks)."""
    usable = errors.filter(pl.col("y").is_not_null() & pl.any_horizontal(pl.col(columns).is_not_null()))
    complete = usable.group_by("ds").len().filter(pl.col("len") == errors["unique_id"].n_unique())["ds"].sort()
    return errors.filter(pl.col("ds").is_in(complete.tail(last or complete.len()).implode()))


def publish_label(job: JobSpec) -> str:
    """The output label of the published reconciliation."""
    return job.reconciliation.label(job.reconciliation.publish)


def reconcile(
    hierarchy: Hierarchy, base: pl.DataFrame, fitted: pl.DataFrame, job: JobSpec, sparse: bool = True
) -> pl.DataFrame:
    """Reconcile the Base column. Returns long rows: unique_id, ds, method, mean, lo-<L>/hi-<L>.

    `fitted` holds y and Base for every series (in-sample fits or backtest forecasts): the calibration set of the
    conformal interval sampler, and the residuals wls_var / mint_shrink estimate their error covariance from.
    """
    labelled = reconcilers(job, sparse, n_series=hierarchy.members.height)
    insample = fitted.select("unique_id", "ds", "y", BASE).drop_nulls()
    # Only the periods every series has (a balanced frame: reshaped by the library, not pivoted), unless a method
    # estimates variances from every period.
    balanced = not uses_error_history(job)
    if balanced:
        insample = calibration_periods(insample, [BASE], job.reconciliation.calibration_window)
    frames = []
    y_hat = base.select("unique_id", "ds", pl.col(BASE).clip(lower_bound=0.0))
    if labelled and balanced and isinstance(hierarchy.S, SMatrix):
        frames += _long(reconcile_arrays(hierarchy, y_hat, insample, labelled, job), [lb for lb, _ in labelled], job)
    elif labelled:
        engine = HierarchicalReconciliation(reconcilers=[reconciler for _, reconciler in labelled])
        wide = engine.reconcile(
            Y_hat_df=y_hat,
            S_df=hierarchy.S,  # sparse SMatrix or dense S_df, as aggregate() built it
            tags=tag_arrays(hierarchy),
            Y_df=insample,
            level=job.levels,
            intervals_method="conformal",
            seed=job.seed,
            is_balanced=balanced,
        )
        frames += _long(wide, [label for label, _ in labelled], job)
    for method in job.reconciliation.methods:
        label = job.reconciliation.label(method)
        if label.startswith(MIDDLE_OUT):
            frames.append(middle_out(hierarchy, base, insample, job, label, sparse))
    out = pl.concat(frames)
    if job.reconciliation.nonnegative_method:
        # Means are non-negative by construction (non-negative MinTrace; BottomUp of clipped base forecasts), so
        # clipping them changes nothing; sampled interval bounds can dip below zero and demand cannot.
        bounds = [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]
        out = out.with_columns([pl.col(c).clip(lower_bound=0.0) for c in bounds])
    return out


def _by_row(frame: pl.DataFrame, rows: pl.DataFrame, column: str, what: str) -> np.ndarray:
    """`column` of a frame with the same periods for every series -> (series in S's row order, periods)."""
    per_series = frame.group_by("unique_id").len()["len"]
    placed = frame.join(rows, on="unique_id", how="inner")
    if placed.height != frame.height or per_series.len() != rows.height or per_series.n_unique() != 1:
        raise ValueError(f"reconcile: {what} must hold every series of S, each with the same periods")
    return placed.sort("row", "ds")[column].to_numpy().reshape(rows.height, -1)


def reconcile_arrays(
    hierarchy: Hierarchy, y_hat: pl.DataFrame, insample: pl.DataFrame, labelled: list[tuple[str, object]], job: JobSpec
) -> pl.DataFrame:
    """What HierarchicalReconciliation.reconcile does with a sparse S and balanced frames (sort to S's row order,
    reshape, each reconciler's fit_predict, one column per output), without its checks that build a Python set of
    every id of every frame: 10.6M Python iterations at 100k series (3-5 s of the 12 s), ~10x that at 1M. The same
    arrays reach the same reconcilers, so the numbers are the library's, bit for bit (tested)."""
    S: SMatrix = hierarchy.S  # type: ignore[assignment]
    rows = pl.DataFrame({"unique_id": S.row_labels, "row": np.arange(len(S.row_labels))})
    arrays = {
        "S": S.to_csr(),
        "y_hat": _by_row(y_hat, rows, BASE, "base forecasts"),
        "y_insample": _by_row(insample, rows, "y", "calibration errors"),
        "y_hat_insample": _by_row(insample, rows, BASE, "calibration errors"),
        "idx_bottom": np.arange(rows.height)[-S.sparse_shape[1] :],
        "tags": {
            level: rows.filter(pl.col("unique_id").is_in(pl.Series(ids).implode()))["row"].to_numpy()
            for level, ids in hierarchy.tags.items()
        },
        "intervals_method": "conformal",
        "num_samples": 200,  # as the library passes it; the conformal sampler draws none
        "seed": job.seed,
    }
    out = y_hat.join(rows, on="unique_id").sort("row", "ds").drop("row")
    levels = sorted(job.levels)
    for label, reconciler in labelled:
        wanted = signature(reconciler.fit_predict).parameters
        result = reconciler(**{k: v for k, v in arrays.items() if k in wanted}, level=levels)
        name = f"{BASE}/{label}"
        bounds = [f"{name}-lo-{lv}" for lv in reversed(levels)] + [f"{name}-hi-{lv}" for lv in levels]
        quantiles = np.reshape(result["quantiles"], (out.height, -1))
        out = out.with_columns(**{name: result["mean"].flatten()}, **dict(zip(bounds, quantiles.T, strict=True)))
    return out


def _long(wide: pl.DataFrame, labels: list[str], job: JobSpec) -> list[pl.DataFrame]:
    """The engine's wide output (Base/<method>, Base/<method>-lo-80, ...) -> one long frame per method."""
    mean_columns = [c for c in wide.columns if c.startswith(f"{BASE}/") and "-lo-" not in c and "-hi-" not in c]
    frames = []
    for label, column in zip(labels, mean_columns, strict=True):
        rename = {column: "mean"} | {
            f"{column}-{side}-{lv}": f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")
        }
        part = wide.select("unique_id", "ds", *rename).rename(rename).with_columns(pl.lit(label).alias("method"))
        frames.append(part)
    return frames


def tag_arrays(hierarchy: Hierarchy) -> dict[str, np.ndarray]:
    """The hierarchy's level -> ids, as the arrays hierarchicalforecast's reconcile() indexes with."""
    return {level: np.asarray(ids) for level, ids in hierarchy.tags.items()}


def upper_hierarchy(hierarchy: Hierarchy, middle: str) -> Hierarchy:
    """The levels down to `middle` as a hierarchy of their own (dense S: a handful of series), with the same ids.
    From the top level it is that one series (the split below is then top-down by forecast proportions)."""
    names = hierarchy.spec.names
    levels = {name: hierarchy.spec.levels[name] for name in names[: names.index(middle) + 1]}
    keys = levels[middle]
    nested = {child: parent for child, parent in hierarchy.spec.nested.items() if {child, parent} <= set(keys)}
    spec = HierarchySpec(columns=keys, levels=levels, nested=nested)
    # aggregate() wants a history; one dummy period is enough for S and the tags (the run may have dropped Y_df).
    rows = hierarchy.members.filter(pl.col("level") == middle).select(*keys, pl.lit(date(2000, 1, 1)).alias("ds"))
    return build_hierarchy(rows.with_columns(pl.lit(0.0).alias("y")), spec, sparse=False)


def middle_out(
    hierarchy: Hierarchy, base: pl.DataFrame, insample: pl.DataFrame, job: JobSpec, label: str, sparse: bool = True
) -> pl.DataFrame:
    """Reconcile the levels down to the middle one among themselves, then split every lower series from them by
    forecast proportions; lower intervals are the base intervals scaled like their means (module docstring)."""
    upper = upper_hierarchy(hierarchy, job.reconciliation.middle_level_of(label, hierarchy.spec.names))
    upper_ids = upper.members["unique_id"].to_list()
    variant = middle_out_parts(label)[0]
    if variant in DENSE_ONLY and len(upper_ids) > MAX_DENSE_SERIES:
        raise ValueError(f"reconciliation {label} needs a dense covariance of {len(upper_ids)} upper series")
    method = BottomUp() if variant == "BottomUp" else min_trace(variant, job, sparse=False)
    clipped = base.select("unique_id", "ds", pl.col(BASE).clip(lower_bound=0.0))
    is_upper = pl.col("unique_id").is_in(upper_ids)
    wide = HierarchicalReconciliation(reconcilers=[method]).reconcile(
        Y_hat_df=clipped.filter(is_upper),
        S_df=upper.S,
        tags=tag_arrays(upper),
        Y_df=insample.filter(is_upper),
        level=job.levels,
        intervals_method="conformal",
        seed=job.seed,
    )
    (upper_part,) = _long(wide, [label], job)
    # Coherent upper forecasts in place of the upper base ones: forecast proportions then leave them as they are
    # and split each middle series over its children in proportion to their base forecasts.
    proportions = (TopDownSparse if sparse else TopDown)(method="forecast_proportions")
    y_hat = pl.concat([upper_part.select("unique_id", "ds", pl.col("mean").alias(BASE)), clipped.filter(~is_upper)])
    split = HierarchicalReconciliation(reconcilers=[proportions]).reconcile(
        Y_hat_df=y_hat, S_df=hierarchy.S, tags=tag_arrays(hierarchy)
    )
    (column,) = [c for c in split.columns if c.startswith(f"{BASE}/")]
    bounds = [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]
    lower = (
        split.filter(~is_upper)
        .select("unique_id", "ds", pl.col(column).alias("mean"))
        .join(
            base.select("unique_id", "ds", BASE, *[f"{BASE}-{b.replace('_', '-')}" for b in bounds]),
            on=["unique_id", "ds"],
        )
        .with_columns(pl.when(pl.col(BASE) > 0).then(pl.col("mean") / pl.col(BASE)).otherwise(1.0).alias("factor"))
        .select(
            "unique_id",
            "ds",
            "mean",
            *[
                (pl.col(f"{BASE}-{b.replace('_', '-')}").clip(lower_bound=0.0) * pl.col("factor")).alias(b)
                for b in bounds
            ],
            pl.lit(label).alias("method"),
        )
    )
    return pl.concat([upper_part.select(lower.columns), lower])


def target_ratios(metrics: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Per reconciliation method and level: its `metric` divided by the best base model's at that level (the target
    is <= 1 at every level). `metrics`: level, kind, model, <metric> (scoring.scores(...).levels)."""
    best = (
        metrics.filter((pl.col("kind") == "base") & (pl.col("model") != BASE) & pl.col(metric).is_not_null())
        .group_by("level")
        .agg(pl.col(metric).min().alias("best_base"))
    )
    return (
        metrics.filter(pl.col("kind") == "reconciled")
        .join(best, on="level")
        .select("level", "model", (pl.col(metric) / pl.col("best_base")).alias("ratio"))
    )


def least_worst_method(metrics: pl.DataFrame, metric: str) -> str:
    """The reconciliation whose worst level, relative to the best base model there, is the least bad: the choice the
    target (no worse than the best base forecast at any level) asks for. Ties go to the alphabetically first."""
    worst = target_ratios(metrics, metric).group_by("model").agg(pl.col("ratio").max()).sort("ratio", "model")
    return worst["model"][0]
