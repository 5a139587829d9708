"""Labour standards as data: the standards file (warehouse x process) and its checks.

A standards file is a CSV (or parquet) with one row per warehouse and process; warehouse `*` is the default row a
warehouse falls back to for a process it does not list. Bad files fail with one error naming the file, the column
and the rows, before any plan is computed.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from forecasting.job.errors import InputError

DEFAULT_WAREHOUSE = "*"
REQUIRED_PROCESSES = ("receiving", "putaway", "picking", "packing", "shipping", "returns")

# column -> (type, lowest allowed, highest allowed, lowest excluded, highest excluded)
NUMERIC_COLUMNS: dict[str, tuple[type, float, float, bool, bool]] = {
    "volume_share": (float, 0.0, 10.0, False, False),  # units through the process per unit of demand (returns ~0.1)
    "units_per_hour": (float, 0.0, 100_000.0, True, False),  # at standard, per productive labour hour
    "productivity_cv": (float, 0.0, 2.0, False, False),  # spread of realised / standard productivity per period
    "pfd_allowance": (float, 0.0, 1.0, False, False),  # personal, fatigue and delay
    "productive_hours_per_shift": (float, 0.0, 24.0, True, False),
    "shifts_per_day": (int, 1, 4, False, False),
    "operating_days_per_week": (float, 0.0, 7.0, True, False),  # days the site runs
    "working_days_per_week": (float, 0.0, 7.0, True, False),  # days one FTE works
    "shrinkage": (float, 0.0, 1.0, False, True),  # absence, leave, training
    "min_crew": (int, 0, 10_000, False, False),  # people per shift, whatever the volume
}
COLUMNS = ["warehouse", "process", *NUMERIC_COLUMNS]


class StandardsError(InputError):
    """A labour-standards file that cannot be used: the message names the file, column and rows."""


def load_standards(path: Path) -> pl.DataFrame:
    """Read and check a standards file: every column present, typed and in range; no duplicate rows."""
    if not path.exists():
        raise StandardsError(f"{path}: labour-standards file not found")
    try:
        raw = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise StandardsError(f"{path}: cannot read labour standards: {exc}") from exc
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise StandardsError(f"{path}: missing column(s) {', '.join(missing)}; the file has {', '.join(raw.columns)}")
    if raw.height == 0:
        raise StandardsError(f"{path}: the file has no rows")
    frame = raw.select(
        pl.col("warehouse").cast(pl.String).str.strip_chars(),
        pl.col("process").cast(pl.String).str.strip_chars().str.to_lowercase(),
        *[pl.col(c) for c in NUMERIC_COLUMNS],
        pl.int_range(pl.len()).alias("_row") + 2,  # the line in a CSV with a header
    )
    for column in ("warehouse", "process"):
        _fail_rows(path, column, frame.filter(pl.col(column).is_null() | (pl.col(column) == "")), "is empty")
    for column, (kind, low, high, open_low, open_high) in NUMERIC_COLUMNS.items():
        target = pl.Int64 if kind is int else pl.Float64
        value = pl.col(column).cast(pl.String).str.strip_chars().cast(target, strict=False)
        _fail_rows(path, column, frame.filter(value.is_null()), f"is not {'an integer' if kind is int else 'a number'}")
        frame = frame.with_columns(value.alias(column))
        below = pl.col(column) <= low if open_low else pl.col(column) < low
        above = pl.col(column) >= high if open_high else pl.col(column) > high
        bad = frame.filter(below | above | pl.col(column).is_nan())
        bounds = f"{'>' if open_low else '>='} {low:g} and {'<' if open_high else '<='} {high:g}"
        _fail_rows(path, column, bad, f"must be {bounds}")
    duplicated = frame.filter(pl.struct("warehouse", "process").is_duplicated())
    _fail_rows(path, "warehouse, process", duplicated, "repeats a warehouse x process pair")
    return frame.drop("_row")


def _fail_rows(path: Path, column: str, rows: pl.DataFrame, problem: str) -> None:
    if rows.height == 0:
        return
    examples = "; ".join(
        f"line {r['_row']}: {r['warehouse']}/{r['process']}" for r in rows.head(5).iter_rows(named=True)
    )
    more = f" (and {rows.height - 5} more)" if rows.height > 5 else ""
    raise StandardsError(f"{path}: column {column} {problem} in {rows.height} row(s): {examples}{more}")


def standards_for(standards: pl.DataFrame, warehouses: list[str], path: Path, strict: bool = True) -> pl.DataFrame:
    """One row per warehouse x process for the given warehouses: the warehouse's own rows, else the default row.
    Every warehouse must end up with every required process. With `strict` (a job over all its data), rows for
    warehouses not in the forecast are errors: a typo would otherwise silently fall back to the default. A job
    filtered to a slice ignores them."""
    named = standards.filter(pl.col("warehouse") != DEFAULT_WAREHOUSE)
    unknown = sorted(set(named["warehouse"]) - set(warehouses))
    if unknown and strict:
        raise StandardsError(
            f"{path}: column warehouse names warehouse(s) not in the forecast: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(warehouses))}"
        )
    defaults = standards.filter(pl.col("warehouse") == DEFAULT_WAREHOUSE).drop("warehouse")
    processes = sorted(set(standards["process"]) | set(REQUIRED_PROCESSES))
    grid = pl.DataFrame({"warehouse": sorted(warehouses)}).join(pl.DataFrame({"process": processes}), how="cross")
    own = grid.join(named.filter(pl.col("warehouse").is_in(warehouses)), on=["warehouse", "process"], how="inner")
    fallback = grid.join(own.select("warehouse", "process"), on=["warehouse", "process"], how="anti").join(
        defaults, on="process", how="inner"
    )
    resolved = pl.concat([own, fallback.select(own.columns)]).sort("warehouse", "process")
    gaps = grid.join(resolved.select("warehouse", "process"), on=["warehouse", "process"], how="anti")
    required_gaps = gaps.filter(pl.col("process").is_in(list(REQUIRED_PROCESSES)))
    if required_gaps.height:
        pairs = ", ".join(f"{w}/{p}" for w, p in required_gaps.head(8).iter_rows())
        raise StandardsError(
            f"{path}: column process is missing for {required_gaps.height} warehouse x process pair(s): {pairs}; "
            f"every warehouse needs {', '.join(REQUIRED_PROCESSES)} (its own row or a '{DEFAULT_WAREHOUSE}' row)"
        )
    return resolved
