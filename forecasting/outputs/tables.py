"""The run's output tables in their published layout: one row per series x period x model (base forecasts) or
method (reconciled), each series' level and keys leading, built block by block while they are written."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from forecasting.data import hierarchy as hier
from forecasting.evaluate.plan import departures
from forecasting.job.context import Plan
from forecasting.job.schema import JobSpec
from forecasting.models.base import BaseForecasts
from forecasting.models.frames import wide_model_names, wide_to_long
from forecasting.outputs.atomic import Table, TableParts


def series_columns(job: JobSpec) -> list[str]:
    """Leading columns of every output table: which series, where in the hierarchy, which period."""
    return ["unique_id", "level", *job.hierarchy.columns, "ds"]


def _interval_columns(job: JobSpec) -> list[str]:
    return [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]


def decorate_reconciled(
    hierarchy: hier.Hierarchy, base: BaseForecasts, reconciled: pl.DataFrame, job: JobSpec
) -> pl.DataFrame:
    """The published layout of reconciled rows: level, keys, the model behind Base, whether the method is published."""
    return (
        with_history_length(hier.level_of(hierarchy.members, reconciled), base)
        .join(base.choice, on="unique_id", how="left")
        .with_columns(published_expression(base.plan).alias("published"))
        .select(
            *series_columns(job), "history_periods", "model", "method", "published", "mean", *_interval_columns(job)
        )
        .sort("level", "unique_id", "method", "ds")
    )


def with_history_length(frame: pl.DataFrame, base: BaseForecasts) -> pl.DataFrame:
    """Each row's series' history length in periods (a new product's few periods say why its forecast is plain)."""
    if base.lengths is None:
        return frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("history_periods"))
    return frame.join(base.lengths, on="unique_id", how="left")


SERIES_PER_BLOCK = 100_000  # output rows are built and written for this many series at a time


def published_expression(plan: Plan) -> pl.Expr:
    """Whether a row (with its `level` and `method`) is what the plan publishes at its level."""
    published = pl.lit(False)
    for level in sorted(plan.base):
        chosen = plan.published_at(level)
        published = pl.when(pl.col("level") == level).then(pl.col("method") == chosen).otherwise(published)
    return published


def series_blocks(hierarchy: hier.Hierarchy, size: int = SERIES_PER_BLOCK) -> list[pl.Series]:
    """unique_ids in the output tables' order (level, unique_id), in blocks of `size` series."""
    order = hierarchy.members.select("level", "unique_id").sort("level", "unique_id")["unique_id"]
    return [order.slice(start, size) for start in range(0, order.len(), size)] or [order]


def reconciled_table(
    hierarchy: hier.Hierarchy, base: BaseForecasts, reconciled: pl.DataFrame, job: JobSpec
) -> Iterator[pl.DataFrame]:
    """The reconciled_forecasts table block by block: together, the rows sorted by level, unique_id, method, ds."""
    for ids in series_blocks(hierarchy):
        yield decorate_reconciled(hierarchy, base, reconciled.filter(pl.col("unique_id").is_in(ids)), job)


def base_long(hierarchy: hier.Hierarchy, base: BaseForecasts, job: JobSpec) -> Iterator[pl.DataFrame]:
    """Wide Nixtla frame -> one row per series x period x model, for planners' SQL; block by block, together sorted
    by level, unique_id, model, ds."""
    for ids in series_blocks(hierarchy):
        wide = base.forecasts.filter(pl.col("unique_id").is_in(ids))
        out = with_history_length(
            hier.level_of(hierarchy.members, wide_to_long(wide, job.levels, ["unique_id", "ds"])), base
        )
        yield out.select(*series_columns(job), "history_periods", "model", "mean", *_interval_columns(job)).sort(
            "level", "unique_id", "model", "ds"
        )


def output_tables(
    hierarchy: hier.Hierarchy,
    base: BaseForecasts,
    reconciled: pl.DataFrame,
    staffing: pl.DataFrame,
    job: JobSpec,
    inventory: pl.DataFrame | None = None,
) -> dict[str, Table]:
    """The run's tables; the two long ones are built block by block while they are written. `inventory` (reorder
    points, forecasting.inventory) is written when the job has an inventory section."""
    keys = ["unique_id", "ds"]
    base_rows = sum(base.forecasts[name].count() for name in wide_model_names(base.forecasts, keys))
    return {
        "base_forecasts": TableParts(base_rows, lambda: base_long(hierarchy, base, job)),
        "reconciled_forecasts": TableParts(
            reconciled.height, lambda: reconciled_table(hierarchy, base, reconciled, job)
        ),
        "staffing": staffing,
    } | ({"inventory": inventory} if job.inventory is not None and inventory is not None else {})


def published_warnings(hierarchy: hier.Hierarchy, base: BaseForecasts, reconciled: pl.DataFrame) -> list[str]:
    """What the summary and the report warn about: levels that do not add up (Base or BottomUp published there),
    and levels whose published forecast moved further from Base than its backtest error explains."""
    warnings = [f"reconciliation fell back: {note}" for note in base.notes]
    if not base.plan.coherent:
        said = ", ".join(f"{level}: {method}" for level, method in sorted(base.plan.fallback.items()))
        warnings.append(
            f"not coherent: the reconciliation {base.plan.method} was worse than Base in the backtest at some "
            f"levels, which publish instead {said}"
        )
    levels = hierarchy.members.select("unique_id", "level")
    published = reconciled.join(levels, on="unique_id").filter(published_expression(base.plan))
    return warnings + departures(published, base.forecasts, hierarchy.members, base.plan)
