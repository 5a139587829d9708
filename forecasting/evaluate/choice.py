"""The plan a nightly run publishes with: the one its backtest chose from all of its windows (stored in the
backtest's manifest, forecasting.evaluate.plan), checked against the job as it is now; or the job file's when there
is no usable backtest. Also the reconciliation ratios the reference benchmarks print."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from forecasting.evaluate.plan import combination_weights
from forecasting.job.context import FoundBacktest, Plan
from forecasting.job.models import BASE
from forecasting.job.schema import JobSpec
from forecasting.reconcile.core import publish_label

MANIFEST = "manifest.json"  # a published backtest's manifest (forecasting.outputs.runs writes it)


def job_file_plan(job: JobSpec) -> Plan:
    """The plan without a backtest: Base per level from the job file (Mean by default), Weighted with equal weights,
    the job's `publish` method, no fallback, intervals as reconciled."""
    return Plan(
        base=job.primary_models(),
        weights=combination_weights(pl.DataFrame(), [], job),
        method=publish_label(job),
        reasons=["Base per level and the reconciliation from the job file"],
    )


def run_plan(job: JobSpec, backtest: FoundBacktest) -> tuple[Plan, str]:
    """The plan the run publishes with, and where it comes from."""
    folder, missing = backtest
    default = job_file_plan(job)
    if folder is None:
        return default, f"job file ({missing})"
    stored = json.loads((Path(folder) / MANIFEST).read_text()).get("plan")
    if stored is None:
        return default, f"job file (backtest {Path(folder).name} has no plan: run `forecasting backtest` again)"
    plan = Plan.from_dict(stored)
    unknown = stale_parts(plan, job)
    if unknown:
        return (
            default,
            f"job file (backtest {Path(folder).name} chose {', '.join(unknown)}, which the job no longer runs)",
        )
    return plan, f"backtest {Path(folder).name} ({len(plan.windows)} windows)"


def stale_parts(plan: Plan, job: JobSpec) -> list[str]:
    """What a stored plan names that the job (as it is now) does not run: models, levels or methods."""
    bottom = job.hierarchy.bottom
    unknown = [
        f"{model} at {level}" for level, model in plan.base.items() if model not in job.models.pool(level, bottom)
    ]
    unknown += [level for level in plan.base if level not in job.hierarchy.names]
    labels = {job.reconciliation.label(m) for m in job.reconciliation.methods} | {BASE}
    unknown += [m for m in {plan.method, *plan.fallback.values()} if m not in labels]
    if set(plan.base) != set(job.hierarchy.names):
        unknown.append("a different set of levels")
    return unknown


def target_ratios(metrics: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Per reconciliation method and level: its `metric` divided by the best base model's at that level (the target
    is <= 1 at every level). `metrics`: level, kind, model, <metric> (scoring.scores(...).levels)."""
    best = (
        metrics.filter((pl.col("kind") == "base") & (pl.col("model") != BASE) & pl.col(metric).is_not_null())
        .group_by("level")
        .agg(pl.col(metric).min().alias("best_base"))
    )
    return (
        metrics.filter(pl.col("kind").is_in(["reconciled", "published"]))
        .join(best, on="level")
        .select("level", "model", (pl.col(metric) / pl.col("best_base")).alias("ratio"))
    )
