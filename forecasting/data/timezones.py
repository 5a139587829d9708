"""Days from dates and timestamps, in a stated time zone and never the host's.

A source's date column becomes the view column `day` (forecasting.data.sources), and every period is cut from that
day in the SQL. DuckDB casts a TIMESTAMP WITH TIME ZONE to a date in its session zone, which it takes from the
host's TZ: midnight-Sydney quarters read on a UTC host moved one quarter early. So the zone is chosen here:

- the job's `source.timezone` when it states one: timestamps with a zone or an offset are converted to it;
- else each timestamp's own: the zone a parquet file names for its column (arrow's metadata, as polars, pandas and
  pyarrow write it), or the offset written in a CSV's text (`2017-10-01T00:00:00+10:00` is 2017-10-01);
- naive dates and timestamps are taken as they are.

A timestamp column with a zone that neither the file nor the job names (a DuckDB or PostgreSQL TIMESTAMPTZ, a parquet
file without arrow's metadata) is refused: its days depend on a zone nobody stated. The session zone is UTC
anyway, so no other cast can depend on the host.
"""

from __future__ import annotations

import glob
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from forecasting.job.errors import InputError
from forecasting.job.schema import TableSource

ZONED = "TIMESTAMP WITH TIME ZONE"
# Text that ends in a time and an offset or Z: "2017-10-01 00:00:00+10:00", "2017-10-01T00:00Z" (not "2017-10-01").
OFFSET_TEXT = r"[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)? ?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def pin_session(con: duckdb.DuckDBPyConnection) -> None:
    """The connection's own zone is UTC, whatever TZ the host or the user's shell has."""
    con.execute("SET TimeZone = 'UTC'")


def text_dates(source: TableSource, column_type: str) -> bool:
    """Whether a CSV's date column must be read as text: DuckDB's sniffer turns `+10:00` timestamps into instants
    and the offset they were written in is lost; as text, their own day is the one written."""
    return source.format == "csv" and column_type == ZONED


def file_zone(source: TableSource, column: str) -> str | None:
    """The time zone a parquet file names for `column` (arrow's schema metadata), else None."""
    if source.format != "parquet":
        return None
    path = str(source.resolved_path())
    files = sorted(glob.glob(path)) if "*" in path else [path]
    if not files:
        return None
    try:
        field = pq.read_schema(Path(files[0])).field(column)
    except (KeyError, OSError, ValueError):
        return None
    return getattr(field.type, "tz", None)


def day_expression(
    con: duckdb.DuckDBPyConnection,
    source: TableSource,
    column: str,
    column_type: str,
    variable: str,
    label: str,
    zone: str | None,
) -> str:
    """SQL for the day of each row of `column` (quoted), with the zone bound as the variable `<variable>_zone`."""
    if column_type == "DATE":
        return column
    if column_type.startswith("TIMESTAMP") and column_type != ZONED:
        return f"CAST({column} AS DATE)"
    if column_type == ZONED:
        zone = zone or file_zone(source, source.columns["date"])
        if zone is None:
            raise InputError(
                f"{label}: column {source.columns['date']!r} holds timestamps with a time zone, but neither the file "
                "nor the job says which zone its days are counted in; state it as source.timezone (e.g. UTC)"
            )
        _bind_zone(con, variable, zone, label)
        return f"CAST(timezone(getvariable('{variable}_zone'), {column}) AS DATE)"
    if column_type != "VARCHAR":
        return "CAST(NULL AS DATE)"  # a column of the wrong type: the data-quality gate reports it by its type
    if zone is None:
        return f"TRY_CAST({column} AS DATE)"  # the day as written: each text's own offset
    _bind_zone(con, variable, zone, label)
    converted = f"CAST(timezone(getvariable('{variable}_zone'), TRY_CAST({column} AS TIMESTAMPTZ)) AS DATE)"
    return f"CASE WHEN regexp_matches({column}, '{OFFSET_TEXT}') THEN {converted} ELSE TRY_CAST({column} AS DATE) END"


def _bind_zone(con: duckdb.DuckDBPyConnection, variable: str, zone: str, label: str) -> None:
    try:
        con.execute("SELECT timezone(?, TIMESTAMPTZ '2000-01-01 00:00:00+00')", [zone])
    except duckdb.Error as exc:
        raise InputError(f"{label}: time zone {zone!r} is unknown to DuckDB: {exc}") from None
    con.execute(f"SET VARIABLE {variable}_zone = ?", [zone])
