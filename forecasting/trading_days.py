"""Calendar (trading-day) adjustment of monthly and quarterly sales.

A month's sales depend on how many days it has and which weekdays they are: Feb 2016 had a 29th day, Jan 2016 five
Fridays, Saturdays and Sundays where Jan 2015 had five Thursdays, Fridays and Saturdays. A seasonal model sees the
month of the year, not that, so it reads the difference as noise or as trend (fpp3 section 3.1, calendar
adjustments). With `models.trading_days` every model is fitted on y / f and every forecast, interval bound and
in-sample fit is multiplied back by f, where f is the period's weekday-weighted count of open days over the
average period length. f is the same for every series in a period, so sums over the hierarchy are unchanged and
reconciliation sees units. It is known for any future period: nothing is estimated at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl

from forecasting.specs import TradingDaysSpec
from forecasting.transforms import closed_mask

PERIOD_STEP = {"month": "1mo", "quarter": "3mo"}
MEAN_DAYS = {"month": 365.2425 / 12, "quarter": 365.2425 / 4}
FACTOR = "__trading_factor"


class DailyFileError(ValueError):
    """A daily sales file the weekday weights cannot be computed from; the message names file, column and rows."""


def read_daily(path: Path, date_col: str, value_col: str, filters: dict[str, str], until: date | None) -> pl.DataFrame:
    """`date_col` and `value_col` of a parquet or CSV file, rows kept where every `filters` column equals its value
    (compared as text) and the date is on or before `until`; unreadable dates or negative / non-numeric values are
    refused with the rows named (CSV: file lines; parquet: 0-based rows)."""
    if not path.exists():
        raise DailyFileError(f"{path}: file not found")
    try:
        raw = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DailyFileError(f"{path}: cannot read it: {exc}") from exc
    missing = [c for c in (date_col, value_col, *filters) if c not in raw.columns]
    if missing:
        raise DailyFileError(f"{path}: column(s) {missing} not in the file; it has {raw.columns}")
    offset, unit = (0, "rows") if path.suffix == ".parquet" else (2, "lines")
    frame = raw.with_row_index("_row", offset=offset)
    for column, value in filters.items():
        frame = frame.filter(pl.col(column).cast(pl.String) == value)
    as_date = pl.col(date_col)
    as_date = as_date.str.to_date(strict=False) if raw.schema[date_col] == pl.String else as_date.cast(pl.Date)
    frame = frame.select(
        "_row",
        as_date.alias("date"),
        pl.col(value_col).cast(pl.Float64, strict=False).alias("value"),
        pl.col(date_col).is_null().alias("_no_date"),
        pl.col(value_col).is_null().alias("_no_value"),
    )
    for column, bad in (
        (date_col, pl.col("date").is_null() & ~pl.col("_no_date")),
        (value_col, (pl.col("value").is_null() & ~pl.col("_no_value")) | (pl.col("value") < 0)),
    ):
        rows = frame.filter(bad)["_row"].to_list()
        if rows:
            shown = ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
            raise DailyFileError(f"{path}: column {column!r} is not a date / a non-negative number in {unit} {shown}")
    frame = frame.drop_nulls(["date", "value"])
    if until is not None:
        frame = frame.filter(pl.col("date") <= until)
    if frame.is_empty():
        raise DailyFileError(f"{path}: no rows left after the filters {filters} and --until {until}")
    return frame.select("date", "value")


def weekday_weights(daily: pl.DataFrame, date_col: str, value_col: str, closed_days: Sequence[str] = ()) -> list[float]:
    """Mean daily `value_col` per weekday (Monday first) over the open days, divided by the mean of the seven: the
    weights `models.trading_days.weekday_weights` takes. `daily` may hold several series: they are summed per day."""
    days = daily.group_by(date_col).agg(pl.col(value_col).sum())
    if closed_days:
        days = days.filter(~closed_mask(pl.col(date_col), list(closed_days)))
    means = days.group_by(pl.col(date_col).dt.weekday().alias("weekday")).agg(pl.col(value_col).mean()).sort("weekday")
    if means.height != 7:
        raise DailyFileError(f"weekday weights need every weekday in {date_col!r}; found {means['weekday'].to_list()}")
    values = means[value_col].to_list()
    mean = sum(values) / 7
    return [round(v / mean, 4) for v in values]


def period_factors(ds: pl.Series, freq: str, spec: TradingDaysSpec, closed_days: Sequence[str] = ()) -> pl.DataFrame:
    """(ds, factor) for every distinct period start in `ds`: the sum of the weekday weights of the period's open
    days over the average period length (weights scaled to a mean of 1, so f is near 1 for an average period)."""
    weights = spec.weekday_weights
    scaled = {i + 1: w * 7 / sum(weights) for i, w in enumerate(weights)}
    starts = ds.cast(pl.Date).unique().to_frame("ds")
    end = pl.col("ds").dt.offset_by(PERIOD_STEP[freq]).dt.offset_by("-1d")
    days = starts.with_columns(pl.date_ranges("ds", end).alias("day")).explode("day")
    if closed_days:
        days = days.filter(~closed_mask(pl.col("day"), list(closed_days)))
    weight = pl.col("day").dt.weekday().replace_strict(scaled, return_dtype=pl.Float64)
    return days.group_by("ds").agg((weight.sum() / MEAN_DAYS[freq]).alias(FACTOR))


def _with_factor(frame: pl.DataFrame, freq: str, spec: TradingDaysSpec, closed_days: Sequence[str]) -> pl.DataFrame:
    factors = period_factors(frame["ds"], freq, spec, closed_days)
    key = pl.col("ds").cast(pl.Date).alias("__period")
    return frame.with_columns(key).join(factors.rename({"ds": "__period"}), on="__period", how="left").drop("__period")


def adjust(Y: pl.DataFrame, freq: str, spec: TradingDaysSpec | None, closed_days: Sequence[str] = ()) -> pl.DataFrame:
    """y per trading-day-adjusted period (y / f); `Y` unchanged without a spec."""
    if spec is None or Y.is_empty():
        return Y
    out = _with_factor(Y, freq, spec, closed_days)
    return out.with_columns((pl.col("y") / pl.col(FACTOR)).alias("y")).drop(FACTOR)


def restore(
    frame: pl.DataFrame, freq: str, spec: TradingDaysSpec | None, closed_days: Sequence[str] = ()
) -> pl.DataFrame:
    """Every float column (forecasts, interval bounds, fits, y) times f: back from adjusted periods to units."""
    if spec is None or frame.is_empty():
        return frame
    values = [c for c, t in frame.schema.items() if t.is_float()]
    out = _with_factor(frame, freq, spec, closed_days)
    return out.with_columns(pl.col(c) * pl.col(FACTOR) for c in values).drop(FACTOR)
