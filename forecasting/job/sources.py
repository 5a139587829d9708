"""Where a job's data comes from: a table (parquet, CSV, a DuckDB table, PostgreSQL) or one confined SELECT over
named files, the calendar's features, and the source section around them (time zone, freshness, bounds, order
lines). Split from forecasting.job.schema, which re-exports these names."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from forecasting.job.common import (
    IDENTIFIER,
    Day,
    Strict,
    project_root,
)
from forecasting.job.order_lines import OrderLinesSpec


class TableSource(Strict):
    """One input table: a parquet or CSV file (or glob), a table inside a DuckDB database file, a PostgreSQL
    table read through DuckDB's postgres extension (`path` is then a libpq connection string such as
    "host=db.internal dbname=sales user=forecasting"; keep the password in PGPASSWORD or ~/.pgpass, not here), or
    (`format: sql`) one SELECT over named parquet or CSV files, run read-only on a DuckDB connection that can read
    those files and nothing else (forecasting.data.sql_source)."""

    path: str = Field("", description="file, glob, DuckDB file or libpq connection string (not with format sql)")
    format: Literal["parquet", "csv", "duckdb", "postgres", "sql"] = Field(
        "parquet", description="how the source is read: a file (parquet, csv), a DuckDB table, PostgreSQL, or SQL"
    )
    table: str | None = Field(None, description="the table, for a duckdb or postgres source")
    schema_name: str = Field("public", description="PostgreSQL schema of `table` (postgres sources only)")
    columns: dict[str, str] = Field(default_factory=dict, description="logical name -> column in the file")
    query: str | None = Field(
        None,
        description="format sql: one SELECT statement reading `tables` by their names, e.g. SELECT * FROM orders "
        "WHERE qty > $min_qty; user values come from `parameters` as $name, bound, never formatted in",
    )
    tables: dict[str, TableSource] = Field(
        default_factory=dict,
        description="format sql: name in the query -> a parquet or CSV file (or glob), or a table of a DuckDB file",
    )
    parameters: dict[str, str | int | float | bool | list[str]] = Field(
        default_factory=dict, description="format sql: $name -> value, bound as a parameter of the query"
    )

    @model_validator(mode="after")
    def _check(self) -> TableSource:
        if self.format in ("duckdb", "postgres") and not self.table:
            raise ValueError(f"a {self.format} source needs `table`")
        for name in (self.table, self.schema_name):
            if name is not None and not IDENTIFIER.match(name):
                raise ValueError(f"table or schema name {name!r} is not a plain identifier")
        for logical, column in self.columns.items():
            if not column or "\x00" in column:
                raise ValueError(f"column for {logical!r} is empty")
        if self.format == "sql":
            if not self.query or not self.query.strip() or "\x00" in self.query:
                raise ValueError("a sql source needs `query`: one SELECT over its `tables`")
            if not self.tables or self.path:
                raise ValueError("a sql source names its files in `tables` (name -> {path, format}), not `path`")
            for name, table in self.tables.items():
                if not IDENTIFIER.match(name) or table.format not in ("parquet", "csv", "duckdb"):
                    raise ValueError(
                        f"sql source table {name!r}: a plain identifier naming a parquet or CSV file or a DuckDB table"
                    )
            for name in self.parameters:
                if not IDENTIFIER.match(name):
                    raise ValueError(f"sql source parameter {name!r} is not a plain identifier")
        else:
            if not self.path or "\x00" in self.path:
                raise ValueError(f"a {self.format} source needs `path`")
            if self.query is not None or self.tables or self.parameters:
                raise ValueError("`query`, `tables` and `parameters` belong to a source with format: sql")
        return self

    def resolved_path(self) -> Path:
        path = Path(self.path)
        return path if path.is_absolute() else project_root() / path

    def files(self) -> list[Path]:
        """The files this source reads (a glob expanded; a sql source's tables' files); none for postgres."""
        if self.format == "postgres":
            return []
        if self.format == "sql":
            return [file for table in self.tables.values() for file in table.files()]
        path = self.resolved_path()
        return sorted(path.parent.glob(path.name)) if "*" in path.name else [path]


class KeyedFlag(Strict):
    """A 0/1 calendar flag that differs per value of a hierarchy key (M5 SNAP days: one column per state)."""

    key: str = Field(description="the hierarchy key whose values pick the column")
    columns: dict[str, str] = Field(description="key value -> calendar column, e.g. CA: snap_CA")


class CalendarFeatures(Strict):
    """Calendar columns known ahead (events, SNAP days) that LightGBM uses as features, counted per period (days
    with the event in a month; 0/1 per day)."""

    events: list[str] = Field(default_factory=list, description="columns naming events or event types")
    flags: list[str] = Field(default_factory=list, description="0/1 columns used as they are")
    keyed_flags: dict[str, KeyedFlag] = Field(default_factory=dict, description="feature name -> per-key columns")

    def columns(self) -> list[str]:
        keyed = [c for flag in self.keyed_flags.values() for c in flag.columns.values()]
        return [*self.events, *self.flags, *keyed]


class SourceSpec(Strict):
    """Where the sales history comes from, and which days it covers (to tell complete periods from partial ones)."""

    sales: TableSource
    order_lines: OrderLinesSpec | None = Field(
        None,
        description="sales holds order lines (several per product and day, returns negative): summed into periods "
        "by the job's rules (forecasting.job.order_lines); default: sales holds one row per series and day or period",
    )
    prices: TableSource | None = None
    calendar: TableSource | None = None
    calendar_features: CalendarFeatures | None = None
    observed_from: Day | None = Field(None, description="first day the sales data covers; default: earliest date")
    observed_to: Day | None = Field(None, description="last day the sales data covers; default: latest date")
    timezone: str | None = Field(
        None,
        description="IANA time zone the data's days are counted in (e.g. Australia/Sydney): timestamps with a time "
        "zone are converted to it before they become days and periods; default: each timestamp's own zone or offset "
        "(as the file states it), and naive dates and timestamps as they are. Never the host's time zone.",
    )
    allow_stale: bool = Field(
        False,
        description="forecast from data that ends more than one period before the as-of date or observed_to (the "
        "run is then published as of the data's last day, and its summary, manifest and report warn); default: "
        "refused",
    )
    max_quantity: float = Field(
        1e12, gt=0, description="largest quantity believed: a larger value is an error naming file, column and rows"
    )

    @field_validator("sales")
    @classmethod
    def _sales_columns(cls, value: TableSource) -> TableSource:
        missing = {"date", "quantity"} - set(value.columns)
        if missing:
            raise ValueError(f"sales.columns must map {sorted(missing)} (and every hierarchy key)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(
                f"timezone {value!r} is not an IANA time zone name such as Australia/Sydney or UTC"
            ) from None
        return value

    @model_validator(mode="after")
    def _prices_need_calendar(self) -> SourceSpec:
        if self.prices is not None:
            need = {"week", "price"} - set(self.prices.columns)
            if need:
                raise ValueError(f"prices.columns must map {sorted(need)} (and the keys prices are set by)")
            if self.calendar is None or {"date", "week"} - set(self.calendar.columns):
                raise ValueError("prices keyed by week need a calendar with columns date and week")
        if self.calendar_features is not None and (self.calendar is None or "date" not in self.calendar.columns):
            raise ValueError("calendar_features need a calendar with a date column")
        if self.observed_from and self.observed_to and self.observed_from > self.observed_to:
            raise ValueError("observed_from is after observed_to")
        return self
