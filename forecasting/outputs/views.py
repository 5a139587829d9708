"""DuckDB views over a published run (sql/views.sql), shared by the CLI and tests."""

from __future__ import annotations

import duckdb

from forecasting.data.sources import sql_text
from forecasting.job.schema import JobSpec
from forecasting.outputs import confined_sql
from forecasting.outputs.runs import run_dir


def open_views(
    job: JobSpec, as_of: str | None = None, limits: confined_sql.Limits | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over the job's latest (or given) run and, when one has been
    published, its latest backtest (backtest_base, backtest_reconciled, backtest_metrics, backtest_series_metrics,
    backtest_window_metrics), the run's drivers and the backtest's driver check when they have them,
    and the staffing what-ifs and plan backtests written by `forecasting staff` (staffing_scenarios,
    staffing_backtest), and the run's inventory quantities (inventory) when it has them. The connection is confined
    (forecasting.outputs.confined_sql): it reads the job's output folder through `outputs://` and nothing else,
    writes nothing, and its settings are locked."""
    job_dir = job.output_dir()
    con = confined_sql.connect(job_dir, limits or confined_sql.Limits())
    found = False
    try:
        con.execute("SET VARIABLE run_dir = ?", [confined_sql.url(job_dir, run_dir(job, as_of))])
        _run_script(con, "views")
        if (run_dir(job, as_of) / "drivers.parquet").exists():
            _run_script(con, "drivers_views")  # runs published before drivers, or with `drivers: false`, lack it
        if (run_dir(job, as_of) / "inventory.parquet").exists():
            _run_script(con, "inventory_views")
        if (run_dir(job, as_of) / "grain_forecasts.parquet").exists():
            _run_script(con, "grain_views")  # jobs with time grains: every grain, a `grain` column to filter on
        found = True
    except FileNotFoundError:
        if as_of:
            raise
    try:
        backtest = run_dir(job, None, subdir="backtests")
        con.execute("SET VARIABLE backtest_dir = ?", [confined_sql.url(job_dir, backtest)])
        _run_script(con, "backtest_views")
        if (backtest / "series_metrics.parquet").exists():
            _run_script(con, "backtest_series_views")
        if (backtest / "window_metrics.parquet").exists():
            _run_script(con, "backtest_window_views")
        if (backtest / "driver_check.parquet").exists():
            _run_script(con, "backtest_driver_views")
        found = True
    except FileNotFoundError:
        pass
    con.execute("SET VARIABLE job_dir = ?", [confined_sql.url(job_dir, job_dir)])
    for script, pattern in (
        ("staffing_views", "scenarios/*/*.parquet"),
        ("staffing_backtest_views", "staffing_backtests/*.parquet"),
    ):
        if any(job_dir.glob(pattern)):
            _run_script(con, script)
            found = True
    if not found:
        raise FileNotFoundError(f"no published run or backtest for job {job.name!r} under {job.output_dir()}")
    return con


def _run_script(con: duckdb.DuckDBPyConnection, name: str) -> None:
    for statement in sql_text(name).split(";"):
        if statement.strip() and not all(line.strip().startswith("--") for line in statement.strip().splitlines()):
            con.execute(statement)
