"""Base (BASE): per series, the one model's forecast that is reconciled. The model behind it is the level's primary
model (the job file's, or the one a backtest chose), or the intermittent-demand model for sparse bottom series."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from forecasting.data.hierarchy import Hierarchy
from forecasting.job.context import FoundBacktest, Plan
from forecasting.job.models import BASE
from forecasting.job.schema import JobSpec
from forecasting.models.frames import interval_suffixes
from forecasting.models.inputs import split_levels
from forecasting.models.intermittent import intermittent_ids

__all__ = ["BASE", "BaseForecasts", "base_columns", "choose_base", "select_base"]


@dataclass
class BaseForecasts:
    forecasts: pl.DataFrame  # wide: unique_id, ds, every model (+ intervals), Base
    fitted: pl.DataFrame  # wide in-sample: unique_id, ds, y, every model, Base
    choice: pl.DataFrame  # unique_id, model (the model behind Base)
    choice_source: str  # why those models: the job file or a backtest
    calibration: pl.DataFrame  # unique_id, ds, y, Base: errors the reconciled intervals are calibrated on
    calibration_source: str
    # The backtest the run reads for everything it takes from one, and the plan chosen from it (or the job file's).
    backtest: FoundBacktest
    plan: Plan
    plan_source: str
    # What reconciliation had to fall back from (forecasting.reconcile.methods.fallbacks), for the summary.
    notes: list[str] = field(default_factory=list)
    # unique_id, ds, family, effect: Base split into driver families (forecasting.models.base_drivers); None when
    # the job's `drivers` is off.
    drivers: pl.DataFrame | None = None
    # Every series' history length (unique_id, history_periods) and the new ones' launch model (unique_id, model).
    lengths: pl.DataFrame | None = None
    young: pl.DataFrame | None = None
    offer_notes: list[str] = field(default_factory=list)  # models not offered, and why
    need: int = 0  # periods a bottom series needs for the bottom models; shorter ones are new (young.route)
    # Jobs with time grains: each coarse grain's Base (forecasting.models.grains), then every grain's published rows
    # (forecasting.outputs.grains), set by the reconcile stage.
    grains: dict | None = None
    grain_rows: pl.DataFrame | None = None
    grain_time_guard: dict | None = None  # the temporal step's guard (forecasting.reconcile.temporal_guard)


def choose_base(
    hierarchy: Hierarchy, job: JobSpec, primary: dict[str, str] | None = None, young: pl.DataFrame | None = None
) -> pl.DataFrame:
    """unique_id -> model behind Base: the level's primary model, or the intermittent model for sparse bottom
    series; `young` (unique_id, model): series too short for their level's models, and the launch model that
    serves each (forecasting.models.young)."""
    spec = job.models
    primary = primary or job.primary_models()
    intermittent: set[str] = set()
    if spec.intermittent_model is not None:
        intermittent = intermittent_ids(split_levels(hierarchy)[1], spec.intermittent_adi)
    choice = hierarchy.members.select(
        "unique_id",
        pl.when(pl.col("unique_id").is_in(list(intermittent)))
        .then(pl.lit(spec.intermittent_model))
        .otherwise(pl.col("level").replace_strict(primary))
        .alias("model"),
    )
    if young is None or young.is_empty():
        return choice
    served = choice.join(young.rename({"model": "launch"}), on="unique_id", how="left")
    return served.select("unique_id", pl.coalesce("launch", "model").alias("model"))


def select_base(
    frame: pl.DataFrame, choice: pl.DataFrame, levels: list[int], with_intervals: bool = True
) -> pl.DataFrame:
    """Add the Base column (and its intervals): per series, the chosen model's values. `choice`: unique_id, model."""
    frame = frame.join(choice, on="unique_id", how="left")
    names = choice["model"].unique().to_list()
    exprs = []
    for suffix in interval_suffixes(levels, with_intervals):
        expr = pl.lit(None, dtype=pl.Float64)
        for name in names:
            expr = pl.when(pl.col("model") == name).then(pl.col(f"{name}{suffix}")).otherwise(expr)
        exprs.append(expr.alias(f"{BASE}{suffix}"))
    return frame.with_columns(exprs).drop("model")


def base_columns(levels: list[int]) -> list[str]:
    """Base's mean and interval columns in a wide frame."""
    return [f"{BASE}{suffix}" for suffix in interval_suffixes(levels)]
