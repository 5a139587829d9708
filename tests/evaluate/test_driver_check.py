"""The event drivers against the realised uplift on backtest windows (forecasting.evaluate.driver_check), on the
real M5 daily store sales of two stores with their events: each event value's mean effect is the mean of the
explained forecasts' event columns on its days, and the realised uplift is the actuals minus the forecast without
it, computed here independently."""

from __future__ import annotations

import html
from datetime import date

import polars as pl
import pytest
from support import daily_job

from forecasting import pipeline
from forecasting.evaluate.driver_check import _window, event_check, event_days, wrong_signs


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    job = daily_job(tmp_path_factory.mktemp("check"), ["LightGBM"], "LightGBM")
    cheap = job.models.lightgbm.model_copy(update={"n_estimators": 40})
    models = job.models.model_copy(update={"lightgbm": cheap, "conformal_windows": 2})
    job = job.model_copy(update={"warehouse_filter": ["CA_1", "TX_1"], "models": models})
    loaded, hierarchy = pipeline.load_hierarchy(job)
    return job, loaded, hierarchy


def test_event_effects_are_checked_against_the_realised_uplift(daily):
    job, loaded, hierarchy = daily
    cutoffs = [date(2016, 2, 1)]  # a window with the Super Bowl, Valentine's Day and Presidents' Day
    check = event_check(hierarchy, loaded.prices, loaded.calendar, job, cutoffs)
    assert check.height >= 3 and set(check["windows"]) == {1}
    days = event_days(loaded.calendar)
    family = check.sort("event_rows", descending=True)["family"][0]
    rows = []
    for cutoff in cutoffs:
        wide = _window(hierarchy, loaded.prices, loaded.calendar, job, cutoff)
        on = wide.join(days.filter(pl.col("family") == family), on="ds")
        if family in on.columns:
            rows.append(on.select("unique_id", "ds", "__forecast", pl.col(family).alias("effect")))
    frame = pl.concat(rows).drop_nulls("effect").join(hierarchy.Y_df, on=["unique_id", "ds"])
    expected = frame.select(
        pl.col("effect").mean(), (pl.col("y") - pl.col("__forecast") + pl.col("effect")).mean().alias("realised")
    )
    got = check.filter(pl.col("family") == family)
    assert got["event_rows"][0] == frame.height
    assert got["mean_effect"][0] == pytest.approx(expected["effect"][0], rel=1e-9)
    assert got["mean_realised"][0] == pytest.approx(expected["realised"][0], rel=1e-9)
    said = wrong_signs(check)
    assert len(said) == int(check["wrong_sign"].sum())
    assert all("the wrong sign" in line for line in said)


def test_a_backtest_publishes_the_check_the_view_reads_it_and_the_report_says_it(daily):
    from forecasting.outputs.report import build_report
    from forecasting.outputs.views import open_views

    job, *_ = daily
    folder, _ = pipeline.backtest_job(job, None, 2)
    check = pl.read_parquet(folder / "driver_check.parquet")
    assert check.height > 0 and set(check["windows"]) <= {1, 2}
    con = open_views(job)
    try:
        assert con.execute("SELECT count(*) FROM backtest_driver_check").fetchone()[0] == check.height
    finally:
        con.close()
    run = pipeline.run_job(job)
    page = build_report(job, run.run_dir, pipeline.history)
    assert "Are the event drivers real?" in page
    for line in wrong_signs(check):
        assert html.escape(line) in page
    if not check["wrong_sign"].any():
        assert "Every event driver had the sign of its realised uplift on average." in page
