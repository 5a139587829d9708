"""Command line: `forecasting run`, `forecasting query`, `forecasting jobs`. Same library calls as the Prefect flow."""

from __future__ import annotations

import json
import time
import warnings
from datetime import date

import polars as pl
import typer

from forecasting.config import DEFAULT_JOB, JobConfigError, available_jobs, load_job
from forecasting.io import SourceError
from forecasting.quality import DataQualityError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

JOB_OPTION = typer.Option(DEFAULT_JOB, "--job", "-j", help="bundled job name or path to a job YAML file")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} {value!r} is not a date (YYYY-MM-DD)")
    return None


@app.command()
def run(
    job: str = JOB_OPTION,
    as_of: str = typer.Option(None, "--as-of", help="forecast from this date (default: last day of the data)"),
) -> None:
    """Run the nightly job: load, validate, aggregate, forecast, reconcile, staff, write."""
    from forecasting.pipeline import run_job

    as_of_date = _parse_date(as_of, "--as-of")
    warnings.filterwarnings("ignore")
    try:
        spec = load_job(job)
        result = run_job(spec, as_of_date)
    except (JobConfigError, DataQualityError, SourceError) as exc:
        _fail(str(exc))
        return
    summary = result.summary
    cadence = {"day": "daily", "week": "weekly", "month": "monthly", "quarter": "quarterly"}[summary["freq"]]
    typer.echo(f"job {spec.name}: as of {result.as_of}, {cadence}, horizon {summary['horizon']}")
    typer.echo(f"history used: {summary['history']}; dropped partial periods: {', '.join(summary['dropped_periods'])}")
    typer.echo("series per level: " + ", ".join(f"{k} {v}" for k, v in summary["series_per_level"].items()))
    typer.echo(
        "base model per level: "
        + ", ".join(f"{row['level']}={row['model']} ({row['series']})" for row in summary["base_model_per_level"])
    )
    typer.echo(
        f"models run: {', '.join(summary['models_run'])}; reconciled with {', '.join(summary['reconciliation'])}"
        f", published {summary['published_method']}"
    )
    typer.echo(f"{'stage':<16}{'seconds':>9}{'peak RSS MB':>13}")
    for row in result.timings:
        typer.echo(f"{row['stage']:<16}{row['seconds']:>9.1f}{row['peak_rss_mb']:>13.0f}")
    typer.echo(f"run time {result.seconds:.1f} s")
    typer.echo(f"outputs: {result.run_dir}  (latest: {result.run_dir.parent / 'latest'})")
    typer.echo(f'try: forecasting query --job {spec.name} "SELECT * FROM staffing LIMIT 10"')


@app.command()
def query(
    sql: str = typer.Argument(..., help="SQL over the views base_forecasts, reconciled_forecasts, forecasts, staffing"),
    job: str = JOB_OPTION,
    run_as_of: str = typer.Option(None, "--run", help="as-of date of the run to read (default: latest)"),
    output_format: str = typer.Option("table", "--format", help="table, csv or json"),
) -> None:
    """Answer SQL from a run's outputs through the DuckDB views in sql/views.sql."""
    from forecasting.views import open_views

    try:
        spec = load_job(job)
        con = open_views(spec, run_as_of)
    except (JobConfigError, FileNotFoundError) as exc:
        _fail(str(exc))
        return
    try:
        relation = con.sql(sql)
    except Exception as exc:  # duckdb raises many error classes; all are the user's SQL at fault here
        _fail(f"query failed: {exc}")
        return
    if relation is None:
        return
    if output_format == "csv":
        typer.echo(relation.pl().write_csv(), nl=False)
    elif output_format == "json":
        typer.echo(json.dumps(relation.pl().to_dicts(), default=str, indent=1))
    else:
        relation.show(max_rows=100, max_width=200)


@app.command()
def backtest(
    job: str = JOB_OPTION,
    windows: int = typer.Option(3, "--windows", "-n", help="number of rolling origins"),
    step: int = typer.Option(None, "--step", help="periods between origins (default: the horizon)"),
    horizon: int = typer.Option(None, "--horizon", help="periods ahead (default: the job's horizon)"),
    as_of: str = typer.Option(None, "--as-of", help="last day of data (default: last day the source covers)"),
) -> None:
    """Rolling-origin backtest with the libraries' cross-validation; every window reconciled; metrics per level."""
    from forecasting.backtest import backtest_job

    as_of_date = _parse_date(as_of, "--as-of")
    warnings.filterwarnings("ignore")
    start = time.perf_counter()

    def progress(message: str) -> None:
        typer.echo(f"[{time.perf_counter() - start:7.1f} s] {message}", err=True)

    try:
        spec = load_job(job)
        folder, result = backtest_job(spec, as_of_date, windows, step, horizon, progress)
    except (JobConfigError, DataQualityError, SourceError, ValueError) as exc:
        _fail(str(exc))
        return
    metrics = result.metrics.with_columns(pl.col(pl.Float64).round(3))
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_width_chars=200):
        typer.echo(metrics)
    typer.echo(f"backtest outputs: {folder}")
    typer.echo(f"try: forecasting query --job {spec.name} \"SELECT * FROM backtest_metrics WHERE level = 'warehouse'\"")


@app.command()
def jobs() -> None:
    """List the bundled jobs."""
    for name in available_jobs():
        spec = load_job(name)
        typer.echo(f"{name}: {spec.description}")


if __name__ == "__main__":
    app()
