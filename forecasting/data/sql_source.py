"""A job's SQL source (`format: sql`): one SELECT over the job's named parquet or CSV files, with its values bound.

The query runs on its own confined DuckDB connection (forecasting.data.confined): the named files are mounted
read-only as `sources://<name>/...` and exposed as views under their names; external access is then switched off and
the configuration locked, so the query can read those files and nothing else, write nothing, install nothing and
change no setting. Its rows stream (Arrow record batches) into a temporary table of the run's own connection, which
the rest of the load reads like any other source.
"""

from __future__ import annotations

import duckdb

from forecasting.data import confined
from forecasting.job.errors import InputError, one_line
from forecasting.job.schema import TableSource

PROTOCOL = "sources"
MEMORY = "4GB"


class SqlSourceError(InputError):
    """A SQL source that cannot run as written: not one SELECT, a file it may not read, a DuckDB error."""

    stage = "load"


def label(source: TableSource) -> str:
    """How messages and the manifest name a SQL source: its tables' files."""
    files = ", ".join(f"{name}={table.path}" for name, table in source.tables.items())
    return f"sql source over {files}"


def _views(con: duckdb.DuckDBPyConnection, source: TableSource) -> None:
    """One view per named table: a file read through the read-only mount, or a DuckDB table attached read-only
    (before the configuration is locked; ATTACH takes no parameter, so the path is a quoted literal)."""
    for name, table in source.tables.items():
        files = table.files()
        if table.format == "duckdb":
            if not files[0].is_file():
                raise SqlSourceError(f"{label(source)}: table {name!r}: no DuckDB file at {files[0]}")
            literal = "'" + str(files[0]).replace("'", "''") + "'"
            con.execute(f'ATTACH {literal} AS "source_{name}" (READ_ONLY)')
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM "source_{name}"."{table.table}"')
            continue
        if not files or not all(f.is_file() for f in files):
            raise SqlSourceError(f"{label(source)}: table {name!r}: no file at {table.resolved_path()}")
        pattern = f"{PROTOCOL}://{name}/" + ("*" if "*" in table.path else files[0].name)
        reader = "read_parquet" if table.format == "parquet" else "read_csv"
        con.execute(f"SET VARIABLE source_{name} = ?", [pattern])
        con.execute(f"CREATE VIEW \"{name}\" AS SELECT * FROM {reader}(getvariable('source_{name}'))")


def connect(source: TableSource) -> duckdb.DuckDBPyConnection:
    """A connection that can read the source's named files (as views of their names) and nothing else."""
    con = duckdb.connect(config=confined.CONFIG | {"memory_limit": MEMORY})
    files = {name: table.files() for name, table in source.tables.items() if table.format != "duckdb"}
    con.register_filesystem(confined.ReadOnlyFiles(files, protocol=PROTOCOL))
    try:
        _views(con, source)
    except duckdb.Error as exc:
        con.close()
        raise SqlSourceError(f"{label(source)}: cannot read: {one_line(exc)}") from exc
    confined.lock(con, PROTOCOL)
    return con


def materialize(main: duckdb.DuckDBPyConnection, source: TableSource, table: str) -> None:
    """Run the source's query (its parameters bound) confined, and stream its rows into the temporary table `table`
    of `main`. One SELECT only: anything else is refused naming what it was."""
    con = connect(source)
    try:
        try:
            statements = con.extract_statements(source.query or "")
        except duckdb.Error as exc:
            raise SqlSourceError(f"{label(source)}: source.sales.query does not parse: {one_line(exc)}") from exc
        kinds = [statement.type.name for statement in statements]
        if kinds != ["SELECT"]:
            raise SqlSourceError(
                f"{label(source)}: source.sales.query must be one SELECT statement; it holds {', '.join(kinds) or '-'}"
            )
        try:
            reader = con.execute(source.query, dict(source.parameters)).fetch_record_batch()
            main.register(f"{table}_stream", reader)
            main.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {table}_stream")
            main.unregister(f"{table}_stream")
        except duckdb.Error as exc:
            refused = isinstance(exc, duckdb.PermissionException) or confined.READ_ONLY in str(exc)
            why = " (a SQL source reads only the files named in its `tables`)" if refused else ""
            raise SqlSourceError(f"{label(source)}: source.sales.query failed: {one_line(exc)}{why}") from exc
    finally:
        con.close()
