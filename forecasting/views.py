"""DuckDB views over a published run (sql/views.sql), shared by the CLI and tests."""

from __future__ import annotations

import duckdb

from forecasting.config import JobSpec
from forecasting.io import sql_text
from forecasting.outputs import run_dir


def open_views(job: JobSpec, as_of: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views defined over the job's latest (or given) run."""
    folder = run_dir(job, as_of)
    con = duckdb.connect()
    con.execute("SET VARIABLE run_dir = ?", [str(folder)])
    for statement in sql_text("views").split(";"):
        if statement.strip() and not all(line.strip().startswith("--") for line in statement.strip().splitlines()):
            con.execute(statement)
    return con
