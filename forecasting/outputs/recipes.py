"""Planners' SQL recipes (sql/recipes/*.sql): one SELECT each over the DuckDB views of a run (sql/views.sql) and
its latest backtest. A recipe takes its user values from DuckDB variables (`getvariable('month')`), so the same
file runs in the duckdb shell after `SET VARIABLE month = '2016-05-01'` and here, where every value is bound as a
parameter and never formatted into the SQL."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from forecasting.job.common import project_root
from forecasting.job.errors import InputError
from forecasting.job.schema import JobSpec
from forecasting.outputs import confined_sql, runs
from forecasting.outputs.diff import previous_as_of
from forecasting.outputs.views import open_views

NAME = re.compile(r"[a-z_][a-z0-9_]*")
BACKTEST_VIEWS = ("backtest_base", "backtest_reconciled", "backtest_metrics", "backtest_series_metrics")


def recipes_dir():
    return project_root() / "sql" / "recipes"


def available() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.sql"))


def recipe_text(name: str) -> str:
    if name not in available():
        raise FileNotFoundError(f"no recipe {name!r}; recipes: {', '.join(available())}")
    return (recipes_dir() / f"{name}.sql").read_text()


VARIABLE = re.compile(r"getvariable\('([a-z_][a-z0-9_]*)'\)")
SET_BY_THE_VIEWS = {"run_dir", "backtest_dir", "job_dir"}


NEEDS = re.compile(r"^-- needs: (.*)$", re.MULTILINE)


def needs(name: str) -> list[str]:
    """What a recipe needs of a job, from its `-- needs:` line: `level X`, `columns A B`, `staffing`, `inventory`,
    `backtest`, `previous run` (comma-separated); `nothing` runs on any job."""
    found = NEEDS.search(recipe_text(name))
    items = [item.strip() for item in found.group(1).split(",")] if found else []
    return [item for item in items if item and not item.startswith("nothing")]


def missing_needs(job: JobSpec, name: str) -> str | None:
    """What the job lacks for the recipe (None: it can run), in words naming the keys, levels or outputs."""
    missing = []
    for item in needs(name):
        kind, _, rest = item.partition(" ")
        if kind == "level" and rest not in job.hierarchy.names:
            missing.append(f"a level named {rest!r} (this job's: {', '.join(job.hierarchy.names)})")
        elif kind == "columns" and set(rest.split()) - set(job.hierarchy.columns):
            missing.append(f"key columns {rest.split()} (this job's: {', '.join(job.hierarchy.columns)})")
        elif kind == "staffing" and job.staffing is None:
            missing.append("a staffing plan (the job has no staffing section)")
        elif kind == "inventory" and job.inventory is None:
            missing.append("inventory quantities (the job has no inventory section)")
    return "; ".join(missing) or None


def parameters(name: str) -> list[str]:
    """The parameters a recipe reads (its DuckDB variables, less the folders the views set)."""
    return sorted(set(VARIABLE.findall(recipe_text(name))) - SET_BY_THE_VIEWS)


def run_recipe(
    job: JobSpec,
    name: str,
    params: dict[str, str] | None = None,
    as_of: str | None = None,
    limits: confined_sql.Limits | None = None,
) -> pl.DataFrame:
    """Run one recipe against the job's run (default: the latest) and its latest backtest, confined like any
    planner's SQL (forecasting.outputs.confined_sql; QueryRefused when stopped). `params` become DuckDB variables (bound
    values); `previous_run_dir` is set to the run published before this one, if there is one (a folder given for it
    must lie inside the job's outputs). A parameter the recipe does not read (a misspelling) is refused, not
    ignored."""
    sql = recipe_text(name)
    missing = missing_needs(job, name)
    if missing:
        raise InputError(f"recipe {name!r} needs {missing}; `forecasting recipe` lists the ones for this job")
    unknown = sorted(set(params or {}) - set(parameters(name)))
    if unknown:
        raise InputError(
            f"recipe {name!r} has no parameter {', '.join(unknown)}; it takes: {', '.join(parameters(name))}"
        )
    limits = limits or confined_sql.Limits()
    con = open_views(job, as_of, limits)
    try:
        previous = previous_as_of(job, as_of)
        if previous is not None:
            con.execute(
                "SET VARIABLE previous_run_dir = ?",
                [confined_sql.url(job.output_dir(), runs.run_dir(job, previous))],
            )
        elif "getvariable('previous_run_dir')" in sql and "previous_run_dir" not in (params or {}):
            raise FileNotFoundError(f"recipe {name!r} compares with the previous run; job {job.name!r} has none")
        have = {row[0] for row in con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()}
        if re.search(r"\bFROM drivers\b", sql) and "drivers" not in have:
            raise FileNotFoundError(
                f"recipe {name!r} reads the drivers, which this run of job {job.name!r} has not published (a run "
                "before drivers existed, or a job with `drivers: false`): run `forecasting run` again"
            )
        missing = [view for view in BACKTEST_VIEWS if view in sql and view not in have]
        if missing:
            raise FileNotFoundError(
                f"recipe {name!r} reads {', '.join(missing)}, which job {job.name!r} has not published: run "
                f"`forecasting backtest --job {job.name}` (backtests before stop 21 lack backtest_series_metrics)"
            )
        for key, value in (params or {}).items():
            if not NAME.fullmatch(key):
                raise ValueError(f"parameter name {key!r}: use lower-case letters, digits and _")
            if key == "previous_run_dir":  # read through the confinement's `outputs://`, like the default
                value = confined_sql.url(job.output_dir(), Path(value))
            con.execute(f"SET VARIABLE {key} = ?", [value])  # the name is checked above; the value is bound
        return confined_sql.run(con, sql, limits)
    finally:
        con.close()
