"""The nightly job as stage functions. The CLI and the Prefect flows call exactly these, in this order:
load -> validate -> aggregate -> base_forecasts -> reconcile -> staff -> inventory -> write; and the backtest, which
loads, validates and aggregates the same way, then backtests and publishes."""

from __future__ import annotations

import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from forecasting.data import freshness, order_lines, quality, sources, transforms
from forecasting.data import hierarchy as hier
from forecasting.data.stages import Loaded, Validated
from forecasting.evaluate.backtest import Backtest, run_backtest
from forecasting.evaluate.choice import run_plan
from forecasting.evaluate.driver_check import event_check, scored_cutoffs
from forecasting.evaluate.plan import with_published
from forecasting.inventory import quantities as inventory_quantities
from forecasting.job.errors import InputError, one_line
from forecasting.job.schema import JobSpec
from forecasting.models import base as base_models
from forecasting.models import young
from forecasting.models.base import BaseForecasts
from forecasting.models.base_drivers import base_drivers
from forecasting.models.combinations import add_fitted
from forecasting.models.core import explained_levels
from forecasting.models.grains import forecast_grains
from forecasting.outputs import confine, runs
from forecasting.outputs.atomic import Table
from forecasting.outputs.drivers import drivers_table
from forecasting.outputs.grains import grain_table, with_grains
from forecasting.outputs.locks import output_lock
from forecasting.outputs.tables import decorate_reconciled, published_warnings
from forecasting.outputs.tables import output_tables as layout_tables
from forecasting.reconcile import core as rec
from forecasting.reconcile.calibration import calibration_set
from forecasting.reconcile.temporal_guard import publish_grains
from forecasting.staffing import plans as staffing_plans
from forecasting.staffing.grains import with_weeks
from forecasting.stage_log import StageTimer, in_stage

PACKAGES = ["duckdb", "polars", "statsforecast", "mlforecast", "hierarchicalforecast", "lightgbm", "prefect", "numpy"]


def load(job: JobSpec, as_of: date | None = None) -> Loaded:
    """The gate's checks on the raw rows, the as-of date checked against the data's real last day, the history."""
    con, labels = sources.connect_sources(job)
    label = labels["raw_sales"]
    lines = None
    try:
        if job.source.order_lines is not None:
            lines = order_lines.prepare(con, job, label)  # the lines summed into raw_sales by the job's rules
        quality.check_raw(con, job, label)
        covered = sources.coverage(con, job)
        as_of, warnings = freshness.resolve_as_of(job, as_of, covered, label)
        history = sources.read_history(con, job, as_of, covered)
        prices = sources.read_prices(con, job)
        calendar = sources.read_calendar_features(con, job)
    except UNREADABLE as exc:  # a damaged file (a compressed page that does not decompress), a value out of range
        if not isinstance(exc, duckdb.IOException) and not READING_A_FILE.search(str(exc)):
            raise  # DuckDB's words for a fault of ours (a parameter the SQL does not take): an internal error
        raise sources.SourceError(f"{label}: cannot be read: {one_line(exc)}") from exc
    finally:
        con.close()
    return Loaded(history, prices, calendar, source_label=label, as_of=as_of, warnings=warnings, order_lines=lines)


UNREADABLE = (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException, duckdb.OutOfRangeException)
READING_A_FILE = re.compile(r"file|CSV|parquet|Could not convert|out of range", re.IGNORECASE)


def validate(loaded: Loaded, job: JobSpec) -> Validated:
    complete, periods = hier.complete_periods(loaded.history, job)
    checked = quality.check_history(complete, job, loaded.source_label, periods.kept_to)
    if job.staffing is not None and "warehouse" in checked.columns:
        # Before any fitting: a bad labour-standards file should fail in seconds, not after the forecasts.
        staffing_plans.job_standards(job, checked["warehouse"].unique().to_list())
    return Validated(history=checked, periods=periods, warnings=list(loaded.warnings), order_lines=loaded.order_lines)


def aggregate(validated: Validated, job: JobSpec, sparse: bool = True) -> hier.Hierarchy:
    return hier.build_hierarchy(validated.history, job.hierarchy, sparse=sparse)


def load_hierarchy(job: JobSpec, as_of: date | None = None) -> tuple[Loaded, hier.Hierarchy]:
    """The first three stages in one call, for everything that needs the history but not a run (backtests, the
    report, the reference benchmarks)."""
    with in_stage("load"):
        loaded = load(job, as_of)
    with in_stage("validate"):
        validated = validate(loaded, job)
    with in_stage("aggregate"):
        return loaded, aggregate(validated, job)


def history(job: JobSpec, as_of: date) -> pl.DataFrame:
    """All levels' history (unique_id, ds, y) through the same load / validate / aggregate as a run: what the
    report draws behind the forecasts."""
    return load_hierarchy(job, as_of)[1].Y_df


def base_forecasts(
    hierarchy: hier.Hierarchy, prices: pl.DataFrame | None, job: JobSpec, calendar: pl.DataFrame | None = None
) -> BaseForecasts:
    """Every model the job runs at every level (forecasting.models.core), the Weighted combination with the plan's
    weights, then Base per series: the plan's candidate at its level (chosen from the backtest the run reads, or the
    job file's), the intermittent model for sparse bottom series; and the errors the reconciled intervals are
    calibrated on."""
    routes = young.route(hierarchy, job)
    forecasts, fitted, explained = explained_levels(
        hierarchy, prices, calendar, job, explain=job.drivers, routes=routes
    )
    backtest = runs.usable_backtest(job, hierarchy.Y_df["ds"].max())
    plan, plan_source = run_plan(job, backtest)
    job = routes.job  # the models offered
    levels_of = hierarchy.members.select("unique_id", "level")
    if job.models.automatic_combinations:
        forecasts = add_fitted(forecasts, plan.weights, levels_of, job.levels)
        fitted = add_fitted(fitted, plan.weights, levels_of, job.levels, with_intervals=False)
    # A plan naming a model that could not run here (history shorter than it needs) falls back to the level's default.
    plan.base = {
        lv: m if m in forecasts.columns else job.models.default_primary(lv, hierarchy.bottom)
        for lv, m in plan.base.items()
    }
    # The launch model of the new series: the backtest's choice per level, else the job's `launch_model`.
    plan.launch = plan.launch or {hierarchy.bottom: job.models.launch_model}
    served = young.served_by(forecasts, routes.young, plan.launch, hierarchy.members) if routes.young.height else None
    choice = base_models.choose_base(hierarchy, job, plan.base, served)
    forecasts = base_models.select_base(forecasts, choice, job.levels)
    fitted = base_models.select_base(fitted, choice, job.levels, with_intervals=False)
    fitted = young.pad_before_first(fitted, hierarchy)
    calibration, calibration_source = calibration_set(hierarchy, fitted, job, backtest)
    drivers = None
    if job.drivers:
        with in_stage("drivers"):
            drivers = base_drivers(forecasts, choice, levels_of, explained, hierarchy.Y_df, job, plan)
    grains = forecast_grains(hierarchy.Y_df, hierarchy.members, job) if job.grains else None
    return BaseForecasts(
        forecasts,
        fitted,
        choice,
        plan_source,
        calibration,
        calibration_source,
        backtest,
        plan,
        plan_source,
        drivers=drivers,
        lengths=routes.lengths,
        young=served,
        offer_notes=routes.notes,
        need=routes.need,
        grains=grains,
    )


def reconcile(hierarchy: hier.Hierarchy, base: BaseForecasts, job: JobSpec, sparse: bool = True) -> pl.DataFrame:
    """Reconciled forecasts: unique_id, ds, method, mean, intervals (rec.reconcile). The published table adds each
    series' level, keys and model block by block as it is written (`reconciled_table`): at 1M series the
    decorated, sorted table of every method would be ~6 GB in memory at once."""
    reconciled = rec.reconcile(hierarchy, base.forecasts, base.calibration, job, sparse=sparse, notes=base.notes)
    reconciled = young.launch_intervals(reconciled, base.forecasts, base.young, job.levels)
    young_ids = base.young["unique_id"] if base.young is not None else None
    reconciled = with_published(reconciled, base.forecasts, hierarchy.members, base.plan, job.levels, young_ids)
    reconciled = transforms.zero_closed_days(reconciled, job.closed_periods)
    if base.grains:  # days, weeks and 4-week periods made to agree; the published days replaced (time-grains.md)
        reconciled, result, check = publish_grains(hierarchy, base.plan, reconciled, base.grains, job, base.backtest)
        base.grain_rows, base.notes = grain_table(hierarchy, result, job), base.notes + result.notes
        base.grain_time_guard = check.summary()
    return reconciled


def staff(hierarchy: hier.Hierarchy, base: BaseForecasts, reconciled: pl.DataFrame, job: JobSpec) -> pl.DataFrame:
    """Headcount per warehouse x process x period with p50/p80/p95 bands from the published reconciled warehouse
    forecast (empty when the job has no labour standards, e.g. the tourism benchmark)."""
    warehouses = pl.Series(hierarchy.ids("warehouse") if "warehouse" in hierarchy.tags else [], dtype=pl.String)
    published = base.plan.published_at("warehouse")
    rows = reconciled.filter(pl.col("unique_id").is_in(warehouses) & (pl.col("method") == published))
    forecast = decorate_reconciled(hierarchy, base, rows, job)
    plan = staffing_plans.plan_for_job(forecast, job, backtest=base.backtest)
    return plan if base.grain_rows is None else with_weeks(plan, base.grain_rows, job)  # weeks beyond the days


def output_tables(
    hierarchy: hier.Hierarchy,
    base: BaseForecasts,
    reconciled: pl.DataFrame,
    staffing: pl.DataFrame,
    job: JobSpec,
    inventory: pl.DataFrame | None = None,
) -> dict[str, Table]:
    """The run's tables in their published layout, with drivers.parquet when the job explains its forecasts and
    inventory.parquet when it has an inventory section."""
    tables = layout_tables(hierarchy, base, reconciled, staffing, job, inventory)
    if base.grain_rows is not None:  # every grain in grain_forecasts; a `grain` column on the day tables
        tables = with_grains(tables, base.grain_rows, job)
    if base.drivers is not None:
        with in_stage("drivers"):
            tables["drivers"] = drivers_table(hierarchy, base, reconciled, job)
    return tables


def inventory(hierarchy: hier.Hierarchy, base: BaseForecasts, reconciled: pl.DataFrame, job: JobSpec) -> pl.DataFrame:
    """Reorder points and safety stocks per bottom series from the published forecast's quantiles (empty when the
    job has no inventory section)."""
    return inventory_quantities.for_job(hierarchy, base, reconciled, job)


def write(
    job: JobSpec,
    as_of: date,
    tables: dict[str, Table],
    timings: list[dict[str, Any]],
    summary: dict[str, Any],
) -> Path:
    """Publish the run (forecasting.outputs.runs) unless its forecast starts before its as-of date."""
    if summary.get("forecast_start"):
        freshness.check_forecast_start(job, as_of, date.fromisoformat(summary["forecast_start"]))
    manifest = {
        "job": job.name,
        "as_of": as_of.isoformat(),
        "created_at": datetime.now(UTC).isoformat(),
        "config": job.model_dump(mode="json"),
        "inputs_sha256": sources.input_hashes(job),
        "versions": {"python": platform.python_version()} | {p: _version(p) for p in PACKAGES},
        "timings": timings,
        "summary": summary,
        "warnings": summary.get("warnings", []),
        "tables": {},  # rows per table, counted as they are written
    }
    return runs.publish_run(job, as_of, tables, manifest)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def summarize(
    hierarchy: hier.Hierarchy,
    validated: Validated,
    base: BaseForecasts,
    job: JobSpec,
    reconciled: pl.DataFrame | None = None,
) -> dict[str, Any]:
    series = {level: len(hierarchy.ids(level)) for level in hierarchy.tags}
    models_by_level = (
        hierarchy.members.join(base.choice, on="unique_id")
        .group_by("level", "model")
        .len()
        .sort(pl.col("level").replace_strict({lv: i for i, lv in enumerate(job.hierarchy.names)}), "model")
        .rows()
    )
    return {
        "series_per_level": series,
        "history": f"{validated.periods.kept_from} .. {validated.periods.kept_to}",
        "dropped_periods": validated.periods.dropped,
        "prorated_periods": validated.periods.prorated,
        "base_model_per_level": [{"level": lv, "model": m, "series": n} for lv, m, n in models_by_level],
        "new_series": young.summary(base.young, hierarchy.members, base.need),
        "models_not_offered": base.offer_notes,
        "models_run": [c for c in base.forecasts.columns if c not in ("unique_id", "ds") and "-" not in c],
        "reconciliation": job.reconciliation.methods,
        "published_method": base.plan.method,
        "published_per_level": {level: base.plan.published_at(level) for level in job.hierarchy.names},
        "coherent": base.plan.coherent,
        "reconciliation_choice": base.plan_source,
        "interval_calibration": base.calibration_source,
        "interval_factors": base.plan.interval_scale,
        "model_choice": base.plan_source,
        "plan": base.plan.reasons,
        "reconciliation_fallbacks": base.notes,
        "staffing_demand": staffing_plans.demand_source(job, base.backtest),
        "horizon": job.horizon,
        "freq": job.freq,
        "forecast_start": base.forecasts["ds"].min().isoformat(),
        **({"grain_base_per_level": {g: b.choice for g, b in base.grains.items()}} if base.grains else {}),
        **({"grain_time_guard": base.grain_time_guard} if base.grain_time_guard is not None else {}),
        "order_lines": validated.order_lines,
        # The data's (stale data allowed) and the plan's (levels that do not add up, fallbacks, departures).
        "warnings": validated.warnings
        + (published_warnings(hierarchy, base, reconciled) if reconciled is not None else []),
    }


@dataclass
class RunResult:
    run_dir: Path
    as_of: date
    summary: dict[str, Any]
    timings: list[dict[str, Any]]
    seconds: float


def run_job(job: JobSpec, as_of: date | None = None, lock_wait: float | None = None) -> RunResult:
    """The whole nightly job in one process (the CLI path). The flow runs the same stages as tasks.

    The job's output folder is locked (forecasting.outputs.locks) from the moment the input has passed the data-quality
    gate (a rejected run creates nothing, not even the lock file) until the run is published: a second run of the same
    job is refused before it fits anything, or waits up to `lock_wait` seconds."""
    timer = StageTimer()
    start = time.perf_counter()
    loaded = timer.measure("load", load, job, as_of)
    validated = timer.measure("validate", validate, loaded, job)
    loaded.history = loaded.history.clear()  # validated.history holds it from here on (GBs at 1M series)
    with output_lock(job.output_dir(), wait=lock_wait):
        confine.check_publishable(job, loaded.as_of)  # a link that is not the project's: refused before any fit
        hierarchy = timer.measure("aggregate", aggregate, validated, job)
        validated.history = validated.history.clear()  # and hierarchy.Y_df from here on
        base = timer.measure("base_forecasts", base_forecasts, hierarchy, loaded.prices, job, loaded.calendar)
        hierarchy.Y_df = hierarchy.Y_df.clear()  # the history is not read after the models (S, tags, members are)
        reconciled = timer.measure("reconcile", reconcile, hierarchy, base, job)
        base.fitted = base.calibration = base.fitted.clear()  # in-sample fits: only reconciliation reads them
        staffing = timer.measure("staff", staff, hierarchy, base, reconciled, job)
        stock = timer.measure("inventory", inventory, hierarchy, base, reconciled, job) if job.inventory else None
        tables = timer.measure("prepare outputs", output_tables, hierarchy, base, reconciled, staffing, job, stock)
        summary = summarize(hierarchy, validated, base, job, reconciled) | {
            "seconds_before_write": round(time.perf_counter() - start, 1)
        }
        path = timer.measure("write", write, job, loaded.as_of, tables, list(timer.rows), summary)
        return RunResult(path, loaded.as_of, summary, timer.rows, time.perf_counter() - start)


BACKTESTS = "backtests"
PUBLISH_WAIT = 3600.0  # seconds a finished backtest waits for a nightly run of the job to publish first


def backtest_job(
    job: JobSpec,
    as_of: date | None = None,
    windows: int | None = None,
    step: int | None = None,
    horizon: int | None = None,
    progress: Callable[[str], None] | None = None,
    prior_base: pl.DataFrame | None = None,
) -> tuple[Path, Backtest]:
    """Load, validate and aggregate as the nightly run does, backtest, and publish atomically under
    data/outputs/<job>/backtests/<as-of>/ (with its own `latest`). Windows and step default to the job's
    `backtest` settings."""
    windows = job.backtest.windows if windows is None else windows
    step = job.backtest.step if step is None else step
    if windows < 1:
        raise InputError("backtest windows must be at least 1")
    if step is not None and step < 1:
        raise InputError("backtest step must be at least 1")
    if horizon is not None and horizon < 1:
        raise InputError("backtest horizon must be at least 1")
    if horizon is not None:
        job = job.model_copy(update={"horizon": horizon})
    loaded, hierarchy = load_hierarchy(job, as_of)
    with in_stage("validate"):
        quality.check_backtest(
            hierarchy.Y_df, hierarchy.members, job, windows, step or job.horizon, loaded.source_label
        )
    with in_stage("backtest"):
        result = run_backtest(hierarchy, loaded.prices, job, windows, step, progress, loaded.calendar, prior_base)
    tables: dict[str, Table] = {
        "backtest_base": result.base,
        "backtest_reconciled": result.reconciled,
        "metrics": result.metrics,
        "series_metrics": result.series_metrics,
        "window_metrics": result.window_metrics,
    }
    with in_stage("driver check"):  # the event drivers against the realised uplift on the scored windows
        check = event_check(hierarchy, loaded.prices, loaded.calendar, job, scored_cutoffs(result.reconciled, job))
    if check.height:
        tables["driver_check"] = check
    if result.new_series is not None:
        tables["new_series_metrics"] = result.new_series
    manifest = {
        "job": job.name,
        "as_of": loaded.as_of.isoformat(),
        "windows": windows,
        "step": step or job.horizon,
        "horizon": job.horizon,
        "cutoffs": [str(c) for c in sorted(result.reconciled["cutoff"].unique().to_list())],
        "base_models": result.base_models,
        "nested_windows": job.backtest.scored_windows(windows),
        "plan": result.plan.to_dict(),
        "window_plans": [plan.to_dict() for plan in result.window_plans],
        "reconciliation_fallbacks": result.notes,
        "config": job.model_dump(mode="json"),
        "warnings": loaded.warnings,
    }
    # Published under the job's output lock, which a nightly run holds from its first read of the latest backtest
    # (model choice) to its publish: so one run reads one backtest throughout, and a republish of the same as-of
    # date cannot delete the folder a run is reading. A backtest finishing during a nightly run waits for it.
    with in_stage("write"), output_lock(job.output_dir(), wait=PUBLISH_WAIT, on_wait=progress):
        return runs.publish_run(job, loaded.as_of, tables, manifest, subdir=BACKTESTS), result
