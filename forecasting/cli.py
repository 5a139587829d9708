"""Command line: run, query, backtest, staff, report, diff, recipe; the commands that prepare a job (init, jobs,
calibrate-labour, weekday-weights) are in forecasting.cli_setup. Same library calls as the Prefect flow."""

from __future__ import annotations

import json
import time
import warnings

import polars as pl
import typer

from forecasting.cli_common import (
    FORMAT_OPTION,
    JOB_OPTION,
    MEMORY_OPTION,
    OUTPUT_OPTION,
    TIMEOUT_OPTION,
    _fail,
    _hint_job,
    _load,
    _parse_date,
    app,
)
from forecasting.data.quality import DataQualityError
from forecasting.data.sources import SourceError
from forecasting.job.errors import InputError
from forecasting.job.loading import JobConfigError
from forecasting.outputs import confined_sql
from forecasting.outputs.locks import OutputLockedError
from forecasting.staffing.standards import StandardsError

__all__ = ["app"]


@app.command()
def run(
    job: str = JOB_OPTION,
    as_of: str = typer.Option(None, "--as-of", help="forecast from this date (default: last day of the data)"),
    wait: float = typer.Option(
        None, "--wait", min=0, help="seconds to wait while another run of the job writes (default: refuse at once)"
    ),
    engine: str = typer.Option(None, "--engine", help="local or dask: where the base models run (default: job)"),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address, e.g. tcp://host:8786"),
    output: str = OUTPUT_OPTION,
) -> None:
    """Run the nightly job: load, validate, aggregate, forecast, reconcile, staff, write."""
    from forecasting.pipeline import run_job

    as_of_date = _parse_date(as_of, "--as-of")
    warnings.filterwarnings("ignore")
    try:
        spec = _load(job, output)
        if engine or scheduler:  # --scheduler alone implies dask
            chosen = spec.engine.model_dump() | {"kind": engine or "dask"}
            chosen |= {"scheduler": scheduler} if scheduler else {}
            spec = _load(job, output, engine=chosen)
        result = run_job(spec, as_of_date, lock_wait=wait)
    except (InputError, OutputLockedError) as exc:
        _fail(exc)
        return
    summary = result.summary
    for warning in summary.get("warnings", []):
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
    cadence = {"day": "daily", "week": "weekly", "month": "monthly", "quarter": "quarterly"}[summary["freq"]]
    typer.echo(f"job {spec.name}: as of {result.as_of}, {cadence}, horizon {summary['horizon']}")
    typer.echo(f"history used: {summary['history']}; dropped partial periods: {', '.join(summary['dropped_periods'])}")
    typer.echo("series per level: " + ", ".join(f"{k} {v}" for k, v in summary["series_per_level"].items()))
    typer.echo(
        "base model per level: "
        + ", ".join(f"{row['level']}={row['model']} ({row['series']})" for row in summary["base_model_per_level"])
    )
    new = summary.get("new_series") or {}
    if new.get("count"):
        typer.echo(
            f"new series (shorter than {new['shorter_than_periods']} periods): {new['count']}, served by "
            + ", ".join(f"{m} {n}" for m, n in new["served_by"].items())
        )
    for note in summary.get("models_not_offered", []):
        typer.echo(f"not offered: {note}")
    published = summary["published_method"]
    if not summary.get("coherent", True):
        published += " (" + ", ".join(f"{lv}: {m}" for lv, m in summary["published_per_level"].items()) + ")"
    typer.echo(
        f"models run: {', '.join(summary['models_run'])}; reconciled with {', '.join(summary['reconciliation'])}"
        f", published {published}"
    )
    typer.echo(f"chosen from: {summary['model_choice']}")
    if (lines := summary.get("order_lines")) is not None:
        typer.echo(
            f"order lines: {lines['lines']:,} read, {lines['lines_counted']:,} counted "
            f"({lines['quantity_counted']:,.0f} units, returns: {lines['returns']}); left out:"
        )
        for rule in lines["removed"]:
            typer.echo(f"  {rule['rule']}: {rule['rows']:,} {rule['rows_are']}, {rule['quantity']:,.0f} units")
    for warning in summary.get("warnings", []):
        typer.echo(f"warning: {warning}")
    if "staffing_demand" in summary:
        typer.echo(f"staffing demand drawn from: {summary['staffing_demand']}")
    typer.echo(f"{'stage':<16}{'seconds':>9}{'peak RSS MB':>13}")
    for row in result.timings:
        typer.echo(f"{row['stage']:<16}{row['seconds']:>9.1f}{row['peak_rss_mb']:>13.0f}")
    typer.echo(f"run time {result.seconds:.1f} s")
    typer.echo(f"outputs: {result.run_dir}  (latest: {result.run_dir.parent / 'latest'})")
    again = _hint_job(job, output)
    second = spec.hierarchy.names[min(1, len(spec.hierarchy.names) - 1)]
    typer.echo(f"try: forecasting query{again} \"SELECT * FROM forecasts WHERE level = '{second}' LIMIT 10\"")
    if spec.staffing is not None:
        typer.echo(f'     forecasting query{again} "SELECT * FROM staffing LIMIT 10"')
    typer.echo(f"     forecasting report{again}; forecasting recipe{again}")


@app.command()
def query(
    sql: str = typer.Argument(..., help="SQL over the views base_forecasts, reconciled_forecasts, forecasts, staffing"),
    job: str = JOB_OPTION,
    run_as_of: str = typer.Option(None, "--run", help="as-of date of the run to read (default: latest)"),
    output_format: str = FORMAT_OPTION,
    memory_limit: str = MEMORY_OPTION,
    timeout: float = TIMEOUT_OPTION,
    output: str = OUTPUT_OPTION,
) -> None:
    """Answer SQL from a run's outputs through the DuckDB views in sql/views.sql (read-only: the SQL reads the job's
    published outputs and nothing else; see forecasting/outputs/confined_sql.py)."""
    from forecasting.outputs.views import open_views

    try:
        spec = _load(job, output)
        limits = confined_sql.Limits(memory_limit, timeout)
        con = open_views(spec, run_as_of, limits)
    except (JobConfigError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
        return
    try:
        frame = confined_sql.run(con, sql, limits)
    except confined_sql.QueryRefused as exc:
        _fail(str(exc))
        return
    except Exception as exc:  # duckdb raises many error classes; all are the user's SQL at fault here
        _fail(f"query failed: {exc}")
        return
    finally:
        con.close()
    if frame is None:
        return
    if output_format == "csv":
        typer.echo(frame.write_csv(), nl=False)
    elif output_format == "json":
        typer.echo(json.dumps(frame.to_dicts(), default=str, indent=1))
    else:
        with pl.Config(tbl_rows=100, tbl_cols=30, tbl_hide_dataframe_shape=True, tbl_width_chars=200):
            typer.echo(frame)


@app.command()
def backtest(
    job: str = JOB_OPTION,
    windows: int | None = typer.Option(None, "--windows", "-n", help="rolling origins (default: backtest.windows)"),
    step: int | None = typer.Option(None, "--step", help="periods between origins (default: backtest.step or horizon)"),
    horizon: int = typer.Option(None, "--horizon", help="periods ahead (default: the job's horizon)"),
    as_of: str = typer.Option(None, "--as-of", help="last day of data (default: last day the source covers)"),
    output: str = OUTPUT_OPTION,
) -> None:
    """Rolling-origin backtest with the libraries' cross-validation; every window reconciled; metrics per level."""
    from forecasting.pipeline import backtest_job

    as_of_date = _parse_date(as_of, "--as-of")
    warnings.filterwarnings("ignore")
    start = time.perf_counter()

    def progress(message: str) -> None:
        typer.echo(f"[{time.perf_counter() - start:7.1f} s] {message}", err=True)

    try:
        spec = _load(job, output)
        folder, result = backtest_job(spec, as_of_date, windows, step, horizon, progress)
    except (InputError, OutputLockedError) as exc:
        _fail(exc)
        return
    metrics = result.metrics.with_columns(pl.col(pl.Float64).round(3))
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_width_chars=200):
        typer.echo(metrics)
    typer.echo(f"backtest outputs: {folder}")
    level = list(spec.hierarchy.levels)[-1]
    again = _hint_job(job, output)
    typer.echo(f"try: forecasting query{again} \"SELECT * FROM backtest_metrics WHERE level = '{level}'\"")
    typer.echo(f"per series (the published method's worst): forecasting recipe series_most_wrong{again}")


@app.command()
def staff(
    job: str = JOB_OPTION,
    run_as_of: str = typer.Option(None, "--run", help="as-of date of the run to plan from (default: latest)"),
    volume_change: str = typer.Option(None, "--volume-change", help="what-if: uniform volume change, e.g. +15%"),
    event: str = typer.Option(None, "--event", help="what-if: a named event / promotion from the job's staffing"),
    check: bool = typer.Option(False, "--backtest", help="shortfall rates of the plan over the latest backtest"),
    output: str = OUTPUT_OPTION,
) -> None:
    """Staffing without refitting: a what-if plan from a run's reconciled forecast, or the plan's backtest."""
    from forecasting.outputs import scenarios as staffing_runs

    warnings.filterwarnings("ignore")
    try:
        spec = _load(job, output)
        if spec.staffing is None:
            _fail(f"job {spec.name!r} has no staffing section (labour standards), so there is no plan to change")
        if check:
            path, _, summary = staffing_runs.staffing_backtest(spec)
        else:
            path, table = staffing_runs.what_if(spec, run_as_of, volume_change, event)
    except (JobConfigError, StandardsError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
        return
    with pl.Config(tbl_rows=200, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_width_chars=200):
        if check:
            typer.echo("share of backtest periods x processes the plan was short (target: p80 ~ 0.20, p95 ~ 0.05)")
            typer.echo(summary.with_columns(pl.col(pl.Float64).round(3)))
        else:
            totals = (
                table.filter(pl.col("quantile") == "p80")
                .group_by("warehouse", "ds")
                .agg(
                    pl.col("headcount").sum().alias("p80 headcount"),
                    pl.col("headcount_scenario").sum().alias("p80 what-if"),
                )
                .sort("warehouse", "ds")
            )
            typer.echo(f"what-if {table['scenario'][0]}: p80 headcount summed over processes")
            typer.echo(totals)
    typer.echo(f"written: {path}")


@app.command()
def report(
    job: str = JOB_OPTION,
    run_as_of: str = typer.Option(None, "--run", help="as-of date of the run to report (default: latest)"),
    top: int = typer.Option(10, "--top", min=1, help="bottom-level series listed by volume and by backtest error"),
    output: str = OUTPUT_OPTION,
) -> None:
    """Write a self-contained HTML report (charts, staffing bands, accuracy, warnings) into the run folder."""
    from forecasting import pipeline
    from forecasting.outputs.report import write_report

    warnings.filterwarnings("ignore")
    try:
        spec = _load(job, output)
        path = write_report(spec, run_as_of, history=pipeline.history, top=top)
    except (JobConfigError, DataQualityError, SourceError, StandardsError, FileNotFoundError) as exc:
        _fail(str(exc))
        return
    typer.echo(f"report: {path}")


RUNS_OPTION = typer.Option(
    None, "--run", help="as-of dates: --run A --run B (A before B); one: that run vs the one before; none: latest"
)
SET_OPTION = typer.Option(None, "--set", help="recipe parameter KEY=VALUE, e.g. --set month=2016-05-01")


@app.command()
def diff(
    runs: list[str] = RUNS_OPTION,
    job: str = JOB_OPTION,
    top: int = typer.Option(10, "--top", min=1, help="rows per level (forecasts) and in all (staffing)"),
    output: str = OUTPUT_OPTION,
) -> None:
    """List the largest forecast and staffing changes between two published runs."""
    from forecasting.outputs.diff import diff_runs, resolve_pair

    try:
        spec = _load(job, output)
        before, after = resolve_pair(spec, runs or [])
        result = diff_runs(spec, before, after, top)
    except (JobConfigError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
        return
    typer.echo(f"from {before.name} to {after.name}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    with pl.Config(tbl_rows=200, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_width_chars=200):
        typer.echo("largest forecast changes (published reconciliation, summed over common periods), per level:")
        typer.echo(result.forecasts.with_columns(pl.col(pl.Float64).round(3)))
        if result.explained is not None:
            typer.echo("why they changed (drivers' changes, model or method change, remainder; docs/drivers.md):")
            typer.echo(result.explained.with_columns(pl.col(pl.Float64).round(3)))
        if spec.staffing is not None:
            typer.echo("largest staffing changes (headcount, then FTE):")
            typer.echo(result.staffing.with_columns(pl.col(pl.Float64).round(3)) if result.staffing.width else "none")


@app.command()
def recipe(
    name: str = typer.Argument(None, help="recipe in sql/recipes (omit to list them)"),
    job: str = JOB_OPTION,
    run_as_of: str = typer.Option(None, "--run", help="as-of date of the run to read (default: latest)"),
    params: list[str] = SET_OPTION,
    output_format: str = FORMAT_OPTION,
    memory_limit: str = MEMORY_OPTION,
    timeout: float = TIMEOUT_OPTION,
    output: str = OUTPUT_OPTION,
) -> None:
    """Run one of the planners' SQL recipes (sql/recipes/*.sql) with bound parameters, confined like `query`."""
    from forecasting.outputs import recipes

    if name is None:
        spec = _load(job, output)
        for recipe_name in recipes.available():
            missing = recipes.missing_needs(spec, recipe_name)
            typer.echo(f"{recipe_name}" + (f"  (not for job {spec.name}: {missing})" if missing else ""))
        return
    values = {}
    for item in params or []:
        key, sep, value = item.partition("=")
        if not sep:
            _fail(f"--set {item!r}: expected KEY=VALUE")
        values[key.strip()] = value
    try:
        limits = confined_sql.Limits(memory_limit, timeout)
        frame = recipes.run_recipe(_load(job, output), name, values, run_as_of, limits)
    except (JobConfigError, FileNotFoundError, ValueError, confined_sql.QueryRefused) as exc:
        _fail(str(exc))
        return
    except Exception as exc:  # duckdb's own errors: a parameter of the wrong type, a view the run lacks
        _fail(f"recipe {name} failed: {exc}")
        return
    if output_format == "csv":
        typer.echo(frame.write_csv(), nl=False)
    elif output_format == "json":
        typer.echo(json.dumps(frame.to_dicts(), default=str, indent=1))
    else:
        with pl.Config(tbl_rows=200, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_width_chars=200):
            typer.echo(frame)


from forecasting import cli_setup  # noqa: E402, F401  (registers init, jobs, calibrate-labour, weekday-weights, after these)

if __name__ == "__main__":
    app()
