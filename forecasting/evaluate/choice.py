"""Choices made from a published backtest's scores: the model behind Base per level (lowest `choice_metric`) and
the reconciliation to publish (the least bad worst level against the best base model)."""

from __future__ import annotations

import polars as pl

from forecasting.job.context import FoundBacktest
from forecasting.job.schema import JobSpec
from forecasting.models.base import BASE
from forecasting.reconcile.core import publish_label


def primary_models(job: JobSpec, backtest: FoundBacktest) -> tuple[dict[str, str], str]:
    """The model behind Base per level, and why: the job file's `primary`, or with `choose_from_backtest` the base
    model with the lowest `choice_metric` at that level in `backtest` (the one the run reads;
    among the models run there)."""
    primary = dict(job.models.primary)
    if not job.models.choose_from_backtest:
        return primary, "job file"
    folder, missing = backtest
    if folder is None:
        return primary, f"job file ({missing})"
    chosen = best_models(pl.read_parquet(folder / "metrics.parquet"), job)
    return primary | chosen, f"lowest {job.models.choice_metric.upper()} per level in backtest {folder.name}"


def published_method(job: JobSpec, backtest: FoundBacktest) -> tuple[str, str]:
    """The reconciliation the run publishes, and why: the job file's `publish`, or with
    `reconciliation.choose_from_backtest` least_worst_method over `backtest` (the one the run reads)."""
    spec, metric = job.reconciliation, job.models.choice_metric
    if not spec.choose_from_backtest:
        return publish_label(job), "job file"
    folder, missing = backtest
    if folder is None:
        return publish_label(job), f"job file ({missing})"
    metrics = pl.read_parquet(folder / "metrics.parquet")
    run = [spec.label(m) for m in spec.methods]
    metrics = metrics.filter((pl.col("kind") == "base") | pl.col("model").is_in(run))
    if metric not in metrics.columns or not metrics.filter(pl.col("kind") == "reconciled").height:
        return publish_label(job), f"job file (backtest {folder.name} has no {metric} of its methods)"
    return least_worst_method(metrics, metric), f"least worst level vs the best base in backtest {folder.name}"


def best_models(metrics: pl.DataFrame, job: JobSpec) -> dict[str, str]:
    """Per level, the base model with the lowest `choice_metric` in backtest metrics (ties: by name)."""
    metric = job.models.choice_metric
    if metric not in metrics.columns:
        return {}
    usable = metrics.filter((pl.col("kind") == "base") & (pl.col("model") != BASE) & pl.col(metric).is_finite())
    chosen = {}
    for level in job.hierarchy.names:
        allowed = job.models.pool(level, job.hierarchy.bottom)
        best = usable.filter((pl.col("level") == level) & pl.col("model").is_in(list(allowed))).sort(metric, "model")
        if best.height:
            chosen[level] = best["model"][0]
    return chosen


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
