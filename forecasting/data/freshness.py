"""Fresh data or a clear refusal: the as-of date a run forecasts from, checked against the last day the data really
reaches (read from its values, forecasting.data.sources.coverage), not against what the job file says.

A source that ends more than one period before the as-of date or before the job's `observed_to` is refused: its
forecast would be published as current while half its horizon lay in the past. With `source.allow_stale: true` it
is forecast anyway, as of the data's last day, and the run's summary, manifest and report carry the warning. A
source that ends less than a period early is forecast as of its last day too (with a warning), so that no run is
published whose horizon starts before its as-of date; `check_forecast_start` holds that line at the write.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from forecasting.data.sources import Coverage, SourceError
from forecasting.job.errors import InputError
from forecasting.job.schema import POLARS_FREQ, JobSpec


class StaleDataError(InputError):
    """The data ends too long before the date the run would be published as of."""


def period_before(day: date, freq: str) -> date:
    """`day` moved one period back (a month before 2016-03-31 is 2016-02-29)."""
    return pl.Series([day]).dt.offset_by(f"-{POLARS_FREQ[freq]}")[0]


def period_start(day: date, freq: str) -> date:
    """The first day of the period holding `day` (weeks start on Monday, as DuckDB's date_trunc)."""
    if freq == "day":
        return day
    if freq == "week":
        return day - timedelta(days=day.weekday())
    if freq == "month":
        return day.replace(day=1)
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def resolve_as_of(job: JobSpec, requested: date | None, covered: Coverage, label: str) -> tuple[date, list[str]]:
    """The as-of date the run forecasts from and is published as of, and the warnings that go with it."""
    if requested is not None and requested > covered.observed_to:
        raise SourceError(
            f"{label}: the as-of date {requested} is after the last day the sales data covers ({covered.observed_to}); "
            "leave --as-of out to forecast from the end of the data"
        )
    wanted = requested or covered.observed_to
    column = job.source.sales.columns["date"]
    ends = f"the data ends {covered.data_end} (its last row is dated {covered.last_row})"
    references = {"the as-of date": wanted}
    if job.source.observed_to is not None:
        references["observed_to"] = job.source.observed_to
    warnings = []
    for what, reference in references.items():
        if covered.data_end >= period_before(reference, job.freq):
            continue
        if not job.source.allow_stale:
            raise StaleDataError(
                f"{label} [column {column}]: {ends}, more than one {job.freq} before {what} {reference}: stale data "
                f"is refused; bring the data up to date, or set source.allow_stale: true to forecast from it as of "
                f"{covered.data_end}"
            )
        warnings.append(f"stale data: {ends}, more than one {job.freq} before {what} {reference} (source.allow_stale)")
    as_of = min(wanted, covered.data_end)
    if as_of < wanted:
        warnings.append(f"{ends}, before the as-of date {wanted}: the run is forecast and published as of {as_of}")
    return as_of, warnings


def check_forecast_start(job: JobSpec, as_of: date, first: date) -> None:
    """Refuse to publish a forecast whose first period is not after the as-of date's last complete period: its
    horizon would start before its as-of date (data that stops early, or dates shifted by a time zone)."""
    expected = period_start(as_of + timedelta(days=1), job.freq)
    if first < expected:
        raise StaleDataError(
            f"the forecast starts {first}, before {expected} (the first {job.freq} not complete on its as-of date "
            f"{as_of}): the history ends too early for that date; nothing was published"
        )
