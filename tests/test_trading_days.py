"""Calendar adjustment (forecasting.trading_days) on the real M5 data, through the nightly run and the backtest."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError
from support import slice_job

from forecasting import pipeline
from forecasting import trading_days as td
from forecasting.backtest import run_backtest
from forecasting.config import JobSpec, load_job, project_root
from forecasting.specs import TradingDaysSpec

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


def _seasonal_naive_job(tmp_path: Path, bottom: bool) -> JobSpec:
    """The m5-monthly slice with SeasonalNaive everywhere, the job file's weights, adjusting the SKUs or not."""
    naive = {
        "aggregate_models": ["SeasonalNaive"],
        "bottom_models": ["SeasonalNaive"],
        "primary": dict.fromkeys(["total", "region", "warehouse", "sku"], "SeasonalNaive"),
        "intermittent_model": None,
        "combinations": {},
    }
    job = slice_job(tmp_path, n_items=5)
    naive["trading_days"] = job.models.trading_days.model_dump() | {"bottom": bottom}
    return slice_job(tmp_path, n_items=5, models=job.models.model_dump() | naive)


def _expected_naive(Y: pl.DataFrame, job: JobSpec, months: list[date]) -> pl.DataFrame:
    """Seasonal naive of the adjusted series, scaled back: y(t - 12) / f(t - 12) * f(t)."""
    spec, closed = job.models.trading_days, job.models.closed_days
    year_before = [d.replace(year=d.year - 1) for d in months]
    factors = dict(td.period_factors(pl.Series(months + year_before), "month", spec, closed).iter_rows())
    back = dict(zip(year_before, months, strict=True))
    rows = Y.filter(pl.col("ds").cast(pl.Date).is_in(year_before)).with_columns(pl.col("ds").cast(pl.Date))
    ratio = {b: factors[m] / factors[b] for b, m in back.items()}
    return rows.select(
        "unique_id",
        pl.col("ds").replace_strict(back).alias("ds"),
        (pl.col("y") * pl.col("ds").replace_strict(ratio)).alias("expected"),
    )


def test_nightly_run_and_backtest_fit_on_adjusted_periods_and_publish_units(tmp_path):
    """SeasonalNaive makes the adjustment exact: a forecast is last year's month times the ratio of the two
    months' factors, in the nightly run and in every backtest window, and the fits are in units too."""
    job = _seasonal_naive_job(tmp_path, bottom=True)
    as_of = date(2015, 12, 31)
    loaded, hierarchy = pipeline.load_hierarchy(job, as_of)
    base = pipeline.base_forecasts(hierarchy, loaded.prices, job, loaded.calendar)
    months = [date(2016, 1, 1), date(2016, 2, 1), date(2016, 3, 1)]
    expected = _expected_naive(hierarchy.Y_df, job, months)
    got = base.forecasts.with_columns(pl.col("ds").cast(pl.Date)).join(expected, on=["unique_id", "ds"])
    assert got.height == expected.height == 3 * hierarchy.Y_df["unique_id"].n_unique()
    np.testing.assert_allclose(got["SeasonalNaive"].to_numpy(), got["expected"].to_numpy(), rtol=1e-9)
    # Feb 2016 had a 29th day: the forecast is above Feb 2015 by more than the flat seasonal naive would be.
    total = got.filter(pl.col("unique_id") == "total").sort("ds")
    feb_2015 = hierarchy.Y_df.filter((pl.col("unique_id") == "total") & (pl.col("ds") == date(2015, 2, 1)))["y"][0]
    assert total["SeasonalNaive"][1] > feb_2015 * 1.03

    bt = run_backtest(hierarchy, loaded.prices, job, windows=1, step=3, calendar=loaded.calendar)
    window = bt.base.filter(pl.col("model") == "SeasonalNaive")
    cutoff = window["cutoff"].max()
    ahead = sorted(window["ds"].cast(pl.Date).unique().to_list())
    expected = _expected_naive(hierarchy.Y_df.filter(pl.col("ds") <= cutoff), job, ahead)
    got = window.with_columns(pl.col("ds").cast(pl.Date)).join(expected, on=["unique_id", "ds"])
    assert got.height == expected.height > 0
    np.testing.assert_allclose(got["mean"].to_numpy(), got["expected"].to_numpy(), rtol=1e-9)
    actual = hierarchy.Y_df.with_columns(pl.col("ds").cast(pl.Date)).rename({"y": "actual"})
    scored = got.join(actual, on=["unique_id", "ds"])
    np.testing.assert_allclose(scored["y"].to_numpy(), scored["actual"].to_numpy())  # scored against units


def test_trading_days_refused_for_daily_jobs():
    job = load_job("m5-daily-warehouse")
    data = job.model_dump()
    data["models"]["trading_days"] = {"weekday_weights": [1] * 7}
    with pytest.raises(ValidationError, match="adjusts month and quarter jobs"):
        JobSpec.model_validate(data)
    with pytest.raises(ValidationError, match="positive"):
        TradingDaysSpec(weekday_weights=[1, 1, 1, 0, 1, 1, 1])


def test_weekday_weights_file_errors_name_the_file_column_and_rows(tmp_path):
    bad = tmp_path / "daily.csv"
    bad.write_text("date,sales\n2016-01-04,10\n2016-01-05,x\n2016-01-06,-3\n")
    with pytest.raises(td.DailyFileError, match=r"daily.csv: column 'sales' .* lines 3, 4"):
        td.read_daily(bad, "date", "sales", {}, None)
    with pytest.raises(td.DailyFileError, match=r"column\(s\) \['qty'\] not in the file"):
        td.read_daily(bad, "date", "qty", {}, None)
    dates = tmp_path / "dates.csv"
    dates.write_text("date,sales\n2016-01-04,10\n2016-13-01,12\n")
    with pytest.raises(td.DailyFileError, match=r"dates.csv: column 'date' .* lines 3$"):
        td.read_daily(dates, "date", "sales", {}, None)
    short = tmp_path / "short.csv"
    short.write_text("date,sales\n2016-01-04,10\n2016-01-05,12\n")
    with pytest.raises(td.DailyFileError, match="every weekday"):
        td.weekday_weights(td.read_daily(short, "date", "sales", {}, None), "date", "value")


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


def test_bottom_false_adjusts_only_the_aggregate_levels(tmp_path):
    job = _seasonal_naive_job(tmp_path, bottom=False)
    loaded, hierarchy = pipeline.load_hierarchy(job, date(2015, 12, 31))
    base = pipeline.base_forecasts(hierarchy, loaded.prices, job, loaded.calendar)
    months = [date(2016, 1, 1), date(2016, 2, 1), date(2016, 3, 1)]
    adjusted = _expected_naive(hierarchy.Y_df, job, months)
    got = base.forecasts.with_columns(pl.col("ds").cast(pl.Date)).join(adjusted, on=["unique_id", "ds"])
    got = got.join(hierarchy.members.select("unique_id", "level"), on="unique_id")
    skus, upper = got.filter(pl.col("level") == "sku"), got.filter(pl.col("level") != "sku")
    np.testing.assert_allclose(upper["SeasonalNaive"].to_numpy(), upper["expected"].to_numpy(), rtol=1e-9)
    flat = hierarchy.Y_df.with_columns(pl.col("ds").cast(pl.Date).dt.offset_by("12mo").alias("ds"))
    skus = skus.join(flat.rename({"y": "year_before"}), on=["unique_id", "ds"])
    assert skus.height == 3 * 10 and not np.allclose(skus["expected"].to_numpy(), skus["year_before"].to_numpy())
    np.testing.assert_allclose(skus["SeasonalNaive"].to_numpy(), skus["year_before"].to_numpy(), rtol=1e-9)
