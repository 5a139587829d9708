"""DuckDB views over a published run (sql/views.sql), shared by the CLI and tests."""

from __future__ import annotations

import duckdb

from forecasting.config import JobSpec
from forecasting.io import sql_text
from forecasting.outputs import run_dir


def open_views(job: JobSpec, as_of: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over the job's latest (or given) run and, when one has been
    published, its latest backtest (backtest_base, backtest_reconciled, backtest_metrics)."""
    con = duckdb.connect()
    found = False
    try:
        con.execute("SET VARIABLE run_dir = ?", [str(run_dir(job, as_of))])
        _run_script(con, "views")
        found = True
    except FileNotFoundError:
        if as_of:
            raise
    try:
        con.execute("SET VARIABLE backtest_dir = ?", [str(run_dir(job, None, subdir="backtests"))])
        _run_script(con, "backtest_views")
        found = True
    except FileNotFoundError:
        pass
    if not found:
        raise FileNotFoundError(f"no published run or backtest for job {job.name!r} under {job.output_dir()}")
    return con


def _run_script(con: duckdb.DuckDBPyConnection, name: str) -> None:
    for statement in sql_text(name).split(";"):
        if statement.strip() and not all(line.strip().startswith("--") for line in statement.strip().splitlines()):
            con.execute(statement)
