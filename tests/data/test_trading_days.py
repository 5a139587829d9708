"""Calendar adjustment (forecasting.data.trading_days) on the real M5 data, through the nightly run and the backtest."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError
from support import slice_job

from forecasting import pipeline
from forecasting.data import trading_days as td
from forecasting.evaluate.backtest import run_backtest
from forecasting.job.common import project_root
from forecasting.job.loading import load_job
from forecasting.job.models import TradingDaysSpec
from forecasting.job.schema import JobSpec

DAILY_TOTALS = project_root() / "data" / "m5" / "m5_daily_state_store_totals_d1_d1913.parquet"


def test_job_file_weights_are_the_daily_totals_before_the_benchmark_windows():
    """The m5-monthly weights are recomputed from the bundled daily totals, as the job file's comment says."""
    daily = td.read_daily(DAILY_TOTALS, "date", "sales", {"level": "state"}, date(2013, 12, 31))
    assert daily["date"].min() == date(2011, 1, 29) and daily["date"].max() == date(2013, 12, 31)
    weights = td.weekday_weights(daily, "date", "value", ["12-25"])
    assert load_job("m5-monthly").models.trading_days.weekday_weights == weights
    assert max(weights) == weights[5]  # Saturday sells most, midweek least
    assert min(weights) == weights[2]


def test_factors_count_weighted_open_days():
    flat = TradingDaysSpec()
    starts = pl.Series([date(2015, 2, 1), date(2016, 2, 1), date(2015, 12, 1), date(2016, 1, 1)])
    factors = dict(td.period_factors(starts, "month", flat, ["12-25"]).iter_rows())
    mean_month = 365.2425 / 12
    assert factors[date(2015, 2, 1)] == pytest.approx(28 / mean_month)
    assert factors[date(2016, 2, 1)] == pytest.approx(29 / mean_month)
    assert factors[date(2015, 12, 1)] == pytest.approx(30 / mean_month)  # Christmas Day is closed
    weekend = TradingDaysSpec(weekday_weights=[1, 1, 1, 1, 1, 2, 2])
    # Jan 2016: 31 days, 5 Saturdays and 5 Sundays; weights scaled to a mean of 1 (sum 9 -> 7).
    expected = (21 * 1 + 10 * 2) * 7 / 9 / mean_month
    assert td.period_factors(starts, "month", weekend)[td.FACTOR].max() == pytest.approx(expected)
    quarter = dict(td.period_factors(pl.Series([date(2016, 1, 1)]), "quarter", flat).iter_rows())
    assert quarter[date(2016, 1, 1)] == pytest.approx(91 / (365.2425 / 4))


def test_adjust_then_restore_gives_the_history_back_and_keeps_sums():
    job = load_job("m5-monthly")
    spec, closed = job.models.trading_days, job.models.closed_days
    Y = pl.read_parquet(project_root() / "data" / "m5" / "m5_monthly_sales.parquet").select(
        pl.col("store_id").alias("unique_id"), pl.col("month").alias("ds"), pl.col("sales").cast(pl.Float64).alias("y")
    )
    Y = Y.group_by("unique_id", "ds").agg(pl.col("y").sum()).sort("unique_id", "ds")
    adjusted = td.adjust(Y, "month", spec, closed)
    assert not np.allclose(adjusted["y"].to_numpy(), Y["y"].to_numpy())
    np.testing.assert_allclose(td.restore(adjusted, "month", spec, closed)["y"].to_numpy(), Y["y"].to_numpy())
    total = Y.group_by("ds").agg(pl.col("y").sum()).sort("ds")
    adjusted_sum = adjusted.group_by("ds").agg(pl.col("y").sum()).sort("ds")
    np.testing.assert_allclose(adjusted_sum["y"].to_numpy(), td.adjust(total, "month", spec, closed)["y"].to_numpy())


def test_restore_scales_every_value_column_and_refuses_a_column_it_cannot_place():
    """Forecasts, bounds and y are scaled back; keys are not; a non-float extra column is an error, not a guess."""
    spec = load_job("m5-monthly").models.trading_days
    frame = pl.DataFrame(
        {"unique_id": ["a", "a"], "ds": [date(2016, 1, 1), date(2016, 2, 1)], "cutoff": [date(2015, 12, 1)] * 2}
    ).with_columns(pl.lit(10.0).alias("y"), pl.lit(10.0).alias("M"), pl.lit(8.0).alias("M-lo-80"))
    by_month = dict(td.period_factors(frame["ds"], "month", spec).iter_rows())
    factors = np.array([by_month[d] for d in frame["ds"]])
    assert not np.allclose(factors, 1.0)
    restored = td.restore(frame, "month", spec)
    for column, value in (("y", 10.0), ("M", 10.0), ("M-lo-80", 8.0)):
        np.testing.assert_allclose(restored[column].to_numpy(), value * factors)
    assert restored.select("unique_id", "ds", "cutoff").equals(frame.select("unique_id", "ds", "cutoff"))
    with pytest.raises(ValueError, match=r"\['model'\] are neither keys"):
        td.restore(frame.with_columns(pl.lit("x").alias("model")), "month", spec)


def _seasonal_naive_job(tmp_path: Path, bottom: bool) -> JobSpec:
    """The m5-monthly slice with SeasonalNaive everywhere, the job file's weights, adjusting the SKUs or not. New
    Year's Day closed as well: on a month start, where it must only count as a day without trading."""
    naive = {
        "aggregate_models": ["SeasonalNaive"],
        "bottom_models": ["SeasonalNaive"],
        "primary": dict.fromkeys(["total", "region", "warehouse", "sku"], "SeasonalNaive"),
        "intermittent_model": None,
        "combinations": {},
        "closed_days": ["01-01", "12-25"],
    }
    job = slice_job(tmp_path, n_items=5)
    naive["trading_days"] = job.models.trading_days.model_dump() | {"bottom": bottom}
    return slice_job(tmp_path, n_items=5, models=job.models.model_dump() | naive)


def _factors(job: JobSpec, months: list[date]) -> dict[date, float]:
    return dict(
        td.period_factors(pl.Series(months), "month", job.models.trading_days, job.models.closed_days).iter_rows()
    )


def _expected_naive(Y: pl.DataFrame, job: JobSpec, months: list[date]) -> pl.DataFrame:
    """Seasonal naive of the adjusted series, scaled back: y(t - 12) / f(t - 12) * f(t); and the flat one, y(t - 12)."""
    year_before = [d.replace(year=d.year - 1) for d in months]
    factors = _factors(job, months + year_before)
    back = dict(zip(year_before, months, strict=True))
    rows = Y.filter(pl.col("ds").cast(pl.Date).is_in(year_before)).with_columns(pl.col("ds").cast(pl.Date))
    ratio = {b: factors[m] / factors[b] for b, m in back.items()}
    return rows.select(
        "unique_id",
        pl.col("ds").replace_strict(back).alias("ds"),
        (pl.col("y") * pl.col("ds").replace_strict(ratio)).alias("expected"),
        pl.col("y").alias("flat"),
    )


def _by_level(frame: pl.DataFrame, hierarchy) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(SKU rows, aggregate rows)."""
    frame = frame.join(hierarchy.members.select("unique_id", pl.col("level").alias("_level")), on="unique_id")
    return frame.filter(pl.col("_level") == "sku"), frame.filter(pl.col("_level") != "sku")


MONTHS = [date(2016, 1, 1), date(2016, 2, 1), date(2016, 3, 1)]


def _nightly_naive(job: JobSpec):
    """The nightly run's base forecasts as of 2015-12-31, joined to the expected seasonal naive of Jan-Mar 2016."""
    loaded, hierarchy = pipeline.load_hierarchy(job, date(2015, 12, 31))
    base = pipeline.base_forecasts(hierarchy, loaded.prices, job, loaded.calendar)
    expected = _expected_naive(hierarchy.Y_df, job, MONTHS)
    got = base.forecasts.with_columns(pl.col("ds").cast(pl.Date)).join(expected, on=["unique_id", "ds"])
    return loaded, hierarchy, base, got


def test_nightly_run_and_backtest_fit_on_adjusted_periods_and_publish_units(tmp_path):
    """SeasonalNaive makes the adjustment exact: a forecast is last year's month times the ratio of the two
    months' factors, in the nightly run and in every backtest window; in-sample fits and interval bounds are
    scaled back the same way."""
    job = _seasonal_naive_job(tmp_path, bottom=True)
    loaded, hierarchy, base, got = _nightly_naive(job)
    assert got.height == 3 * hierarchy.Y_df["unique_id"].n_unique()
    np.testing.assert_allclose(got["SeasonalNaive"].to_numpy(), got["expected"].to_numpy(), rtol=1e-9)
    assert not np.allclose(got["expected"].to_numpy(), got["flat"].to_numpy())
    # Feb 2016 had a 29th day: the forecast is above Feb 2015 by more than the flat seasonal naive would be; and a
    # closed day on a month start (Jan 1) does not close the month.
    total = got.filter(pl.col("unique_id") == "total").sort("ds")
    assert total["SeasonalNaive"][1] > total["flat"][1] * 1.03
    assert (got.filter(pl.col("ds") == MONTHS[0])["SeasonalNaive"] > 0).any()

    # Intervals: the library's seasonal naive on the adjusted history, its bounds times f.
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    spec, closed = job.models.trading_days, job.models.closed_days
    adjusted = td.adjust(hierarchy.Y_df.with_columns(pl.col("y").cast(pl.Float64)), "month", spec, closed)
    sf = StatsForecast(models=[SeasonalNaive(season_length=12)], freq="MS", n_jobs=1)
    library = pl.from_pandas(sf.forecast(df=adjusted.to_pandas(), h=3, level=job.levels, fitted=True))
    library = td.restore(library.with_columns(pl.col("ds").cast(pl.Date)), "month", spec, closed)
    bounds = [f"SeasonalNaive-{side}-{lv}" for lv in job.levels for side in ("lo", "hi")]
    ours = base.forecasts.with_columns(pl.col("ds").cast(pl.Date)).join(library, on=["unique_id", "ds"], suffix="_lib")
    assert ours.height == got.height
    for column in bounds:
        np.testing.assert_allclose(ours[column].to_numpy(), ours[f"{column}_lib"].to_numpy(), rtol=1e-9)
    # In-sample fits: the same relation one year back, and the fitted frame's y in units.
    fitted = base.fitted.with_columns(pl.col("ds").cast(pl.Date)).drop_nulls("SeasonalNaive")
    in_2015 = [date(2015, m, 1) for m in range(1, 13)]
    expected_fit = _expected_naive(hierarchy.Y_df, job, in_2015)
    fits = fitted.join(expected_fit, on=["unique_id", "ds"])
    assert fits.height == 12 * hierarchy.Y_df["unique_id"].n_unique()
    np.testing.assert_allclose(fits["SeasonalNaive"].to_numpy(), fits["expected"].to_numpy(), rtol=1e-9)
    actual = hierarchy.Y_df.with_columns(pl.col("ds").cast(pl.Date)).rename({"y": "actual"})
    joined = fits.join(actual, on=["unique_id", "ds"])
    np.testing.assert_allclose(joined["y"].to_numpy(), joined["actual"].to_numpy())

    bt = run_backtest(hierarchy, loaded.prices, job, windows=1, step=3, calendar=loaded.calendar)
    window = bt.base.filter(pl.col("model") == "SeasonalNaive")
    cutoff = window["cutoff"].max()
    ahead = sorted(window["ds"].cast(pl.Date).unique().to_list())
    expected = _expected_naive(hierarchy.Y_df.filter(pl.col("ds") <= cutoff), job, ahead)
    got = window.with_columns(pl.col("ds").cast(pl.Date)).join(expected, on=["unique_id", "ds"])
    assert got.height == expected.height > 0
    np.testing.assert_allclose(got["mean"].to_numpy(), got["expected"].to_numpy(), rtol=1e-9)


def test_bottom_false_adjusts_only_the_aggregate_levels(tmp_path):
    """The shipped setting: the SKUs' models see raw sales (flat seasonal naive), the aggregates' adjusted ones, in
    the nightly run and in the backtest."""
    job = _seasonal_naive_job(tmp_path, bottom=False)
    loaded, hierarchy, base, got = _nightly_naive(job)
    nightly = _by_level(got.rename({"SeasonalNaive": "mean"}), hierarchy)
    bt = run_backtest(hierarchy, loaded.prices, job, windows=1, step=3, calendar=loaded.calendar)
    window = bt.base.filter(pl.col("model") == "SeasonalNaive").with_columns(pl.col("ds").cast(pl.Date))
    ahead = sorted(window["ds"].unique().to_list())
    held = _expected_naive(hierarchy.Y_df.filter(pl.col("ds") <= window["cutoff"].max()), job, ahead)
    backtest = _by_level(window.join(held, on=["unique_id", "ds"]), hierarchy)
    for skus, upper in (nightly, backtest):
        assert skus.height == 3 * 10 and upper.height == 3 * 5
        assert not np.allclose(skus["expected"].to_numpy(), skus["flat"].to_numpy())
        np.testing.assert_allclose(skus["mean"].to_numpy(), skus["flat"].to_numpy(), rtol=1e-9)
        np.testing.assert_allclose(upper["mean"].to_numpy(), upper["expected"].to_numpy(), rtol=1e-9)


def test_trading_days_refused_for_daily_jobs():
    job = load_job("m5-daily-warehouse")
    data = job.model_dump()
    data["models"]["trading_days"] = {"weekday_weights": [1] * 7}
    with pytest.raises(ValidationError, match="adjusts month and quarter jobs"):
        JobSpec.model_validate(data)
    with pytest.raises(ValidationError, match="greater than 0"):
        TradingDaysSpec(weekday_weights=[1, 1, 1, 0, 1, 1, 1])


@pytest.mark.parametrize(
    ("name", "text", "value_column", "message"),
    [
        ("daily.csv", "2016-01-04,10\n2016-01-05,x\n2016-01-06,-3\n", "sales", r"column 'sales' .* lines 3, 4$"),
        ("daily.csv", "2016-01-04,10\n", "qty", r"column\(s\) \['qty'\] not in the file"),
        ("dates.csv", "2016-01-04,10\n2016-13-01,12\n", "sales", r"column 'date' .* lines 3$"),
        (
            "empty.csv",
            "2016-01-04,10\n2016-01-05,\n",
            "sales",
            r"column 'sales' is empty or not a number >= 0 in lines 3$",
        ),
        ("numbers.csv", "20160104,10\n", "sales", r"column 'date' holds Int64, not dates"),
        ("short.csv", "2016-01-04,10\n2016-01-05,12\n", "sales", r"weekday weights need every weekday"),
    ],
)
def test_weekday_weights_file_errors_name_the_file_column_and_rows(tmp_path, name, text, value_column, message):
    path = tmp_path / name
    path.write_text("date,sales\n" + text)
    with pytest.raises(td.DailyFileError, match=f"^{path}: {message}"):
        td.weekday_weights_of_file(path, "date", value_column, {}, None, [])


def test_weekday_weights_command_prints_the_job_file_line():
    from typer.testing import CliRunner

    from forecasting.cli import app

    args = ["weekday-weights", str(DAILY_TOTALS), "--filter", "level=state", "--until", "2013-12-31"]
    result = CliRunner().invoke(app, [*args, "--closed", "12-25"])
    assert result.exit_code == 0, result.output
    weights = load_job("m5-monthly").models.trading_days.weekday_weights
    assert f"weekday_weights: {weights}" in result.output
    refused = CliRunner().invoke(app, [*args, "--closed", "25-12"])
    assert refused.exit_code != 0 and "--closed expects MM-DD" in refused.output
    twice = CliRunner().invoke(app, [*args, "--filter", "level=store"])
    assert twice.exit_code != 0 and "--filter names a column twice" in twice.output
