"""Command line: run, query, backtest, staff, calibrate-labour, report, diff, recipe, jobs. Same library calls as the
Prefect flow."""

from __future__ import annotations

import json
import shlex
import time
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import typer
from typer.core import TyperGroup

from forecasting.data.quality import DataQualityError
from forecasting.data.sources import SourceError
from forecasting.job.errors import InputError, MethodError, one_line
from forecasting.job.loading import DEFAULT_JOB, JobConfigError, available_jobs, load_job
from forecasting.job.schema import JobSpec
from forecasting.outputs import confined_sql
from forecasting.outputs.atomic import DiskFullError, disk_full
from forecasting.outputs.locks import OutputLockedError
from forecasting.staffing.standards import StandardsError
from forecasting.stage_log import save_traceback


def _fail(message: str | BaseException, code: int = 2) -> None:
    """One line on stderr, naming the stage when the error knows it; exit 2 (the input is at fault) unless told."""
    stage = getattr(message, "stage", None)
    text = one_line(str(message))
    if isinstance(message, MethodError):  # the data is at fault, but the library's traceback may tell more
        text += f"; {save_traceback(message)}"
    typer.secho(f"error: {stage + ': ' if stage else ''}{text}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=code)


def _internal_error(exc: BaseException) -> None:
    """A fault of the program, not of the input: the traceback goes to a log file, one line says where; exit 1."""
    stage = getattr(exc, "stage", None)
    where = f" in stage {stage}" if stage else ""
    summary = one_line(f"{type(exc).__name__}: {exc}")[:300]
    _fail(f"internal error{where}: {summary}; {save_traceback(exc)}", code=1)


class Guarded(TyperGroup):
    """Every command ends in one line per failure: input errors (forecasting.job.errors.InputError, a busy output
    folder, no published run) exit 2 naming the stage; a full disk exits 1 and says so; anything else is an
    internal error: exit 1, traceback in a log file."""

    def invoke(self, ctx: Any) -> object:
        try:
            return super().invoke(ctx)
        except (InputError, OutputLockedError, FileNotFoundError) as exc:
            if isinstance(exc, FileNotFoundError) and exc.filename is not None:
                _internal_error(exc)  # the operating system's: a file the program itself expected
            _fail(exc)  # ours: no published run for what was asked
        except DiskFullError as exc:  # the publish says what it kept
            _fail(exc, code=1)
        except Exception as exc:
            if type(exc).__module__.split(".")[0] in ("click", "typer"):
                raise  # the command line's own: exit codes, usage errors (typer vendors click, so by module)
            full = disk_full(exc)
            if full is not None:
                stage = getattr(exc, "stage", None)
                _fail(f"{stage + ': ' if stage else ''}{full}; nothing was published", code=1)
            _internal_error(exc)
        return None


app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, cls=Guarded)

JOB_OPTION = typer.Option(DEFAULT_JOB, "--job", "-j", help="bundled job name or path to a job YAML file")
MEMORY_OPTION = typer.Option(
    confined_sql.Limits.memory, "--memory-limit", help="DuckDB memory for the SQL, e.g. 2GB (it never spills to disk)"
)
TIMEOUT_OPTION = typer.Option(confined_sql.Limits.seconds, "--timeout", help="seconds the SQL may run, then stopped")
FORMATS = ("table", "csv", "json")
OUTPUT_OPTION = typer.Option(
    None,
    "--output",
    "-o",
    help="folder the job's outputs live under (default: the job's output_root, else data/outputs under "
    "FORECASTING_HOME or the checkout; never inside the installed package)",
)


def _load(job: str, output: str | None, **overrides: object) -> JobSpec:
    """The job, with --output in place of its output_root when given (relative to the current folder)."""
    root = str(Path(output).resolve()) if output else None
    return load_job(job, output_root=root, **overrides)


def _hint_job(job: str, output: str | None) -> str:
    """The options that name this job again in a printed hint, each after a space: the path as typed (a job file),
    and --output; empty for the default job."""
    named = f" --job {shlex.quote(job)}" if job != DEFAULT_JOB else ""
    return named + (f" --output {shlex.quote(output)}" if output else "")


def _known_format(value: str) -> str:
    if value not in FORMATS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(FORMATS)}")
    return value


FORMAT_OPTION = typer.Option("table", "--format", help="table, csv or json", callback=_known_format)


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


@app.command("calibrate-labour")
def calibrate_labour(
    records: str = typer.Argument(..., help="labour records (parquet or CSV); default columns: the garment data's"),
    out: str = typer.Option(..., "--out", help="labour-standards CSV to write"),
    freq: str = typer.Option("day", "--freq", help="period of the plan the spread is for: day, week or month"),
    by: str = typer.Option(None, "--by", help="unit within the site, e.g. team (default: the whole site)"),
    template: str = typer.Option(None, "--template", help="standards file whose rows get the calibrated spread"),
) -> None:
    """Estimate units per hour and productivity spread from labour records; write a labour-standards file."""
    from pathlib import Path

    from forecasting.staffing import calibration

    if freq not in ("day", "week", "month"):
        _fail(f"--freq {freq!r}: expected day, week or month")
    try:
        frame = calibration.read_records(Path(records), calibration.GARMENT_COLUMNS)
        if by is not None and by not in frame.columns:
            raise StandardsError(f"{records}: --by column {by!r} not in the file")
        calibrated = calibration.calibrate(frame, freq, by)
        standards = calibration.standards_from_calibration(calibrated, Path(template) if template else None)
        calibration.write_standards(standards, Path(out))
    except StandardsError as exc:
        _fail(str(exc))
        return
    with pl.Config(tbl_hide_dataframe_shape=True, tbl_width_chars=200):
        typer.echo(calibrated.with_columns(pl.col(pl.Float64).round(4)))
    typer.echo(f"written: {out}")


FILTER_OPTION = typer.Option(None, "--filter", help="COLUMN=VALUE: keep only those rows (repeatable)")
CLOSED_OPTION = typer.Option(None, "--closed", help="MM-DD the business is shut (repeatable), left out")


@app.command("weekday-weights")
def weekday_weights(
    daily: str = typer.Argument(..., help="daily sales (parquet or CSV); several series per day are summed"),
    date_column: str = typer.Option("date", "--date", help="the date column"),
    value_column: str = typer.Option("sales", "--value", help="the sales column"),
    where: list[str] = FILTER_OPTION,
    until: str = typer.Option(None, "--until", help="last day used (YYYY-MM-DD; default: all)"),
    closed: list[str] = CLOSED_OPTION,
) -> None:
    """Print the weekday weights of `models.trading_days` (Monday .. Sunday) from a daily sales file."""
    from pathlib import Path

    from forecasting.data import trading_days
    from forecasting.job.common import MONTH_DAY

    where, closed = where or [], closed or []
    pairs = [item.split("=", 1) for item in where]
    if any(len(pair) != 2 for pair in pairs):
        _fail(f"--filter expects COLUMN=VALUE, got {[w for w in where if '=' not in w]}")
    filters = dict(pairs)
    if len(filters) != len(pairs):
        _fail(f"--filter names a column twice: {where}; keep one value per column")
    if not all(MONTH_DAY.match(day) for day in closed):
        _fail(f"--closed expects MM-DD, got {closed}")
    last = _parse_date(until, "--until")
    try:
        weights, frame = trading_days.weekday_weights_of_file(
            Path(daily), date_column, value_column, filters, last, closed
        )
    except ValueError as exc:
        _fail(str(exc))
        return
    days = frame["date"]
    typer.echo(f"# {daily}: {days.n_unique()} days {days.min()} .. {days.max()}, Monday .. Sunday")
    typer.echo(f"weekday_weights: {weights}")


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


jobs_app = typer.Typer(help="The bundled jobs, and the job file's JSON Schema.", cls=Guarded)
app.add_typer(jobs_app, name="jobs")


@jobs_app.callback(invoke_without_command=True)
def jobs(ctx: typer.Context) -> None:
    """List the bundled jobs (`forecasting jobs schema`: the job file's JSON Schema)."""
    if ctx.invoked_subcommand is None:
        for name in available_jobs():
            spec = load_job(name)
            typer.echo(f"{name}: {spec.description}")


@jobs_app.command("schema")
def jobs_schema() -> None:
    """Print the JSON Schema of a job file (docs/job-reference.md is generated from the same models)."""
    from forecasting.job.reference import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command()
def init(
    data_file: str = typer.Argument(..., help="parquet, CSV or DuckDB file, or a libpq string with --format postgres"),
    out: str = typer.Option(None, "--out", help="job file to write (default: ./<file name>.yaml)"),
    name: str = typer.Option(None, "--name", help="job name (default: the file's name)"),
    file_format: str = typer.Option(None, "--format", help="parquet, csv, duckdb or postgres (default: the suffix)"),
    table: str = typer.Option(None, "--table", help="the table, for a DuckDB file or PostgreSQL"),
    date_column: str = typer.Option(None, "--date", help="the date column (default: inferred)"),
    quantity: str = typer.Option(None, "--quantity", help="the quantity column (default: inferred)"),
    freq: str = typer.Option(None, "--freq", help="day, week, month or quarter (default: from the dates)"),
    horizon: int = typer.Option(None, "--horizon", min=1, max=366, help="periods ahead (default: by frequency)"),
    output: str = OUTPUT_OPTION,
    force: bool = typer.Option(False, "--force", help="replace an existing job file"),
) -> None:
    """Write a commented job file for a data file (date, frequency, quantity, keys and nesting inferred; subtotal,
    empty and short series left out, with reasons), check it against the data-quality gate, print what it decided."""
    from forecasting.pipeline import onboard

    if freq is not None and freq not in ("day", "week", "month", "quarter"):
        _fail(f"--freq {freq!r}: expected day, week, month or quarter")
    if file_format is not None and file_format not in ("parquet", "csv", "duckdb", "postgres"):
        _fail(f"--format {file_format!r}: expected parquet, csv, duckdb or postgres")
    target = Path(out or f"{Path(data_file).stem}.yaml")
    if target.suffix not in (".yaml", ".yml"):
        _fail(f"--out {out!r}: a job file ends in .yaml or .yml")
    if target.exists() and not force:
        _fail(f"{target} exists; give another --out or --force to replace it")
    warnings.filterwarnings("ignore")
    made = onboard(data_file, target, name, file_format, table, date_column, quantity, freq, horizon, output)
    typer.echo(f"read {made.profile.label}: {made.profile.rows} rows, {len(made.profile.series)} series")
    for line in made.profile.reasons + made.draft.decisions:
        typer.echo(f"  {line}")
    for what, count in made.draft.left_out.items():
        typer.echo(f"  left out: {count} {what}")
    levels = made.draft.spec.hierarchy.levels
    typer.echo("  levels: " + ", ".join(f"{lv} ({' x '.join(keys) or '-'})" for lv, keys in levels.items()))
    typer.echo(f"gate: {made.gate}")
    typer.echo(f"job file: {target}  (outputs under {made.draft.spec.output_dir()})")
    typer.echo(f"next: forecasting run --job {shlex.quote(str(target))}")


if __name__ == "__main__":
    app()
