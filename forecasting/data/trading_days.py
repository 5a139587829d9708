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

from forecasting.data.transforms import closed_mask
from forecasting.job.errors import InputError
from forecasting.job.models import TRADING_DAY_PERIODS, TradingDaysSpec
from forecasting.job.schema import POLARS_FREQ, JobSpec

FACTOR = "__trading_factor"


class DailyFileError(InputError):
    """A daily sales file the weekday weights cannot be computed from; the message names file, column and rows."""


def read_daily(path: Path, date_col: str, value_col: str, filters: dict[str, str], until: date | None) -> pl.DataFrame:
    """`date_col` and `value_col` of a parquet or CSV file, rows kept where every `filters` column equals its value
    (compared as text) and the date is on or before `until`; unreadable dates or negative / non-numeric values are
    refused with the rows named (CSV: file lines; parquet: 0-based rows), as are empty cells."""
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
    dtype = raw.schema[date_col]
    if dtype == pl.String:
        as_date = pl.col(date_col).str.to_date(strict=False)
    elif dtype == pl.Date or isinstance(dtype, pl.Datetime):
        as_date = pl.col(date_col).cast(pl.Date)
    else:
        raise DailyFileError(f"{path}: column {date_col!r} holds {dtype}, not dates")
    value = pl.col(value_col).cast(pl.Float64, strict=False)
    frame = frame.select("_row", as_date.alias("date"), value.alias("value"))
    for column, bad, what in (
        (date_col, pl.col("date").is_null(), "a date"),
        (value_col, pl.col("value").is_null() | pl.col("value").is_nan() | (pl.col("value") < 0), "a number >= 0"),
    ):
        rows = frame.filter(bad)["_row"].to_list()
        if rows:
            shown = ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
            raise DailyFileError(f"{path}: column {column!r} is empty or not {what} in {unit} {shown}")
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
    if mean <= 0:
        raise DailyFileError(f"weekday weights need sales above 0 in {value_col!r}; every day sold 0")
    return [round(v / mean, 4) for v in values]


def weekday_weights_of_file(
    path: Path, date_col: str, value_col: str, filters: dict[str, str], until: date | None, closed: Sequence[str]
) -> tuple[list[float], pl.DataFrame]:
    """read_daily then weekday_weights (what `forecasting weekday-weights` prints), every error naming the file."""
    daily = read_daily(path, date_col, value_col, filters, until)
    try:
        return weekday_weights(daily, "date", "value", closed), daily
    except DailyFileError as exc:
        raise DailyFileError(f"{path}: {exc}") from exc


def period_factors(ds: pl.Series, freq: str, spec: TradingDaysSpec, closed_days: Sequence[str] = ()) -> pl.DataFrame:
    """(ds, factor) for every distinct period start in `ds`: the sum of the weekday weights of the period's open
    days over the average period length (weights scaled to a mean of 1, so f is near 1 for an average period)."""
    step, mean_days = POLARS_FREQ[freq], TRADING_DAY_PERIODS[freq]
    weights = spec.weekday_weights
    scaled = {i + 1: w * 7 / sum(weights) for i, w in enumerate(weights)}
    starts = ds.cast(pl.Date).unique().to_frame("ds")
    end = pl.col("ds").dt.offset_by(step).dt.offset_by("-1d")
    days = starts.with_columns(pl.date_ranges("ds", end).alias("day")).explode("day")
    if closed_days:
        days = days.filter(~closed_mask(pl.col("day"), list(closed_days)))
    weight = pl.col("day").dt.weekday().replace_strict(scaled, return_dtype=pl.Float64)
    return days.group_by("ds").agg((weight.sum() / mean_days).alias(FACTOR))


def _with_factor(frame: pl.DataFrame, freq: str, spec: TradingDaysSpec, closed_days: Sequence[str]) -> pl.DataFrame:
    factors = period_factors(frame["ds"], freq, spec, closed_days)
    key = pl.col("ds").cast(pl.Date).alias("__period")
    factors = factors.rename({"ds": "__period"})
    return frame.with_columns(key).join(factors, on="__period", how="left", maintain_order="left").drop("__period")


def adjust(Y: pl.DataFrame, freq: str, spec: TradingDaysSpec | None, closed_days: Sequence[str] = ()) -> pl.DataFrame:
    """y per trading-day-adjusted period (y / f); `Y` unchanged without a spec."""
    if spec is None or Y.is_empty():
        return Y
    out = _with_factor(Y, freq, spec, closed_days)
    return out.with_columns((pl.col("y") / pl.col(FACTOR)).alias("y")).drop(FACTOR)


KEYS = ("unique_id", "ds", "cutoff")  # the only columns of a forecast or fit frame that are not in units


def restore(
    frame: pl.DataFrame, freq: str, spec: TradingDaysSpec | None, closed_days: Sequence[str] = ()
) -> pl.DataFrame:
    """Every column but the keys (forecasts, interval bounds, fits, y) times f: back from adjusted periods to units.
    A non-key column that is not a float (a label, a code) is refused rather than guessed at: the frames passed here
    hold only keys, y and model columns."""
    if spec is None or frame.is_empty():
        return frame
    values = [c for c in frame.columns if c not in KEYS]
    odd = [c for c in values if not frame.schema[c].is_float()]
    if odd:
        raise ValueError(f"trading-day restore: columns {odd} are neither keys {list(KEYS)} nor float values")
    out = _with_factor(frame, freq, spec, closed_days)
    return out.with_columns(pl.col(c) * pl.col(FACTOR) for c in values).drop(FACTOR)


def group_spec(job: JobSpec, aggregate: bool) -> TradingDaysSpec | None:
    """The adjustment the aggregate group's or the bottom group's models get (`bottom: false`: aggregates only)."""
    spec = job.models.trading_days
    return spec if spec is not None and (aggregate or spec.bottom) else None


def for_models(Y: pl.DataFrame, job: JobSpec, aggregate: bool) -> pl.DataFrame:
    """A group's series as its models are fitted on them (the nightly run and the backtest both call this)."""
    return adjust(Y, job.freq, group_spec(job, aggregate), job.models.closed_days)


def in_units(frame: pl.DataFrame, job: JobSpec, aggregate: bool) -> pl.DataFrame:
    """A group's forecasts, interval bounds and fits from models fitted on for_models, back in units."""
    return restore(frame, job.freq, group_spec(job, aggregate), job.models.closed_days)
