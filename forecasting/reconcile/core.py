"""Reconciliation through hierarchicalforecast: BottomUp (baseline) and MinTrace (non-negative), intervals included.

Why conformal intervals (hierarchicalforecast's split-conformal sampler, Principato et al. 2024): the library's
normality sampler builds dense n x n covariances (7 GB per horizon step at 30,504 series) and its bootstrap and permbu
samplers refuse non-negative MinTrace. The conformal sampler reconciles the in-sample fits with the same P and takes
per-series quantiles of the signed errors: linear in the number of series, sparse-aware, non-negative compatible.
Caveat (the library's own): in-sample errors are smaller than out-of-sample ones, so intervals tend to be narrow;
the backtests measure actual coverage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from inspect import signature

import numpy as np
import polars as pl
from hierarchicalforecast.core import HierarchicalReconciliation
from hierarchicalforecast.utils import SMatrix

from forecasting.data.hierarchy import Hierarchy
from forecasting.job.errors import NOT_THE_DATA, MethodError, one_line
from forecasting.job.reconciliation import MIDDLE_OUT
from forecasting.job.schema import JobSpec
from forecasting.models.base import BASE
from forecasting.models.frames import calibration_periods
from forecasting.reconcile.methods import reconcilers, with_fallbacks
from forecasting.reconcile.middle_out import middle_out
from forecasting.reconcile.wide import tag_arrays, wide_to_methods


def publish_label(job: JobSpec) -> str:
    """The output label of the published reconciliation."""
    return job.reconciliation.label(job.reconciliation.publish)


def reconcile(
    hierarchy: Hierarchy,
    base: pl.DataFrame,
    fitted: pl.DataFrame,
    job: JobSpec,
    sparse: bool = True,
    notes: list[str] | None = None,
) -> pl.DataFrame:
    """Reconcile the Base column. Returns long rows: unique_id, ds, method, mean, lo-<L>/hi-<L>.

    `fitted` holds y and Base for every series (in-sample fits or backtest forecasts): the calibration set of the
    conformal interval sampler, and the residuals wls_var / mint_shrink estimate their error covariance from.
    A method the library refuses (an ill-conditioned or infeasible problem) falls back in the stated order
    (methods.fallbacks: the clip heuristic, then wls_struct); its rows keep the method's label and `notes` gets one
    line saying what was used instead and why.
    """
    notes = [] if notes is None else notes
    labelled = reconcilers(job, sparse, n_series=hierarchy.members.height)
    insample = fitted.select("unique_id", "ds", "y", BASE).drop_nulls()
    # Only the periods every series has (a balanced frame: reshaped by the library, not pivoted), unless a method
    # estimates variances from every period.
    balanced = not job.reconciliation.estimates_from_errors
    if balanced:
        insample = calibration_periods(insample, [BASE], job.reconciliation.calibration_window)
    frames = []
    y_hat = base.select("unique_id", "ds", pl.col(BASE).clip(lower_bound=0.0))
    if labelled and balanced and isinstance(hierarchy.S, SMatrix):
        frames += wide_to_methods(
            reconcile_arrays(hierarchy, y_hat, insample, labelled, job, notes), [lb for lb, _ in labelled], job
        )
    elif labelled:

        def run(reconciler: object) -> pl.DataFrame:
            return HierarchicalReconciliation(reconcilers=[reconciler]).reconcile(
                Y_hat_df=y_hat,
                S_df=hierarchy.S,  # sparse SMatrix or dense S_df, as aggregate() built it
                tags=tag_arrays(hierarchy),
                Y_df=insample,
                level=job.levels,
                intervals_method="conformal",
                seed=job.seed,
                is_balanced=balanced,
            )

        for label, reconciler in labelled:
            with failing([label], hierarchy):
                wide = with_fallbacks(label, reconciler, run, job, sparse, notes)
            frames += wide_to_methods(wide, [label], job)
    for method in job.reconciliation.methods:
        label = job.reconciliation.label(method)
        if label.startswith(MIDDLE_OUT):
            with failing([label], hierarchy):
                frames.append(middle_out(hierarchy, base, insample, job, label, sparse, notes))
    out = pl.concat(frames)
    if job.reconciliation.nonnegative_method:
        # Means are non-negative by construction (non-negative MinTrace; BottomUp of clipped base forecasts), so
        # clipping them changes nothing; sampled interval bounds can dip below zero and demand cannot.
        bounds = [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]
        out = out.with_columns([pl.col(c).clip(lower_bound=0.0) for c in bounds])
    return out


@contextmanager
def failing(labels: list[str], hierarchy: Hierarchy) -> Iterator[None]:
    """A reconciliation that fails inside hierarchicalforecast (zero in-sample errors, a non-negative QP that does
    not solve) fails the run with one message naming the method; the library's traceback stays on the exception."""
    try:
        yield
    except NOT_THE_DATA:
        raise
    except Exception as exc:
        raise MethodError(
            f"reconciliation {', '.join(labels)} failed on the {hierarchy.members.height} series: "
            f"{one_line(str(exc)) or type(exc).__name__}; leave it out of reconciliation.methods"
        ) from exc


def _by_row(frame: pl.DataFrame, rows: pl.DataFrame, column: str, what: str) -> np.ndarray:
    """`column` of a frame with the same periods for every series -> (series in S's row order, periods)."""
    per_series = frame.group_by("unique_id").len()["len"]
    placed = frame.join(rows, on="unique_id", how="inner")
    if placed.height != frame.height or per_series.len() != rows.height or per_series.n_unique() != 1:
        raise ValueError(f"reconcile: {what} must hold every series of S, each with the same periods")
    return placed.sort("row", "ds")[column].to_numpy().reshape(rows.height, -1)


def reconcile_arrays(
    hierarchy: Hierarchy,
    y_hat: pl.DataFrame,
    insample: pl.DataFrame,
    labelled: list[tuple[str, object]],
    job: JobSpec,
    notes: list[str] | None = None,
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
    notes = [] if notes is None else notes

    def run(reconciler: object) -> dict:
        wanted = signature(reconciler.fit_predict).parameters
        return reconciler(**{k: v for k, v in arrays.items() if k in wanted}, level=levels)

    for label, reconciler in labelled:
        with failing([label], hierarchy):
            result = with_fallbacks(label, reconciler, run, job, True, notes)
        name = f"{BASE}/{label}"
        bounds = [f"{name}-lo-{lv}" for lv in reversed(levels)] + [f"{name}-hi-{lv}" for lv in levels]
        quantiles = np.reshape(result["quantiles"], (out.height, -1))
        out = out.with_columns(**{name: result["mean"].flatten()}, **dict(zip(bounds, quantiles.T, strict=True)))
    return out
