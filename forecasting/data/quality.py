"""Data-quality gate: every problem in the input is found before anything is fitted, and reported in one error
that names the file, the column and example rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from forecasting.data.freshness import period_start
from forecasting.data.sources import period_end, quote_identifier
from forecasting.job.errors import InputError
from forecasting.job.schema import POLARS_FREQ, JobSpec

EXAMPLES = 5


@dataclass(frozen=True)
class Problem:
    file: str
    column: str
    what: str
    count: int
    examples: list[tuple]

    def render(self) -> str:
        rows = ", ".join("(" + ", ".join(_show(v) for v in row) + ")" for row in self.examples)
        return f"{self.file} [column {self.column}]: {self.what} ({self.count} rows)" + (
            f", e.g. {rows}" if rows else ""
        )


def _show(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return repr(value) if isinstance(value, str) else str(value)


class DataQualityError(InputError):
    """The input failed the gate. Nothing has been fitted or written."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("input failed the data-quality gate: " + "; ".join(p.render() for p in problems))


def _check(
    con: duckdb.DuckDBPyConnection, file: str, column: str, what: str, where: str, params: dict | None = None
) -> Problem | None:
    """Count and sample raw_sales rows matching `where` (a fixed clause written in this module, never user text)."""
    return check_table(con, "raw_sales", file, column, what, where, params)


def check_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    file: str,
    column: str,
    what: str,
    where: str,
    params: dict | None = None,
) -> Problem | None:
    """Count and sample the rows of `table` (raw_sales, or raw_lines of order lines) matching `where`; both are
    fixed text of the calling module, never user text."""
    count = con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params or {}).fetchone()[0]
    if not count:
        return None
    examples = con.execute(f"SELECT {ROW} FROM {table} WHERE {where} LIMIT {EXAMPLES}", params or {}).fetchall()
    return Problem(file, column, what, count, examples)


ROW = "* EXCLUDE (day)"  # a row as the file holds it, for the examples (`day` is computed, sources._define_view)
NUMBER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "U")
DATE_TYPES = ("DATE", "TIMESTAMP")


def _column_types(con: duckdb.DuckDBPyConnection, job: JobSpec, file: str, total: int) -> list[Problem]:
    """Wrong column types, by the file's own schema: a quantity must be a number (or text holding numbers), a date a
    date or timestamp (or text holding dates). A boolean quantity or an integer date would otherwise be cast quietly
    or reported row by row."""
    types = {row[0]: row[1] for row in con.execute("DESCRIBE SELECT ds_raw, quantity FROM raw_sales").fetchall()}
    wanted = {"ds_raw": ("date", DATE_TYPES, "a date"), "quantity": ("quantity", NUMBER_TYPES, "a number")}
    problems = []
    for alias, (logical, allowed, what) in wanted.items():
        kind = types[alias]
        if kind != "VARCHAR" and not kind.startswith(allowed):
            examples = con.execute(f"SELECT {ROW} FROM raw_sales LIMIT {EXAMPLES}").fetchall()
            column = job.source.sales.columns[logical]
            problems.append(Problem(file, column, f"column type {kind}, expected {what}", total, examples))
    return problems


QUANTITY = "CAST(quantity AS DOUBLE)"


def _value_checks(con: duckdb.DuckDBPyConnection, job: JobSpec, file: str, total: int) -> list[Problem | None]:
    """Quantities that cannot be sales: not finite, negative, above the job's `source.max_quantity`, or all zero.
    Read from the values (the connection never prunes a filter with the file's statistics, sources.connect_sources)."""
    column, bound = job.source.sales.columns["quantity"], job.source.max_quantity
    checks = [
        _check(con, file, column, "values that are not finite (NaN or infinity)", f"NOT isfinite({QUANTITY})"),
        _check(con, file, column, "negative sales", f"isfinite({QUANTITY}) AND {QUANTITY} < 0"),
        _check(
            con,
            file,
            column,
            f"values above source.max_quantity={bound:g}",
            f"isfinite({QUANTITY}) AND {QUANTITY} > $bound",
            {"bound": bound},
        ),
    ]
    checks += _outside_observed(con, job, file)
    if total and not any(checks) and _check(con, file, column, "", f"{QUANTITY} <> 0") is None:
        examples = con.execute(f"SELECT {ROW} FROM raw_sales LIMIT {EXAMPLES}").fetchall()
        checks.append(Problem(file, column, "every quantity is 0: there is nothing to forecast", total, examples))
    return checks


def _outside_observed(con: duckdb.DuckDBPyConnection, job: JobSpec, file: str) -> list[Problem | None]:
    """Rows in a period before the one of `observed_from` or after the one of `observed_to`: the job says the data
    covers less than it holds, or its days were shifted (a time zone: midnight in Sydney is the day before in UTC)."""
    source, column = job.source, job.source.sales.columns["date"]
    hint = "; if the file's timestamps carry a time zone, state the data's as source.timezone"
    checks = []
    if source.observed_from is not None:
        first = period_start(source.observed_from, job.freq)
        what = f"dates before {first}, the first {job.freq} of source.observed_from={source.observed_from}{hint}"
        checks.append(_check(con, file, column, what, "day < $first", {"first": first}))
    if source.observed_to is not None:
        last = period_end(con, source.observed_to, job.freq)
        what = f"dates after {last}, the last {job.freq} of source.observed_to={source.observed_to}{hint}"
        checks.append(_check(con, file, column, what, "day > $last", {"last": last}))
    return checks


def check_raw(con: duckdb.DuckDBPyConnection, job: JobSpec, file: str) -> None:
    """Checks on the raw rows: emptiness, types, nulls, negatives, duplicates, hierarchy consistency."""
    cols = job.source.sales.columns
    if con.execute("SELECT count(*) FROM raw_sales_unfiltered").fetchone()[0] == 0:
        raise DataQualityError([Problem(file, "*", "the file has no rows", 0, [])])
    total = con.execute("SELECT count(*) FROM raw_sales").fetchone()[0]
    keys = job.hierarchy.columns
    quoted = {k: quote_identifier(k) for k in keys}
    problems: list[Problem] = _column_types(con, job, file, total)
    if problems:  # row checks on a column of the wrong type would only repeat the same fault row by row
        raise DataQualityError(problems)
    for logical in (*keys, "date", "quantity"):
        alias = {"date": "ds_raw"}.get(logical, quoted.get(logical, logical))
        problems.append(_check(con, file, cols[logical], "null values", f"{alias} IS NULL"))
    problems.append(
        _check(
            con,
            file,
            cols["quantity"],
            "values that are not numbers",
            "quantity IS NOT NULL AND TRY_CAST(quantity AS DOUBLE) IS NULL",
        )
    )
    problems.append(
        _check(
            con,
            file,
            cols["date"],
            "values that are not dates",
            "ds_raw IS NOT NULL AND day IS NULL",
        )
    )
    if any(problems):
        raise DataQualityError([p for p in problems if p])
    problems += _value_checks(con, job, file, total)
    for logical in keys:
        what = "key values holding '/', which separates the keys in series ids"
        problems.append(_check(con, file, cols[logical], what, f"strpos({quoted[logical]}, '/') > 0"))
    identity = job.hierarchy.identity
    key = ", ".join([*(quoted[k] for k in identity), "day"])
    duplicate = f"({key}) IN (SELECT ({key}) FROM raw_sales GROUP BY ALL HAVING count(*) > 1)"
    key_columns = ", ".join([*(cols[k] for k in identity), cols["date"]])
    problems.append(_check(con, file, key_columns, "duplicate keys", duplicate))
    for child, parent in job.hierarchy.nested.items():
        split = (
            f"{quoted[child]} IN (SELECT {quoted[child]} FROM raw_sales GROUP BY ALL "
            f"HAVING count(DISTINCT {quoted[parent]}) > 1)"
        )
        problems.append(_check(con, file, cols[parent], f"{child} assigned to more than one {parent}", split))
    for logical, wanted in job.key_filters().items():
        known = {
            row[0]
            for row in con.execute(
                f"SELECT DISTINCT {quoted[logical]} FROM raw_sales_unfiltered "
                f"WHERE list_contains(CAST(? AS VARCHAR[]), {quoted[logical]})",
                [list(wanted)],
            ).fetchall()
        }
        unknown = sorted(set(wanted) - known)
        if unknown:
            problems.append(
                Problem(
                    file,
                    cols[logical],
                    f"{logical} filter names values not in the data",
                    len(unknown),
                    [(u,) for u in unknown[:EXAMPLES]],
                )
            )
    found = [p for p in problems if p]
    if not found and total == 0:
        filters = job.key_filters()
        columns = ", ".join(cols[k] for k in filters)
        found = [Problem(file, columns, "the filters select no rows", 0, [tuple(str(v) for v in filters.values())])]
    if found:
        raise DataQualityError(found)


def check_history(history: pl.DataFrame, job: JobSpec, file: str, last_period: date) -> pl.DataFrame:
    """Checks on the per-period history: gaps (zero-filled only when the job says so) and colliding ids. Short
    series pass: forecasting.models.young routes them to the models that can forecast them."""
    cols = job.source.sales.columns
    if history.is_empty():
        raise DataQualityError([Problem(file, cols["date"], "no complete period on or before the as-of date", 0, [])])
    # utilsforecast's fill_gaps adds every missing period from each series' first one to the last complete period.
    # It runs on the series that have fewer rows than periods from their first one to `last_period` (counted on the
    # period grid; every ds is a period start), not on the whole history (100M rows at 1M series).
    from utilsforecast.preprocessing import fill_gaps  # here: it imports dask, seconds of every CLI command's start

    keys = job.hierarchy.columns
    grid = pl.date_range(history["ds"].min(), last_period, interval=POLARS_FREQ[job.freq], eager=True)
    # polars' streaming engine groups morsel by morsel: the in-memory group-by held 2.7x the history in row-encoded
    # keys and row indices (8 GB at 1M series x 2 years), this one only the groups.
    spans = history.lazy().group_by(keys).agg(pl.len().alias("n"), pl.col("ds").min().alias("first"))
    spans = spans.collect(engine="streaming")
    periods_from_first = grid.len() - grid.search_sorted(spans["first"], side="left").cast(pl.Int64)
    short_of_grid = spans.filter(pl.col("n") < periods_from_first).select(keys)
    keyed = history.join(short_of_grid, on=keys, how="semi").with_columns(
        pl.concat_str(keys, separator="/").alias("series_key")
    )
    full = fill_gaps(
        keyed.select("series_key", "ds", "y"), freq=POLARS_FREQ[job.freq], end=last_period, id_col="series_key"
    )
    key_values = keyed.select("series_key", *keys).unique()
    gaps = full.filter(pl.col("y").is_null()).join(key_values, on="series_key").sort("series_key", "ds")
    if gaps.height:
        if not job.zero_fill_gaps:
            raise DataQualityError(
                [
                    Problem(
                        file,
                        cols["date"],
                        "missing periods between a series' first period and the last complete period "
                        f"{last_period} (set zero_fill_gaps: true to count them as 0 sales)",
                        gaps.height,
                        [tuple(r) for r in gaps.select(*keys, "ds").head(EXAMPLES).rows()],
                    )
                ]
            )
        # Appended, not sorted in: build_hierarchy orders every level's rows itself, and a sorted copy of the whole
        # history (GBs at 1M series) is what the gate would otherwise hold twice.
        fill = gaps.select(*keys, "ds", pl.lit(0.0).alias("y")).cast(dict(history.schema))
        history = pl.concat([history, fill.select(history.columns)], rechunk=False)
    # A series shorter than a model needs is no error: it is forecast by the models that can (models.young).
    problems = []
    problems += _colliding_ids(history, job, file)
    if problems:
        raise DataQualityError(problems)
    return history


def _colliding_ids(history: pl.DataFrame, job: JobSpec, file: str) -> list[Problem]:
    """Series of different levels (or keys) that would get the same id: hierarchicalforecast joins a series' keys
    with '/' into its id, so in a grouped hierarchy a region named like a purpose collides with it."""
    keys = job.hierarchy.columns
    series = history.lazy().select(keys).unique().collect().with_columns(pl.col(keys).cast(pl.String))
    ids = pl.concat(
        [
            series.select(
                pl.concat_str([pl.lit("total"), *keys_], separator="/").alias("unique_id"),
                pl.lit(level).alias("level"),
                pl.concat_str([pl.lit(f"{k}=") + pl.col(k) for k in keys_], separator=", ").alias("keys")
                if keys_
                else pl.lit("").alias("keys"),
            ).unique()
            for level, keys_ in job.hierarchy.levels.items()
        ]
    )
    clashes = ids.filter(pl.col("unique_id").is_duplicated()).sort("unique_id", "level")
    if clashes.is_empty():
        return []
    columns = ", ".join(job.source.sales.columns[k] for k in keys)
    what = "key values that give two series of different levels the same id"
    examples = [tuple(r) for r in clashes.head(EXAMPLES).rows()]
    return [Problem(file, columns, what, clashes["unique_id"].n_unique(), examples)]


def check_backtest(y: pl.DataFrame, members: pl.DataFrame, job: JobSpec, windows: int, step: int, file: str) -> None:
    """Before any backtest fit: the windows must leave history before the first cutoff. A series too short there
    for its level's models is no error: the backtest forecasts it with the launch models (forecasting.models.young),
    as the nightly run would have."""
    offset = job.horizon + step * (windows - 1)
    periods = y["ds"].n_unique()
    if periods - offset < 1:
        what = (
            f"{windows} backtest windows of {job.horizon}, {step} apart, take the last {offset} periods of {periods}, "
            "leaving none before the first cutoff; backtest with fewer windows (--windows)"
        )
        raise DataQualityError([Problem(file, job.source.sales.columns["date"], what, periods, [])])
