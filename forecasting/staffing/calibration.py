"""Labour standards from observed labour records: units per hour and the spread of realised productivity.

Records hold one row per team (or site) and day with the standard minutes per unit (SMV), the achieved efficiency
(earned / available minutes, e.g. the garment data's `actual_productivity`) and the workers present. Per process:
  units_per_hour  = 60 / (worker-weighted mean SMV) x (mean efficiency)
  productivity_cv = std / mean of the efficiency per period (day or month), worker-weighted within a period, per
                    `by` unit (e.g. team) when given, else for the whole site.
A site-level spread fits a site-level plan; team-level spreads are wider (an upper bound) and are the only choice
when there are few periods (three months of garment data give three site-months).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from forecasting.staffing.standards import COLUMNS, DEFAULT_WAREHOUSE, StandardsError, load_standards

GARMENT_COLUMNS = {
    "date": "date",
    "process": "department",
    "standard_minutes": "smv",
    "efficiency": "actual_productivity",
    "workers": "no_of_workers",
}
MIN_OBSERVATIONS = 8
DEFAULTS = {
    "volume_share": 1.0,
    "pfd_allowance": 0.15,
    "productive_hours_per_shift": 7.5,
    "shifts_per_day": 1,
    "operating_days_per_week": 7.0,
    "working_days_per_week": 5.0,
    "shrinkage": 0.12,
    "min_crew": 1,
}


def read_records(path: Path, columns: dict[str, str]) -> pl.DataFrame:
    """Labour records through DuckDB (parquet or CSV), renamed to the logical columns, rows with missing or
    non-positive values refused with the rows named."""
    if not path.exists():
        raise StandardsError(f"{path}: labour records file not found")
    reader = "read_parquet" if path.suffix == ".parquet" else "read_csv"
    con = duckdb.connect()
    try:
        con.execute("SET VARIABLE records_path = ?", [str(path)])
        relation = f"{reader}(getvariable('records_path'))"
        present = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        missing = [f"{k} -> {v!r}" for k, v in columns.items() if v not in present]
        if missing:
            raise StandardsError(
                f"{path}: column(s) not in the file: {', '.join(missing)}; it has {', '.join(present)}"
            )
        raw = con.execute(f"SELECT * FROM {relation}").pl()
    except duckdb.Error as exc:
        raise StandardsError(f"{path}: cannot read labour records: {exc}") from exc
    finally:
        con.close()
    frame = raw.with_row_index("_line", offset=2).select(
        "_line",
        pl.col(columns["date"]).cast(pl.Date, strict=False).alias("date"),
        pl.col(columns["process"]).cast(pl.String).str.strip_chars().alias("process"),
        *[pl.col(columns[c]).cast(pl.Float64, strict=False).alias(c) for c in ("standard_minutes", "efficiency")],
        pl.col(columns["workers"]).cast(pl.Float64, strict=False).alias("workers"),
        *[pl.col(c) for c in raw.columns if c not in columns.values()],
    )
    for logical in ("date", "process", "standard_minutes", "efficiency", "workers"):
        bad = frame.filter(pl.col(logical).is_null())
        if logical in ("standard_minutes", "efficiency", "workers"):
            bad = frame.filter(pl.col(logical).is_null() | (pl.col(logical) <= 0))
        if bad.height:
            lines = ", ".join(str(v) for v in bad["_line"].head(5))
            raise StandardsError(
                f"{path}: column {columns[logical]} is missing or not positive in {bad.height} row(s), "
                f"e.g. line(s) {lines}"
            )
    return frame


def calibrate(records: pl.DataFrame, freq: str, by: str | None = None) -> pl.DataFrame:
    """Per process: units_per_hour, productivity_cv and how many period (x unit) observations they rest on."""
    group = ["process", "period", *([by] if by else [])]
    per_period = (
        records.with_columns(
            pl.col("date").dt.truncate({"day": "1d", "week": "1w", "month": "1mo"}[freq]).alias("period")
        )
        .group_by(group)
        .agg(
            ((pl.col("efficiency") * pl.col("workers")).sum() / pl.col("workers").sum()).alias("efficiency"),
            ((pl.col("standard_minutes") * pl.col("workers")).sum() / pl.col("workers").sum()).alias("smv"),
            pl.col("workers").sum(),
        )
    )
    table = (
        per_period.group_by("process")
        .agg(
            pl.len().alias("observations"),
            (
                60.0
                / ((pl.col("smv") * pl.col("workers")).sum() / pl.col("workers").sum())
                * pl.col("efficiency").mean()
            ).alias("units_per_hour"),
            (pl.col("efficiency").std() / pl.col("efficiency").mean()).alias("productivity_cv"),
        )
        .sort("process")
    )
    few = table.filter(pl.col("observations") < MIN_OBSERVATIONS)
    if few.height:
        raise StandardsError(
            f"too few {freq} observations to estimate a spread for process(es) "
            f"{', '.join(f'{p} ({n})' for p, n in few.select('process', 'observations').iter_rows())}; "
            f"need {MIN_OBSERVATIONS}: use a shorter period or group by a unit such as team"
        )
    pooled = per_period.with_columns(pl.col("efficiency") / pl.col("efficiency").mean().over("process"))
    pooled_cv = float(pooled["efficiency"].std() / pooled["efficiency"].mean())
    return table.with_columns(pl.lit(pooled_cv).alias("pooled_cv"))


def standards_from_calibration(calibrated: pl.DataFrame, template: Path | None) -> pl.DataFrame:
    """A standards file: with a template, its rows with productivity_cv replaced (the process's own estimate when
    the records have that process, else the pooled spread); without, one default row per recorded process."""
    if template is None:
        return calibrated.select(
            pl.lit(DEFAULT_WAREHOUSE).alias("warehouse"),
            "process",
            *[pl.lit(v).alias(k) for k, v in DEFAULTS.items() if k == "volume_share"],
            "units_per_hour",
            "productivity_cv",
            *[pl.lit(v).alias(k) for k, v in DEFAULTS.items() if k != "volume_share"],
        ).select(COLUMNS)
    base = load_standards(template)
    pooled = calibrated["pooled_cv"][0]
    own = calibrated.select("process", pl.col("productivity_cv").alias("_cv"))
    return (
        base.join(own, on="process", how="left")
        .with_columns(pl.col("_cv").fill_null(pooled).alias("productivity_cv"))
        .select(COLUMNS)
    )


def write_standards(standards: pl.DataFrame, path: Path) -> None:
    """Atomic CSV write (temp then rename), rounded so the file reads well."""
    rounded = standards.with_columns(pl.col(pl.Float64).round(4))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    rounded.write_csv(tmp)
    tmp.replace(path)
