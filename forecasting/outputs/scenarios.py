"""Staffing from published outputs, without refitting: what-if plans over a run's reconciled forecast and the
backtest of the plan over a published backtest. The CLI (`forecasting staff`) calls these."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import polars as pl

from forecasting.job.schema import JobSpec
from forecasting.job.staffing import Scenario
from forecasting.outputs import confine, runs
from forecasting.outputs.atomic import write_parquet_atomic
from forecasting.staffing.plans import (
    PlanSettings,
    apply_scenario,
    job_standards,
    plan_for_job,
    plan_shortfall,
    published_warehouse,
    shortfall_summary,
)
from forecasting.staffing.standards import StandardsError

VOLUME_CHANGE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse_volume_change(text: str) -> float:
    """'+15%' -> 0.15, '-10%' -> -0.10, '0.2' -> 0.2."""
    match = VOLUME_CHANGE.match(text)
    if not match:
        raise ValueError(f"--volume-change {text!r}: expected a change such as +15% or -0.1")
    value = float(match.group(1)) / (100.0 if match.group(2) else 1.0)
    if value <= -1:
        raise ValueError(f"--volume-change {text!r}: volume cannot fall by 100 % or more")
    return value


def scenarios_for(job: JobSpec, volume_change: str | None, event: str | None) -> tuple[str, list[Scenario]]:
    """A label and the what-ifs to apply in turn: a uniform volume change, then a named event / promotion from the
    job file (`staffing.scenarios`), whose uplift applies on top inside its window."""
    if job.staffing is None:
        raise StandardsError(f"job {job.name!r} has no staffing section (labour standards)")
    labels, chosen = [], []
    if volume_change is not None:
        change = parse_volume_change(volume_change)
        labels.append(f"volume{change * 100:+g}pct")
        chosen.append(Scenario(uplift=change))
    if event is not None:
        known = job.staffing.scenarios
        if event not in known:
            raise ValueError(f"--event {event!r}: not in the job's staffing.scenarios ({', '.join(known) or 'none'})")
        labels.append(event)
        chosen.append(known[event])
    return "_".join(labels) or "baseline", chosen


def run_warehouse_forecast(run_folder: Path) -> pl.DataFrame:
    return published_warehouse(pl.read_parquet(run_folder / "reconciled_forecasts.parquet"))


def what_if(
    job: JobSpec, run_as_of: str | None, volume_change: str | None, event: str | None
) -> tuple[Path, pl.DataFrame]:
    """Baseline and scenario plans from a published run's reconciled warehouse forecast (no refit), side by side:
    one row per warehouse x process x period x quantile with baseline and scenario headcount. Written atomically to
    <output_dir>/scenarios/<as-of>/<label>.parquet (forecasting.outputs.confine: never through a link)."""
    label, scenarios = scenarios_for(job, volume_change, event)
    folder = runs.run_dir(job, run_as_of)
    forecast = run_warehouse_forecast(folder)
    known = set(forecast["warehouse"])
    for scenario in scenarios:
        unknown = sorted(set(scenario.warehouses or []) - known)
        if unknown:
            raise ValueError(
                f"what-if {label}: warehouse(s) {', '.join(unknown)} not in the forecast ({', '.join(sorted(known))})"
            )
    # The backtest the run itself would read: the newest whose actuals end before the forecast's first period.
    backtest = runs.usable_backtest(job, forecast["ds"].min() - timedelta(days=1))
    baseline = plan_for_job(forecast, job, backtest)
    for scenario in scenarios:
        forecast = apply_scenario(forecast, scenario)
    changed = plan_for_job(forecast, job, backtest)
    keys = ["region", "warehouse", "process", "ds", "quantile"]
    table = (
        baseline.select(*keys, "volume", "labour_hours", "fte", "headcount")
        .join(
            changed.select(*keys, "volume", "labour_hours", "fte", "headcount", "crew_per_shift"),
            on=keys,
            suffix="_scenario",
        )
        .with_columns(pl.lit(label).alias("scenario"))
    )
    as_of = confine.as_of_name(str(runs.read_manifest(folder)["as_of"]))
    target = confine.output_file(confine.job_folder(job), "scenarios", as_of, f"{label}.parquet")
    write_parquet_atomic(table, target)
    return target, table


def staffing_backtest(job: JobSpec) -> tuple[Path, pl.DataFrame, pl.DataFrame]:
    """The plan's shortfall rates over the job's latest published backtest (every window's published reconciled
    warehouse forecast against the actual volume). Written to <output_dir>/staffing_backtests/<backtest>.parquet."""
    if job.staffing is None:
        raise StandardsError(f"job {job.name!r} has no staffing section (labour standards)")
    folder = runs.run_dir(job, None, subdir="backtests")
    warehouse = published_warehouse(pl.read_parquet(folder / "backtest_reconciled.parquet"))
    if warehouse.height == 0:
        raise ValueError(f"{folder}: the backtest has no published warehouse forecasts")
    columns = [
        "cutoff",
        "region",
        "warehouse",
        "ds",
        "y",
        "mean",
        *[c for c in warehouse.columns if c[:3] in ("lo_", "hi_")],
    ]
    standards = job_standards(job, warehouse["warehouse"].unique().to_list())
    settings = PlanSettings.for_job(job)
    parts = []
    for uncertainty in ("reconciled", "backtest"):
        part = plan_shortfall(warehouse.select(columns), standards, settings, uncertainty)
        parts.append(part.with_columns(pl.lit(uncertainty).alias("demand_uncertainty")))
    shortfall = pl.concat(parts)
    target = confine.output_file(confine.job_folder(job), "staffing_backtests", f"{folder.name}.parquet")
    write_parquet_atomic(shortfall, target)
    return target, shortfall, shortfall_summary(shortfall)
