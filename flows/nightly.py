"""The nightly forecast as a Prefect 3 flow: one task per stage of :mod:`forecasting.pipeline`, in its order
load -> validate -> aggregate -> base_forecasts -> reconcile -> staff -> inventory -> write, then the run's HTML report.

The tasks are thin: each calls one library function and nothing else, so the flow and the CLI (``run_job``) run
the same code. Stages hand large dataframes to one another in memory, so no task computes a cache key (the default
policy would hash its inputs) and no result is persisted. Only the I/O stages (load, write) are retried; a job or
data-quality error is not, since a retry would fail the same way.

Run the default job locally with ``python flows/nightly.py``; the nightly deployment is defined in prefect.yaml.
"""

import time
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import Task

from forecasting import pipeline
from forecasting.data import hierarchy as hier
from forecasting.data.sources import SourceError
from forecasting.job.errors import InputError
from forecasting.job.loading import DEFAULT_JOB, load_job, parse_job
from forecasting.job.schema import JobSpec
from forecasting.outputs import confine, report
from forecasting.outputs.locks import output_lock

IN_MEMORY = {"cache_policy": NONE, "persist_result": False}


def retry_io_errors(task: Task[..., Any], task_run: TaskRun, state: State) -> bool:
    """Retry a failed I/O stage unless the job or the data is at fault (those fail the same way every time). A
    source that cannot be read is retried: the file may arrive late, the database be back."""
    try:
        state.result()
    except SourceError:
        return True
    except InputError:
        return False
    except Exception:
        return True
    return True


RETRY_IO = {"retries": 2, "retry_delay_seconds": 5, "retry_condition_fn": retry_io_errors}


@task(name="load", **RETRY_IO, **IN_MEMORY)
def load_task(job: JobSpec, as_of: date | None) -> pipeline.Loaded:
    return pipeline.load(job, as_of)


@task(name="validate", **IN_MEMORY)
def validate_task(loaded: pipeline.Loaded, job: JobSpec) -> pipeline.Validated:
    return pipeline.validate(loaded, job)


@task(name="aggregate", **IN_MEMORY)
def aggregate_task(validated: pipeline.Validated, job: JobSpec) -> hier.Hierarchy:
    return pipeline.aggregate(validated, job)


@task(name="base_forecasts", **IN_MEMORY)
def base_forecasts_task(hierarchy: hier.Hierarchy, loaded: pipeline.Loaded, job: JobSpec) -> pipeline.BaseForecasts:
    return pipeline.base_forecasts(hierarchy, loaded.prices, job, loaded.calendar)


@task(name="reconcile", **IN_MEMORY)
def reconcile_task(hierarchy: hier.Hierarchy, base: pipeline.BaseForecasts, job: JobSpec) -> pl.DataFrame:
    return pipeline.reconcile(hierarchy, base, job)


@task(name="staff", **IN_MEMORY)
def staff_task(
    hierarchy: hier.Hierarchy, base: pipeline.BaseForecasts, reconciled: pl.DataFrame, job: JobSpec
) -> pl.DataFrame:
    return pipeline.staff(hierarchy, base, reconciled, job)


@task(name="inventory", **IN_MEMORY)
def inventory_task(
    hierarchy: hier.Hierarchy, base: pipeline.BaseForecasts, reconciled: pl.DataFrame, job: JobSpec
) -> pl.DataFrame:
    return pipeline.inventory(hierarchy, base, reconciled, job)


@task(name="write", **RETRY_IO, **IN_MEMORY)
def write_task(
    hierarchy: hier.Hierarchy,
    base: pipeline.BaseForecasts,
    reconciled: pl.DataFrame,
    staffing: pl.DataFrame,
    stock: pl.DataFrame | None,
    job: JobSpec,
    as_of: date,
    timings: list[dict[str, Any]],
    summary: dict[str, Any],
) -> Path:
    """Output tables, then the atomic publish (manifest last). Safe to retry: a failed publish leaves nothing."""
    timer = pipeline.StageTimer(rows=list(timings))
    tables = timer.measure("prepare outputs", pipeline.output_tables, hierarchy, base, reconciled, staffing, job, stock)
    return pipeline.write(job, as_of, tables, timer.rows, summary)


@task(name="report", **IN_MEMORY)
def report_task(job: JobSpec, run_dir: Path, history: pl.DataFrame) -> Path:
    """The run's HTML report, drawn from the history already in memory (no second read of the source)."""
    return report.write_report(job, history=history, run=run_dir)


def describe(result: Any) -> str:
    """The size of a stage's output, for the log."""
    if isinstance(result, pipeline.Loaded):
        prices = result.prices.height if result.prices is not None else 0
        return f"{result.history.height:,} history rows, {prices:,} price rows, as of {result.as_of}"
    if isinstance(result, pipeline.Validated):
        periods = result.periods
        return f"{result.history.height:,} rows in complete periods {periods.kept_from} .. {periods.kept_to}"
    if isinstance(result, hier.Hierarchy):
        levels = ", ".join(f"{level} {len(ids):,}" for level, ids in result.tags.items())
        return f"{result.members.height:,} series ({levels})"
    if isinstance(result, pipeline.BaseForecasts):
        return f"{result.forecasts.height:,} rows for {result.forecasts['unique_id'].n_unique():,} series"
    if isinstance(result, pl.DataFrame):
        return f"{result.height:,} rows"
    return f"published {result}"


def resolve_job(job: str | dict[str, Any] | JobSpec) -> JobSpec:
    """A bundled job name (or a job file path), or a full job spec as a dict or a JobSpec."""
    return load_job(job) if isinstance(job, str) else parse_job(job, origin="flow parameter `job`")


@flow(name="nightly-forecast", persist_result=False)
def nightly_forecast(
    job: str | JobSpec = DEFAULT_JOB, as_of: date | None = None, lock_wait_seconds: float | None = None
) -> dict[str, Any]:
    """Forecast every level of the job's hierarchy, reconcile, plan staffing and publish one run folder.

    ``job``: a bundled job name (data/jobs/<name>.yaml) or a full job spec; ``as_of``: the last day of data to use
    (default: the last day the source covers); ``lock_wait_seconds``: how long to wait when another run of the job
    holds its output folder (default $FORECASTING_LOCK_WAIT, else 0: refuse). Returns the published run folder, the
    as-of date and the summary.
    """
    spec = resolve_job(job)
    logger = get_run_logger()
    logger.info("job %s, as of %s", spec.name, as_of or "the newest data")
    timer = pipeline.StageTimer()
    start = time.perf_counter()

    def stage(name: str, task_fn: Task[..., Any], *args: Any) -> Any:
        result = timer.measure(name, task_fn, *args)
        row = timer.rows[-1]
        logger.info(
            "%s: %s rows, %s series | %s | %.2f s | peak RSS %.1f MB, workers %.1f MB",
            name,
            "-" if row["rows"] is None else f"{row['rows']:,}",
            "-" if row["series"] is None else f"{row['series']:,}",
            describe(result),
            row["seconds"],
            row["peak_rss_mb"],
            row["peak_rss_children_mb"],
        )
        return result

    loaded = stage("load", load_task, spec, as_of)
    validated = stage("validate", validate_task, loaded, spec)
    # Locked once the data passed the gate: a rejected run creates nothing, a second run is refused before fitting.
    with output_lock(spec.output_dir(), wait=lock_wait_seconds, on_wait=logger.warning):
        confine.check_publishable(spec, loaded.as_of)
        hierarchy = stage("aggregate", aggregate_task, validated, spec)
        base = stage("base_forecasts", base_forecasts_task, hierarchy, loaded, spec)
        reconciled = stage("reconcile", reconcile_task, hierarchy, base, spec)
        staffing = stage("staff", staff_task, hierarchy, base, reconciled, spec)
        stock = stage("inventory", inventory_task, hierarchy, base, reconciled, spec) if spec.inventory else None

        summary = pipeline.summarize(hierarchy, validated, base, spec, reconciled) | {
            "seconds_before_write": round(time.perf_counter() - start, 1)
        }
        timings = list(timer.rows)
        tables = (hierarchy, base, reconciled, staffing, stock)
        run_dir = stage("write", write_task, *tables, spec, loaded.as_of, timings, summary)
        page = report_task(spec, run_dir, hierarchy.Y_df)
        logger.info("report: %s", page)
        return {
            "job": spec.name,
            "run_dir": str(run_dir),
            "as_of": loaded.as_of.isoformat(),
            "summary": summary,
            "report": str(page),
        }


if __name__ == "__main__":
    nightly_forecast()
