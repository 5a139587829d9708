"""The nightly job as stage functions. The CLI and the Prefect flow call exactly these, in this order:
load -> validate -> aggregate -> base_forecasts -> reconcile -> staff -> write."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from forecasting import features, io, models, outputs, quality, trading_days, transforms
from forecasting import hierarchy as hier
from forecasting import lightgbm_models as gbm
from forecasting import reconcile as rec
from forecasting import staffing as staffing_plans
from forecasting.config import JobSpec
from forecasting.locks import output_lock
from forecasting.stages import BaseForecasts, Loaded, StageTimer, Validated

PACKAGES = ["duckdb", "polars", "statsforecast", "mlforecast", "hierarchicalforecast", "lightgbm", "prefect", "numpy"]


def load(job: JobSpec, as_of: date | None = None) -> Loaded:
    con, labels = io.connect_sources(job)
    try:
        quality.check_raw(con, job, labels["raw_sales"])
        as_of = io.resolve_as_of(con, job, as_of, labels["raw_sales"])
        history = io.read_history(con, job, as_of)
        prices = io.read_prices(con, job)
        calendar = io.read_calendar_features(con, job)
    finally:
        con.close()
    return Loaded(history, prices, calendar, source_label=labels["raw_sales"], as_of=as_of)


def validate(loaded: Loaded, job: JobSpec) -> Validated:
    complete, periods = hier.complete_periods(loaded.history, job)
    checked = quality.check_history(complete, job, loaded.source_label, periods.kept_to)
    if job.staffing is not None and "warehouse" in checked.columns:
        # Before any fitting: a bad labour-standards file should fail in seconds, not after the forecasts.
        staffing_plans.job_standards(job, checked["warehouse"].unique().to_list())
    return Validated(history=checked, periods=periods)


def aggregate(validated: Validated, job: JobSpec, sparse: bool = True) -> hier.Hierarchy:
    return hier.build_hierarchy(validated.history, job.hierarchy, sparse=sparse)


def load_hierarchy(job: JobSpec, as_of: date | None = None) -> tuple[Loaded, hier.Hierarchy]:
    """The first three stages in one call, for everything that needs the history but not a run (backtests, the
    report, the reference benchmarks)."""
    loaded = load(job, as_of)
    return loaded, aggregate(validate(loaded, job), job)


def series_columns(job: JobSpec) -> list[str]:
    """Leading columns of every output table: which series, where in the hierarchy, which period."""
    return ["unique_id", "level", *job.hierarchy.columns, "ds"]


def base_forecasts(
    hierarchy: hier.Hierarchy, prices: pl.DataFrame | None, job: JobSpec, calendar: pl.DataFrame | None = None
) -> BaseForecasts:
    """Aggregate levels: local statistical models (+ one LightGBM across them); bottom series (SKUs): global
    LightGBM with price, seasonal naive and an intermittent-demand model; calendar features (events, SNAP) feed
    every LightGBM. Base = per level primary model, intermittent bottom series excepted."""
    spec = job.models
    Y_agg, Y_bottom = model_inputs(hierarchy, job)

    def run_group(Y: pl.DataFrame, names: list[str], aggregate: bool) -> list[models.LevelForecast]:
        parts = []
        stat_names = [n for n in names if n in models.STAT_MODELS]
        if stat_names:
            parts.append(models.statistical_forecast(Y, job, stat_names))
        lightgbms = [n for n in spec.lightgbm_names if n in names]
        if lightgbms:
            members = hierarchy.members.filter(pl.col("unique_id").is_in(Y["unique_id"].unique().implode()))
            exog = features.exogenous(members, prices, calendar, job, bottom=not aggregate)
            for name in lightgbms:
                parts.append(gbm.lightgbm_forecast(Y, job, exog=exog, aggregate=aggregate, name=name))
        units = partial(trading_days.in_units, job=job, aggregate=aggregate)
        return [models.LevelForecast(units(p.forecasts), units(p.fitted), p.models) for p in parts]

    groups = [run_group(Y_bottom, spec.bottom_models, False)]
    if Y_agg.height:
        groups.insert(0, run_group(Y_agg, spec.aggregate_models, True))
    forecasts, fitted = models.combine(groups)
    forecasts = transforms.zero_closed_days(forecasts, job.closed_periods)
    forecasts = models.add_combinations(forecasts, spec.combinations, job.levels)
    fitted = models.add_combinations(fitted, spec.combinations, job.levels, with_intervals=False)
    backtest = outputs.usable_backtest(job, hierarchy.Y_df["ds"].max())
    primary, choice_source = primary_models(job, backtest)
    choice = choose_base(hierarchy, job, primary)
    forecasts = models.select_base(forecasts, choice, job.levels)
    fitted = models.select_base(fitted, choice, job.levels, with_intervals=False)
    calibration, calibration_source = calibration_set(hierarchy, fitted, job, backtest)
    return BaseForecasts(forecasts, fitted, choice, choice_source, calibration, calibration_source, backtest)


def split_levels(hierarchy: hier.Hierarchy) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(aggregate series, bottom series) of the hierarchy's Y_df. aggregate() puts the bottom level last: then the
    two are slices of Y_df, not copies of the history."""
    Y_df = hierarchy.Y_df
    is_bottom = Y_df["unique_id"].is_in(pl.Series(hierarchy.ids(hierarchy.bottom)))
    first = Y_df.height - int(is_bottom.sum())
    if not is_bottom.head(first).any():
        return Y_df.head(first), Y_df.slice(first)
    return Y_df.filter(~is_bottom), Y_df.filter(is_bottom)


def model_inputs(hierarchy: hier.Hierarchy, job: JobSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(aggregate, bottom) series as the models are fitted on them: closed days imputed, and with
    `models.trading_days` per calendar-adjusted period. The nightly run and the backtest share it."""
    Y_agg, Y_bottom = (
        transforms.impute_closed_days(Y, job.closed_periods, job.season_length) for Y in split_levels(hierarchy)
    )
    return trading_days.for_models(Y_agg, job, aggregate=True), trading_days.for_models(Y_bottom, job, aggregate=False)


def primary_models(job: JobSpec, backtest: outputs.FoundBacktest | None = None) -> tuple[dict[str, str], str]:
    """The model behind Base per level, and why: the job file's `primary`, or with `choose_from_backtest` the base
    model with the lowest `choice_metric` at that level in `backtest` (default: the latest; among the models run
    there)."""
    primary = dict(job.models.primary)
    if not job.models.choose_from_backtest:
        return primary, "job file"
    folder, missing = backtest or outputs.usable_backtest(job)
    if folder is None:
        return primary, f"job file ({missing})"
    chosen = best_models(pl.read_parquet(folder / "metrics.parquet"), job)
    return primary | chosen, f"lowest {job.models.choice_metric.upper()} per level in backtest {folder.name}"


def published_method(job: JobSpec, backtest: outputs.FoundBacktest | None = None) -> tuple[str, str]:
    """The reconciliation the run publishes, and why: the job file's `publish`, or with
    `reconciliation.choose_from_backtest` rec.least_worst_method over `backtest` (default: the latest)."""
    spec, metric = job.reconciliation, job.models.choice_metric
    if not spec.choose_from_backtest:
        return rec.publish_label(job), "job file"
    folder, missing = backtest or outputs.usable_backtest(job)
    if folder is None:
        return rec.publish_label(job), f"job file ({missing})"
    metrics = pl.read_parquet(folder / "metrics.parquet")
    run = [spec.label(m) for m in spec.methods]
    metrics = metrics.filter((pl.col("kind") == "base") | pl.col("model").is_in(run))
    if metric not in metrics.columns or not metrics.filter(pl.col("kind") == "reconciled").height:
        return rec.publish_label(job), f"job file (backtest {folder.name} has no {metric} of its methods)"
    return rec.least_worst_method(metrics, metric), f"least worst level vs the best base in backtest {folder.name}"


def best_models(metrics: pl.DataFrame, job: JobSpec) -> dict[str, str]:
    """Per level, the base model with the lowest `choice_metric` in backtest metrics (ties: by name)."""
    metric = job.models.choice_metric
    if metric not in metrics.columns:
        return {}
    usable = metrics.filter((pl.col("kind") == "base") & (pl.col("model") != models.BASE) & pl.col(metric).is_finite())
    chosen = {}
    for level in job.hierarchy.names:
        allowed = job.models.pool(level, job.hierarchy.bottom)
        best = usable.filter((pl.col("level") == level) & pl.col("model").is_in(list(allowed))).sort(metric, "model")
        if best.height:
            chosen[level] = best["model"][0]
    return chosen


def choose_base(hierarchy: hier.Hierarchy, job: JobSpec, primary: dict[str, str] | None = None) -> pl.DataFrame:
    """unique_id -> model behind Base: the level's primary model, or the intermittent model for sparse bottom
    series."""
    spec = job.models
    primary = primary or dict(spec.primary)
    intermittent: set[str] = set()
    if spec.intermittent_model is not None:
        intermittent = models.intermittent_ids(split_levels(hierarchy)[1], spec.intermittent_adi)
    return hierarchy.members.select(
        "unique_id",
        pl.when(pl.col("unique_id").is_in(list(intermittent)))
        .then(pl.lit(spec.intermittent_model))
        .otherwise(pl.col("level").replace_strict(primary))
        .alias("model"),
    )


def calibration_set(
    hierarchy: hier.Hierarchy, fitted: pl.DataFrame, job: JobSpec, backtest: outputs.FoundBacktest | None = None
) -> tuple[pl.DataFrame, str]:
    """(unique_id, ds, y, Base) errors to calibrate reconciled intervals on, and where they come from.

    In-sample fits understate forecast errors (the backtests measured 54 % coverage for a nominal 80 % warehouse
    interval); with `calibration: backtest` the out-of-sample Base forecasts of `backtest` (default: the newest that
    ends by the history) are used instead."""
    if job.reconciliation.calibration == "backtest":
        folder, missing = backtest or outputs.usable_backtest(job, hierarchy.Y_df["ds"].max())
        if folder is None:
            return fitted, f"in-sample fits ({missing})"
        base = pl.read_parquet(
            folder / "backtest_base.parquet", columns=["unique_id", "ds", "cutoff", "model", "y", "mean"]
        )
        errors = out_of_sample_errors(base, hierarchy.Y_df["ds"].max(), hierarchy.members.height)
        if errors is not None:
            points = errors.group_by("unique_id").len()["len"].min()
            return errors, f"out-of-sample errors of backtest {folder.name} ({points} periods per series)"
        return fitted, f"in-sample fits (backtest {folder.name} does not cover every series)"
    return fitted, "in-sample fits"


def out_of_sample_errors(base: pl.DataFrame, last: date, n_series: int) -> pl.DataFrame | None:
    """Backtest Base forecasts (long: unique_id, ds, cutoff, model, y, mean) as calibration errors (unique_id, ds,
    y, Base): periods up to `last` only and, where windows overlap, the latest cutoff per period. None unless all
    `n_series` series have at least 2 periods. Shared by the nightly run and the backtest's own windows."""
    errors = (
        base.filter((pl.col("model") == models.BASE) & (pl.col("ds") <= last) & pl.col("y").is_not_null())
        .sort("cutoff")
        .unique(subset=["unique_id", "ds"], keep="last")
        .select("unique_id", "ds", "y", pl.col("mean").alias(models.BASE))
        .sort("unique_id", "ds")
    )
    counts = errors.group_by("unique_id").len()
    if counts.height < n_series or counts["len"].min() < 2:
        return None
    return errors


def reconcile(hierarchy: hier.Hierarchy, base: BaseForecasts, job: JobSpec, sparse: bool = True) -> pl.DataFrame:
    """Reconciled forecasts: unique_id, ds, method, mean, intervals (rec.reconcile). The published table adds each
    series' level, keys and model block by block as it is written (`reconciled_table`): at 1M series the
    decorated, sorted table of every method would be ~6 GB in memory at once."""
    reconciled = rec.reconcile(hierarchy, base.forecasts, base.calibration, job, sparse=sparse)
    return transforms.zero_closed_days(reconciled, job.closed_periods)


def _interval_columns(job: JobSpec) -> list[str]:
    return [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]


def decorate_reconciled(
    hierarchy: hier.Hierarchy, base: BaseForecasts, reconciled: pl.DataFrame, job: JobSpec
) -> pl.DataFrame:
    """The published layout of reconciled rows: level, keys, the model behind Base, whether the method is published."""
    return (
        hier.level_of(hierarchy.members, reconciled)
        .join(base.choice, on="unique_id", how="left")
        .with_columns((pl.col("method") == published_method(job, base.backtest)[0]).alias("published"))
        .select(*series_columns(job), "model", "method", "published", "mean", *_interval_columns(job))
        .sort("level", "unique_id", "method", "ds")
    )


def staff(hierarchy: hier.Hierarchy, base: BaseForecasts, reconciled: pl.DataFrame, job: JobSpec) -> pl.DataFrame:
    """Headcount per warehouse x process x period with p50/p80/p95 bands from the published reconciled warehouse
    forecast (empty when the job has no labour standards, e.g. the tourism benchmark)."""
    warehouses = pl.Series(hierarchy.ids("warehouse") if "warehouse" in hierarchy.tags else [], dtype=pl.String)
    published = published_method(job, base.backtest)[0]
    rows = reconciled.filter(pl.col("unique_id").is_in(warehouses) & (pl.col("method") == published))
    forecast = decorate_reconciled(hierarchy, base, rows, job)
    return staffing_plans.plan_for_job(forecast, job, backtest=base.backtest)


SERIES_PER_BLOCK = 100_000  # output rows are built and written for this many series at a time


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
        out = hier.level_of(hierarchy.members, models.wide_to_long(wide, job.levels, ["unique_id", "ds"]))
        yield out.select(*series_columns(job), "model", "mean", *_interval_columns(job)).sort(
            "level", "unique_id", "model", "ds"
        )


def write(
    job: JobSpec,
    as_of: date,
    tables: dict[str, outputs.Table],
    timings: list[dict[str, Any]],
    summary: dict[str, Any],
) -> Path:
    manifest = {
        "job": job.name,
        "as_of": as_of.isoformat(),
        "created_at": datetime.now(UTC).isoformat(),
        "config": job.model_dump(mode="json"),
        "inputs_sha256": io.input_hashes(job),
        "versions": {"python": platform.python_version()} | {p: _version(p) for p in PACKAGES},
        "timings": timings,
        "summary": summary,
        "tables": {},  # rows per table, counted as they are written
    }
    return outputs.publish_run(job, as_of, tables, manifest)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def summarize(hierarchy: hier.Hierarchy, validated: Validated, base: BaseForecasts, job: JobSpec) -> dict[str, Any]:
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
        "models_run": [c for c in base.forecasts.columns if c not in ("unique_id", "ds") and "-" not in c],
        "reconciliation": job.reconciliation.methods,
        "published_method": published_method(job, base.backtest)[0],
        "reconciliation_choice": published_method(job, base.backtest)[1],
        "interval_calibration": base.calibration_source,
        "model_choice": base.choice_source,
        "staffing_demand": staffing_plans.demand_source(job, base.backtest),
        "horizon": job.horizon,
        "freq": job.freq,
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

    The job's output folder is locked (forecasting.locks) from the moment the input has passed the data-quality gate
    (a rejected run creates nothing, not even the lock file) until the run is published: a second run of the same
    job is refused before it fits anything, or waits up to `lock_wait` seconds."""
    timer = StageTimer()
    start = time.perf_counter()
    loaded = timer.measure("load", load, job, as_of)
    validated = timer.measure("validate", validate, loaded, job)
    loaded.history = loaded.history.clear()  # validated.history holds it from here on (GBs at 1M series)
    with output_lock(job.output_dir(), wait=lock_wait):
        hierarchy = timer.measure("aggregate", aggregate, validated, job)
        validated.history = validated.history.clear()  # and hierarchy.Y_df from here on
        base = timer.measure("base_forecasts", base_forecasts, hierarchy, loaded.prices, job, loaded.calendar)
        hierarchy.Y_df = hierarchy.Y_df.clear()  # the history is not read after the models (S, tags, members are)
        reconciled = timer.measure("reconcile", reconcile, hierarchy, base, job)
        base.fitted = base.calibration = base.fitted.clear()  # in-sample fits: only reconciliation reads them
        staffing = timer.measure("staff", staff, hierarchy, base, reconciled, job)
        tables = timer.measure("prepare outputs", output_tables, hierarchy, base, reconciled, staffing, job)
        summary = summarize(hierarchy, validated, base, job) | {
            "seconds_before_write": round(time.perf_counter() - start, 1)
        }
        path = timer.measure("write", write, job, loaded.as_of, tables, list(timer.rows), summary)
        return RunResult(path, loaded.as_of, summary, timer.rows, time.perf_counter() - start)


def output_tables(
    hierarchy: hier.Hierarchy, base: BaseForecasts, reconciled: pl.DataFrame, staffing: pl.DataFrame, job: JobSpec
) -> dict[str, outputs.Table]:
    """The run's tables; the two long ones are built block by block while they are written."""
    keys = ["unique_id", "ds"]
    base_rows = sum(base.forecasts[name].count() for name in models.wide_model_names(base.forecasts, keys))
    return {
        "base_forecasts": outputs.TableParts(base_rows, lambda: base_long(hierarchy, base, job)),
        "reconciled_forecasts": outputs.TableParts(
            reconciled.height, lambda: reconciled_table(hierarchy, base, reconciled, job)
        ),
        "staffing": staffing,
    }
