"""What every command shares: one line per failure (the Guarded group), the Typer app, the common options."""

from __future__ import annotations

import shlex
from datetime import date
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from forecasting.job.errors import InputError, MethodError, one_line
from forecasting.job.loading import DEFAULT_JOB, load_job
from forecasting.job.schema import JobSpec
from forecasting.outputs import confined_sql
from forecasting.outputs.atomic import DiskFullError, disk_full
from forecasting.outputs.locks import OutputLockedError
from forecasting.stage_log import save_traceback

HELP = """Hierarchical demand and manpower forecasting: run a job, query and report its outputs, backtest it; init
a job file for your data. Same library calls as the Prefect flow."""


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


app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP, cls=Guarded)

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
