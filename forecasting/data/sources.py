"""Reading through DuckDB: the job's sources become views, the queries in sql/ turn them into history and prices.

User values (paths, dates, filters) are always bound as parameters. Column and table names cannot be bound, so they
are checked against the source's real columns / catalog first and then quoted as identifiers.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from datetime import date
from importlib import metadata
from pathlib import Path

import duckdb
import polars as pl

from forecasting.data import sql_source, timezones
from forecasting.job.common import project_root
from forecasting.job.errors import InputError
from forecasting.job.schema import JobSpec, TableSource


class SourceError(InputError):
    """A source that cannot be read as configured: missing file, unknown table or column."""


def sql_text(name: str) -> str:
    return (project_root() / "sql" / f"{name}.sql").read_text()


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Relation:
    """How to select from one configured source: a FROM clause and the variables it reads."""

    label: str
    from_clause: str


POSTGRES_PACKAGE = "duckdb-ext-postgres"


def load_postgres_extension(con: duckdb.DuckDBPyConnection) -> None:
    """Load DuckDB's postgres extension from the duckdb-ext-postgres wheel installed with the project, never from
    the network (autoinstall is switched off): a machine without internet access reads PostgreSQL too."""
    try:
        files = metadata.distribution(POSTGRES_PACKAGE).files or []
    except metadata.PackageNotFoundError:
        files = []
    wanted = f"v{duckdb.__version__}/"
    found = [f for f in files if f.name == "postgres_scanner.duckdb_extension" and wanted in f.as_posix()]
    if not found:
        raise SourceError(
            f"a postgres source needs the {POSTGRES_PACKAGE} package built for DuckDB {duckdb.__version__} "
            f"(pip install '{POSTGRES_PACKAGE}=={duckdb.__version__}.*')"
        )
    path = str(found[0].locate())
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("LOAD '" + path.replace("'", "''") + "'")


def postgres_label(source: TableSource) -> str:
    """Where a postgres table is, for messages and the manifest: the connection string without its password."""
    parts = [part for part in source.path.split() if not part.lower().startswith("password")]
    where = re.sub(r"//([^:/@]*):[^/]*@", r"//\1@", " ".join(parts))  # postgresql://user:secret@host/db
    return f"postgres [{where}] {source.schema_name}.{source.table}"


def _relation(con: duckdb.DuckDBPyConnection, source: TableSource, variable: str) -> Relation:
    if source.format == "sql":
        table = f"{variable}_sql"
        if not con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = ?", [table]).fetchall():
            sql_source.materialize(con, source, table)
        return Relation(sql_source.label(source), table)
    if source.format == "postgres":
        label = postgres_label(source)
        load_postgres_extension(con)
        con.execute(f"SET VARIABLE {variable} = ?", [source.path])
        con.execute(f"SET VARIABLE {variable}_schema = ?", [source.schema_name])
        con.execute(f"SET VARIABLE {variable}_table = ?", [source.table])
        args = ", ".join(f"getvariable('{variable}{suffix}')" for suffix in ("", "_schema", "_table"))
        return Relation(label, f"postgres_scan({args})")
    path = source.resolved_path()
    label = str(path) if source.format != "duckdb" else f"{path}:{source.table}"
    if source.format == "duckdb":
        tables = {
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_name = ?", [source.table]
            ).fetchall()
        }
        if source.table not in tables:
            raise SourceError(f"{label}: table {source.table!r} not found in the database")
        return Relation(label, quote_identifier(source.table or ""))
    if "*" not in str(path) and not path.exists():
        raise SourceError(f"{label}: file not found")
    con.execute(f"SET VARIABLE {variable} = ?", [str(path)])
    reader = "read_parquet" if source.format == "parquet" else "read_csv"
    return Relation(label, f"{reader}(getvariable('{variable}'))")


def _columns(con: duckdb.DuckDBPyConnection, relation: Relation) -> dict[str, str]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {relation.from_clause}").fetchall()
    except duckdb.Error as exc:
        raise SourceError(f"{relation.label}: cannot read: {exc}") from exc
    return {row[0]: row[1] for row in rows}


def _define_view(
    con: duckdb.DuckDBPyConnection,
    view: str,
    source: TableSource,
    variable: str,
    wanted: dict[str, str],
    filters: dict[str, list[str]] | None = None,
    text: tuple[str, ...] = (),
    zone: str | None = None,
) -> Relation:
    """Create a temp view `view` with the logical column names in `wanted` (logical -> alias in the view), keeping
    only rows whose `filters` columns (aliases) hold one of the given values (bound through variables; the view
    `<view>_unfiltered` keeps every row, for the data-quality gate). Columns in
    `text` (hierarchy keys) are cast to VARCHAR: they become parts of series ids. A source with a `date` column also
    gets `day`, the date as a day in the data's time zone (forecasting.data.timezones), which every query cuts
    periods from."""
    relation = _relation(con, source, variable)
    present = _columns(con, relation)
    missing = [
        f"{logical} -> {source.columns[logical]!r}" for logical in wanted if source.columns[logical] not in present
    ]
    if missing:
        raise SourceError(
            f"{relation.label}: column(s) not in the file: {', '.join(missing)}; the file has: {', '.join(present)}"
        )
    if "date" in wanted and timezones.text_dates(source, present[source.columns["date"]]):
        con.execute(f"SET VARIABLE {variable}_types = ?", [{source.columns["date"]: "VARCHAR"}])
        relation = Relation(
            relation.label, f"read_csv(getvariable('{variable}'), types=getvariable('{variable}_types'))"
        )
        present = _columns(con, relation)
    parts = []
    for logical, alias in wanted.items():
        column = quote_identifier(source.columns[logical])
        name = quote_identifier(alias)
        parts.append(f"CAST({column} AS VARCHAR) AS {name}" if logical in text else f"{column} AS {name}")
    if "date" in wanted:
        column = source.columns["date"]
        day = timezones.day_expression(
            con, source, quote_identifier(column), present[column], variable, relation.label, zone
        )
        parts.append(f"{day} AS day")
    select = ", ".join(parts)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view}_unfiltered AS SELECT {select} FROM {relation.from_clause}")
    conditions = []
    for i, (alias, values) in enumerate(sorted((filters or {}).items())):
        con.execute(f"SET VARIABLE {view}_filter_{i} = ?", [list(values)])
        conditions.append(f"list_contains(getvariable('{view}_filter_{i}'), {quote_identifier(alias)})")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {view}_unfiltered{where}")
    return relation


# DuckDB's default memory limit is 80 % of the machine; the gate and the history query group and sort every raw row
# (100M at 1M series x 104 weeks), so DuckDB is held to 4 GB and spills to a temp folder (not beside a read-only
# database).
DUCKDB_CONFIG = {"memory_limit": "4GB", "temp_directory": str(Path(tempfile.gettempdir()) / "forecasting-duckdb")}


def connect_sources(job: JobSpec) -> tuple[duckdb.DuckDBPyConnection, dict[str, str]]:
    """A DuckDB connection with views raw_sales, raw_prices, raw_calendar; returns it and each view's file label."""
    sales = job.source.sales
    if sales.format == "duckdb":
        db_path = sales.resolved_path()
        if not db_path.exists():
            raise SourceError(f"{db_path}: DuckDB database file not found")
        con = duckdb.connect(str(db_path), read_only=True, config=DUCKDB_CONFIG)
    else:
        con = duckdb.connect(config=DUCKDB_CONFIG)
    timezones.pin_session(con)
    # Every check and query reads the values themselves: DuckDB would otherwise answer `quantity < 0` (and min/max)
    # from a parquet file's footer statistics, which a damaged data page does not change.
    con.execute("SET disabled_optimizers = 'filter_pushdown,statistics_propagation'")
    zone = job.source.timezone
    labels: dict[str, str] = {}
    keys = job.hierarchy.columns
    filters = job.key_filters()
    sales_cols = {k: k for k in keys} | {"date": "ds_raw", "quantity": "quantity"}
    text = tuple(keys)
    view = "raw_sales"
    if (lines := job.source.order_lines) is not None:
        # Order lines: the view raw_lines holds every line (with its price and order id when the job names them);
        # forecasting.data.order_lines sums them into raw_sales by the job's rules.
        extra = {name: column for name, column in (("price", lines.price), ("order_id", lines.order_id)) if column}
        sales = sales.model_copy(update={"columns": sales.columns | extra})
        sales_cols |= {name: name for name in extra}
        text, view = (*text, "order_id"), "raw_lines"
    labels["raw_sales"] = _define_view(con, view, sales, "sales_path", sales_cols, filters, text, zone).label
    if job.source.calendar is not None:
        calendar_cols = {"date": "day_raw"} | ({"week": "week"} if "week" in job.source.calendar.columns else {})
        labels["raw_calendar"] = _define_view(
            con, "raw_calendar", job.source.calendar, "calendar_path", calendar_cols, zone=zone
        ).label
    if job.source.prices is not None and job.source.calendar is not None:
        prices = job.source.prices
        price_cols = {k: k for k in keys if k in prices.columns} | {"week": "week", "price": "price"}
        price_filters = {k: v for k, v in filters.items() if k in prices.columns}
        labels["raw_prices"] = _define_view(
            con, "raw_prices", prices, "prices_path", price_cols, price_filters, tuple(keys)
        ).label
    return con, labels


def fetch_polars(con: duckdb.DuckDBPyConnection, query: str, params: dict | list | None = None) -> pl.DataFrame:
    return con.execute(query, params or {}).pl()


@dataclass(frozen=True)
class Coverage:
    """The days the sales source covers: what the job says (`observed_from` / `observed_to`) and what the rows hold.
    `data_end` is the last day the rows reach: their last date, or with every row dated on the first day of a period
    (the M5 monthly file, tourism's quarters) the last day of that period."""

    first_row: date
    last_row: date
    data_end: date
    observed_from: date
    observed_to: date


def coverage(con: duckdb.DuckDBPyConnection, job: JobSpec) -> Coverage:
    """The sales data's real first and last days (read from the values), beside the job's `observed_*`."""
    rows = "raw_lines" if job.source.order_lines is not None else "raw_sales"  # order lines: their own days
    first, last, period_dated = con.execute(
        f"SELECT min(day), max(day), bool_and(day = CAST(date_trunc(?, day) AS DATE)) FROM {rows}", [job.freq]
    ).fetchone()
    data_end = last
    if period_dated and job.freq != "day":
        data_end = period_end(con, last, job.freq)
    return Coverage(first, last, data_end, job.source.observed_from or first, job.source.observed_to or data_end)


def period_end(con: duckdb.DuckDBPyConnection, day: date, freq: str) -> date:
    """The last day of the period (of `freq`) that holds `day`."""
    step = {"day": "1 day", "week": "7 days", "month": "1 month", "quarter": "3 months"}[freq]
    return con.execute(
        "SELECT CAST(CAST(date_trunc(?, CAST(? AS DATE)) AS DATE) + CAST(? AS INTERVAL) - INTERVAL 1 DAY AS DATE)",
        [freq, day, step],
    ).fetchone()[0]


def read_history(con: duckdb.DuckDBPyConnection, job: JobSpec, as_of: date, covered: Coverage) -> pl.DataFrame:
    """Bottom series x period sales (the hierarchy keys, ds, y) with coverage columns (days_observed,
    days_in_period, cut_by_as_of)."""
    params = {
        "period": job.freq,
        "as_of": as_of,
        "observed_from": covered.observed_from,
        "observed_to": covered.observed_to,
    }
    keys = job.hierarchy.columns
    return fetch_compact(con, sql_text("sales_history"), params, keys)


def fetch_compact(con: duckdb.DuckDBPyConnection, query: str, params: dict, keys: list[str]) -> pl.DataFrame:
    """A query's rows as polars, with the key columns as Categorical and day counts as Int32.

    DuckDB writes the result to a temporary parquet file (COPY streams it, its sorts and aggregates spill within
    `DUCKDB_CONFIG`'s limit) and polars' streaming engine reads it back compact, row group by row group. A result
    fetched from the connection instead is first materialised whole inside DuckDB, outside its memory limit: 12 GB of
    the 13 at 1M series x 2 years, for a frame of 3 GB once compact. Text keys in every row are most of a history's
    bytes, so the wide string frame of the whole history never exists either."""
    folder = Path(DUCKDB_CONFIG["temp_directory"])
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "result.parquet"
        target = str(path).replace("'", "''")  # a path this function made, not user input
        con.execute(f"COPY (\n{query}\n) TO '{target}' (FORMAT parquet)", params)
        counts = [c for c in ("days_observed", "days_in_period") if c in pl.read_parquet_schema(path)]
        compact = [pl.col(k).cast(pl.Categorical) for k in keys] + [pl.col(c).cast(pl.Int32) for c in counts]
        return pl.scan_parquet(path).with_columns(compact).collect(engine="streaming")


def read_prices(con: duckdb.DuckDBPyConnection, job: JobSpec) -> pl.DataFrame | None:
    lines = job.source.order_lines
    if lines is not None and lines.price is not None:
        step = {"day": "1 day", "week": "7 days", "month": "1 month", "quarter": "3 months"}[job.freq]
        params = {"period": job.freq, "step": step, "horizon": job.horizon}
        return fetch_polars(con, sql_text("order_line_prices"), params)
    if job.source.prices is None:
        return None
    return fetch_polars(con, sql_text("prices"), {"period": job.freq})


def read_calendar_features(con: duckdb.DuckDBPyConnection, job: JobSpec) -> pl.DataFrame | None:
    """Known-ahead calendar features per period: ds, then for each event column one count per value
    (`<column>=<value>`: days with it in the period), each flag summed, each keyed flag as `<name>@<key value>`."""
    spec, calendar = job.source.calendar_features, job.source.calendar
    if spec is None or calendar is None:
        return None
    relation = _relation(con, calendar, "calendar_features_path")
    present = _columns(con, relation)
    missing = [c for c in spec.columns() if c not in present]
    if missing:
        raise SourceError(f"{relation.label}: calendar_features column(s) not in the file: {', '.join(missing)}")
    date_column = calendar.columns["date"]
    day = timezones.day_expression(
        con,
        calendar,
        quote_identifier(date_column),
        present[date_column],
        "calendar_features",
        relation.label,
        job.source.timezone,
    )
    chosen = ", ".join(quote_identifier(c) for c in dict.fromkeys(spec.columns()))
    query = f"SELECT CAST(date_trunc(?, {day}) AS DATE) AS ds, {chosen} FROM {relation.from_clause}"
    days = con.execute(query, [job.freq]).pl()
    parts = [pl.col(c).cast(pl.Float64).alias(c) for c in spec.flags]
    for name, flag in spec.keyed_flags.items():
        parts += [pl.col(column).cast(pl.Float64).alias(f"{name}@{value}") for value, column in flag.columns.items()]
    for column in spec.events:
        values = sorted(v for v in days[column].unique().to_list() if v is not None)
        parts += [(pl.col(column) == v).fill_null(False).cast(pl.Float64).alias(f"{column}={v}") for v in values]
    return days.select("ds", *parts).group_by("ds").sum().sort("ds")


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def input_hashes(job: JobSpec) -> dict[str, str]:
    """sha256 of every input file: the sources and the labour-standards file."""
    sources = [s for s in (job.source.sales, job.source.prices, job.source.calendar) if s is not None]
    hashes = {postgres_label(s): "a PostgreSQL table: not hashed" for s in sources if s.format == "postgres"}
    files = [file for s in sources for file in s.files()]
    if (standards := job.staffing_standards_path()) is not None:
        files.append(standards)
    for file in files:
        hashes[str(file.relative_to(project_root()) if file.is_relative_to(project_root()) else file)] = file_sha256(
            file
        )
    return hashes
