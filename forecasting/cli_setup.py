"""Commands that prepare a job rather than run one: init, jobs (and its JSON Schema), calibrate-labour,
weekday-weights. Registered on the app of forecasting.cli_common."""

from __future__ import annotations

import json
import shlex
import warnings
from pathlib import Path

import polars as pl
import typer

from forecasting.cli_common import OUTPUT_OPTION, Guarded, _fail, _parse_date, app
from forecasting.job.loading import available_jobs, load_job
from forecasting.staffing.standards import StandardsError


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
    from forecasting.onboarding import onboard

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
