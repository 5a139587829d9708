"""Data-quality gate: every problem in the input is found before anything is fitted, and reported in one error
that names the file, the column and example rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl
from utilsforecast.preprocessing import fill_gaps

from forecasting.data.sources import quote_identifier
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
        rows = "; ".join("(" + ", ".join(_show(v) for v in row) + ")" for row in self.examples)
        return f"- {self.file} [column {self.column}]: {self.what} ({self.count} rows), e.g. {rows}"


def _show(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return repr(value) if isinstance(value, str) else str(value)


class DataQualityError(ValueError):
    """The input failed the gate. Nothing has been fitted or written."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("input failed the data-quality gate:\n" + "\n".join(p.render() for p in problems))


def _check(
    con: duckdb.DuckDBPyConnection, file: str, column: str, what: str, where: str, params: dict | None = None
) -> Problem | None:
    """Count and sample raw_sales rows matching `where` (a fixed clause written in this module, never user text)."""
    count = con.execute(f"SELECT count(*) FROM raw_sales WHERE {where}", params or {}).fetchone()[0]
    if not count:
        return None
    examples = con.execute(f"SELECT * FROM raw_sales WHERE {where} LIMIT {EXAMPLES}", params or {}).fetchall()
    return Problem(file, column, what, count, examples)


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
            examples = con.execute(f"SELECT * FROM raw_sales LIMIT {EXAMPLES}").fetchall()
            column = job.source.sales.columns[logical]
            problems.append(Problem(file, column, f"column type {kind}, expected {what}", total, examples))
    return problems


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
            "ds_raw IS NOT NULL AND TRY_CAST(ds_raw AS DATE) IS NULL",
        )
    )
    if any(problems):
        raise DataQualityError([p for p in problems if p])
    problems.append(_check(con, file, cols["quantity"], "negative sales", "CAST(quantity AS DOUBLE) < 0"))
    identity = job.hierarchy.identity
    key = ", ".join([*(quoted[k] for k in identity), "CAST(ds_raw AS DATE)"])
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
    """Checks on the per-period history: gaps (zero-filled only when the job says so) and too-short series."""
    cols = job.source.sales.columns
    if history.is_empty():
        raise DataQualityError([Problem(file, cols["date"], "no complete period on or before the as-of date", 0, [])])
    # utilsforecast's fill_gaps adds every missing period from each series' first one to the last complete period.
    # It runs on the series that have fewer rows than periods from their first one to `last_period` (counted on the
    # period grid; every ds is a period start), not on the whole history (100M rows at 1M series).
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
    lengths = history.lazy().group_by(keys).agg(pl.len().alias("n")).collect(engine="streaming").sort(keys)
    needed, what = job.min_history, f"min_history={job.min_history} complete periods"
    if set(job.models.bottom_models) & set(job.models.lightgbm_names):
        # The bottom LightGBMs refuse a shorter series (lightgbm_models._check_history) after the statistical
        # models have run; the gate says so first, with the series.
        lag, calibration = job.lightgbm_history()
        if lag + calibration + 1 > needed:
            needed = lag + calibration + 1
            what = (
                f"{needed} complete periods, which the bottom LightGBM needs: {lag} (the longest lag) + "
                f"{calibration} (models.conformal_windows={job.models.conformal_windows} windows of {job.horizon}) + 1"
            )
    short = lengths.filter(pl.col("n") < needed)
    if short.height:
        raise DataQualityError(
            [
                Problem(
                    file,
                    cols["date"],
                    f"series shorter than {what}",
                    short.height,
                    [tuple(r) for r in short.head(EXAMPLES).rows()],
                )
            ]
        )
    return history
