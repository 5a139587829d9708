"""The guard of the temporal step inside a run, on real M5 data and a real published backtest: the days reconciled
across time are published at a level only where, over the backtest's windows, they scored no worse than the
days summed at every grain; elsewhere the span publishes the days summed (temporal BottomUp), coherent."""

from __future__ import annotations

import shutil
from datetime import date

import polars as pl
import pytest
from statsforecast.models import SeasonalNaive
from support import grains_slice_job

from forecasting import pipeline
from forecasting.data.transforms import zero_closed_days
from forecasting.evaluate.grains import gap_across_hierarchy, gap_across_time
from forecasting.models.grains import forecast_grains
from forecasting.models.statistical import local_statistical_forecast
from forecasting.outputs.grains import grain_table
from forecasting.reconcile.temporal import across_hierarchy, hierarchy_choice, reconcile_grains
from forecasting.reconcile.temporal_guard import HIERARCHY, TIME, check_time_step

AS_OF = date(2015, 12, 20)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """Three real stores as of 2015-12-20 with fast models at every grain, a real two-window backtest of the days
    published before the run (as `forecasting backtest` does), the coarse grains and the run's published days."""
    job = grains_slice_job(tmp_path_factory.mktemp("time-guard") / "outputs")
    folder, _ = pipeline.backtest_job(job, AS_OF, 2)
    _, hierarchy = pipeline.load_hierarchy(job, AS_OF)
    coarse = forecast_grains(hierarchy.Y_df, hierarchy.members, job)
    days = local_statistical_forecast(hierarchy.Y_df, job, [SeasonalNaive(season_length=7, alias="Base")], n_jobs=1)
    days = across_hierarchy(hierarchy, days.forecasts.with_columns(pl.col("ds").cast(pl.Date)), job.levels)
    days = zero_closed_days(days, job.closed_periods)
    choices = {name: hierarchy_choice(hierarchy, grain) for name, grain in coarse.items()}
    return job, hierarchy, coarse, choices, days, folder


def test_the_temporal_step_is_scored_on_the_backtest_windows(guarded):
    job, hierarchy, coarse, choices, days, folder = guarded
    check = check_time_step(hierarchy, coarse, choices, (folder, ""), job)
    scores = check.scores
    assert set(scores["grain"]) == set(job.grains.names()) and set(scores["level"]) == set(hierarchy.tags)
    assert (scores["windows"] == 2).all() and check.cutoffs == ["2015-10-25", "2015-11-22"]
    worse = scores.filter(pl.col(TIME) > pl.col(HIERARCHY) * (1 + 1e-9))["level"].unique().to_list()
    assert set(check.fallback) == set(worse)
    assert ("worse than the days summed" in check.said) == bool(worse) and "2015-10-25" in check.said
    result = reconcile_grains(hierarchy, days, coarse, job, check.fallback, choices)
    table = grain_table(hierarchy, result, job)
    # Reconciled across time or the days summed: the span adds up both ways whichever the guard chose.
    assert gap_across_hierarchy(table, hierarchy.members) < 1e-6 and gap_across_time(table, job.grains) < 1e-6
    base_levels = {lv for levels in result.guard.values() for lv in levels}
    assert set(table.filter(~pl.col("coherent"))["level"]) == base_levels


def test_the_days_summed_where_the_temporal_step_was_worse(guarded, tmp_path):
    """Planted: a backtest whose published days were exact. Reconciling them with the coarse grains can only move
    them off the actuals (their sums are exact too), so the guard falls back at every level: the span publishes the
    run's days as they were and the weeks and 4-week periods as their sums, coherent, and the run says so. With no
    backtest at all the same: the step is not published without evidence."""
    job, hierarchy, coarse, choices, days, folder = guarded
    exact = tmp_path / "backtest"
    shutil.copytree(folder, exact)
    rows = pl.read_parquet(exact / "backtest_reconciled.parquet")
    bounds = [c for c in rows.columns if c.startswith(("lo_", "hi_"))]
    rows.with_columns([pl.col("y").alias(c) for c in ["mean", *bounds]]).write_parquet(
        exact / "backtest_reconciled.parquet"
    )
    check = check_time_step(hierarchy, coarse, choices, (exact, ""), job)
    assert check.fallback == ["total", "region", "warehouse"] and "worse than the days summed" in check.said
    result = reconcile_grains(hierarchy, days, coarse, job, check.fallback, choices)
    joined = result.days.join(days, on=["unique_id", "ds"], suffix="_run")
    assert joined.height == days.height and (joined["mean"] == joined["mean_run"]).all()
    table = grain_table(hierarchy, result, job)
    span = table.filter(pl.col("ds") <= days["ds"].max())
    assert (span["reconciled"] == "days summed").all() and gap_across_time(table, job.grains) < 1e-6
    weeks = span.filter(pl.col("grain") == "week").sort("unique_id", "ds")
    first = weeks.group_by("unique_id").agg(pl.col("ds").min(), pl.col("mean").first()).sort("unique_id")
    summed = (
        days.filter(pl.col("ds") < pl.col("ds").min() + pl.duration(days=7))
        .group_by("unique_id")
        .agg(pl.col("mean").sum())
    )
    both = first.join(summed, on="unique_id", suffix="_days")
    assert both.height and ((both["mean"] - both["mean_days"]).abs() <= 1e-6 * both["mean_days"].abs().clip(1)).all()
    unchecked = check_time_step(hierarchy, coarse, choices, (None, "no backtest published for this job"), job)
    assert unchecked.fallback == ["total", "region", "warehouse"] and "days summed" in unchecked.said
