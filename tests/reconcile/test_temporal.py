"""Time grains on real M5 data: days, weeks and 4-week periods reconciled with hierarchicalforecast add up across
time and across the hierarchy (to 1e-6 relative) wherever the run says they do; the guard's Base levels are the only
exceptions, and are flagged."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from statsforecast.models import SeasonalNaive

from forecasting import pipeline
from forecasting.data.transforms import closed_mask, zero_closed_days
from forecasting.evaluate.grains import gap_across_hierarchy, gap_across_time
from forecasting.job.loading import load_job
from forecasting.models.grains import forecast_grains
from forecasting.models.statistical import local_statistical_forecast
from forecasting.outputs.grains import grain_table
from forecasting.reconcile.temporal import across_hierarchy, reconcile_grains

TOL = 1e-6
AS_OF = date(2015, 12, 20)  # the day horizon holds a Christmas, a closed day (forecast 0) of the job


@pytest.fixture(scope="module")
def slice_grains():
    """m5-daily-warehouse on three real stores (two regions) as of a few days before Christmas, the coarse grains on
    cheap models and two origins."""
    job = load_job("m5-daily-warehouse")
    grains = job.grains.model_copy(
        update={
            "windows": 2,
            "coarser": [g.model_copy(update={"models": ["SeasonalNaive", "Naive"]}) for g in job.grains.coarser],
        }
    )
    job = job.model_copy(update={"warehouse_filter": ["CA_1", "CA_2", "TX_1"], "grains": grains})
    _, hierarchy = pipeline.load_hierarchy(job, AS_OF)
    coarse = forecast_grains(hierarchy.Y_df, hierarchy.members, job)
    days = local_statistical_forecast(hierarchy.Y_df, job, [SeasonalNaive(season_length=7, alias="Base")], n_jobs=1)
    published_days = across_hierarchy(hierarchy, days.forecasts.with_columns(pl.col("ds").cast(pl.Date)), job.levels)
    published_days = zero_closed_days(published_days, job.closed_periods)  # as the run publishes them
    result = reconcile_grains(hierarchy, published_days, coarse, job)
    return job, hierarchy, coarse, result, grain_table(hierarchy, result, job)


def test_grains_add_up_across_time_and_the_hierarchy(slice_grains):
    job, hierarchy, coarse, result, table = slice_grains
    assert gap_across_time(table, job.grains) < TOL
    assert gap_across_hierarchy(table, hierarchy.members) < TOL
    # The measure sees a gap: one warehouse's day moved breaks both.
    moved = table.with_columns(
        pl.when(
            (pl.col("grain") == "day") & (pl.col("unique_id") == "total/CA/CA_1") & (pl.col("ds") == pl.col("ds").min())
        )
        .then(pl.col("mean") + 100.0)
        .otherwise(pl.col("mean"))
        .alias("mean")
    )
    assert gap_across_time(moved, job.grains) > TOL and gap_across_hierarchy(moved, hierarchy.members) > TOL
    # The guard's Base levels are the only rows not flagged coherent, and each one is said in the notes.
    flagged = table.filter(~pl.col("coherent"))["level"].unique().to_list()
    assert set(flagged) == {lv for levels in result.guard.values() for lv in levels}
    assert all(any(g in note for note in result.notes) for g in result.guard)


def test_closed_days_stay_closed_after_the_temporal_step(slice_grains):
    """Christmas is forecast 0 (mean and every bound) at every series after days and weeks are reconciled across
    time, and the days still add up to the weeks and 4-week periods and across the hierarchy."""
    job, hierarchy, coarse, result, table = slice_grains
    christmas = table.filter((pl.col("grain") == "day") & closed_mask(pl.col("ds"), job.closed_periods))
    assert christmas["ds"].unique().to_list() == [date(2015, 12, 25)]
    assert christmas.height == hierarchy.members.height
    values = christmas.select("mean", pl.col("^(lo|hi)_.*$"))
    assert (values.to_numpy() == 0.0).all()
    assert gap_across_time(table, job.grains) < TOL and gap_across_hierarchy(table, hierarchy.members) < TOL
    # The Christmas week's other days carry what the week's reconciled total puts on it (more than their share).
    week = table.filter(
        (pl.col("grain") == "day") & pl.col("ds").is_between(date(2015, 12, 21), date(2015, 12, 27))
    ).filter(pl.col("unique_id") == hierarchy.members["unique_id"][0])
    assert week.height == 7 and (week.filter(pl.col("ds") != date(2015, 12, 25))["mean"] > 0).all()


def test_every_grain_has_its_horizon_and_a_grain_column(slice_grains):
    job, hierarchy, coarse, result, table = slice_grains
    per_series = table.group_by("grain", "unique_id").len()
    expected = {"day": job.horizon} | {g.name: g.horizon for g in job.grains.coarser}
    for grain, periods in expected.items():
        counts = per_series.filter(pl.col("grain") == grain)
        assert counts.height == hierarchy.members.height and (counts["len"] == periods).all(), grain
    assert table["ds"].min() == result.days["ds"].min()  # every grain starts on the first forecast day
    assert (table["mean"] >= 0).all()
    # Each coarse grain's Base per level came from its own rolling origins.
    for grain in coarse.values():
        assert set(grain.choice) == set(hierarchy.tags) and set(grain.choice.values()) <= {"SeasonalNaive", "Naive"}
        assert grain.windows["cutoff"].n_unique() == 2


def test_weekly_headcount_beyond_the_days_and_the_report_section(slice_grains, tmp_path):
    """Staffing per day inside the day horizon and per week beyond it, from the same published grains; the report
    shows every grain."""
    from forecasting.outputs.report_grains import grains_section
    from forecasting.staffing.grains import weekly_plan

    job, hierarchy, coarse, result, table = slice_grains
    weeks = weekly_plan(table, job)
    last_day = result.days["ds"].max()
    assert weeks.height and (weeks["grain"] == "week").all() and weeks["ds"].min() > last_day
    assert set(weeks["warehouse"].unique()) == {"CA_1", "CA_2", "TX_1"}
    assert weeks["ds"].n_unique() == job.grains.coarser[0].horizon - job.horizon // 7
    assert (weeks["headcount"] > 0).all()
    table.write_parquet(tmp_path / "grain_forecasts.parquet")
    page = grains_section(tmp_path, hierarchy.spec.names)
    assert "Forecasts per time grain" in page and all(f"per {g}" in page for g in ("day", "week", "4-week"))


def test_day_tables_gain_the_grain_column(slice_grains):
    from forecasting.outputs.atomic import TableParts
    from forecasting.outputs.grains import with_grains

    job, hierarchy, coarse, result, table = slice_grains
    parts = TableParts(result.days.height, lambda: iter([result.days]))
    out = with_grains(
        {"reconciled_forecasts": parts, "base_forecasts": result.days, "staffing": pl.DataFrame()}, table, job
    )
    assert all((frame["grain"] == "day").all() for frame in out["reconciled_forecasts"])
    assert (out["base_forecasts"]["grain"] == "day").all() and "grain" not in out["staffing"].columns
    assert out["grain_forecasts"] is table


def test_top_down_keeps_the_total_base_and_adds_up(slice_grains):
    """TopDown (forecast proportions), the coarse grains' candidate that keeps the top level's Base: the total is
    its Base, every level adds up, its bootstrap bands hold the mean; the guard takes the first candidate harmful
    nowhere, else the least harmful with Base at its levels."""
    from forecasting.reconcile.temporal import CANDIDATES, TOP_DOWN, harmed_levels, hierarchy_choice

    job, hierarchy, coarse, result, table = slice_grains
    for grain in coarse.values():
        rows = across_hierarchy(hierarchy, grain.forecasts, job.levels, TOP_DOWN, grain.fitted)
        total = rows.filter(pl.col("unique_id") == "total").join(grain.forecasts, on=["unique_id", "ds"])
        assert total.height == grain.grain.horizon and ((total["mean"] - total["Base"]).abs() < 1e-6).all()
        published = hierarchy.members.select("unique_id", "level").join(rows, on="unique_id")
        published = published.with_columns(pl.lit(grain.grain.name).alias("grain"), pl.lit(True).alias("coherent"))
        assert gap_across_hierarchy(published, hierarchy.members) < TOL
        for lv in job.levels:
            assert ((published[f"lo_{lv}"] <= published["mean"]) & (published["mean"] <= published[f"hi_{lv}"])).all()
        harmed = harmed_levels(hierarchy, grain)
        choice = hierarchy_choice(hierarchy, grain)
        assert set(harmed) == set(CANDIDATES) and choice.base_levels == harmed[choice.method]
        harmless = [m for m in CANDIDATES if not harmed[m]]
        assert choice.method == (harmless[0] if harmless else min(harmed, key=lambda m: len(harmed[m])))


def test_a_new_store_is_forecast_at_every_grain(tmp_path):
    """A store that opened five weeks before the as-of (CA_2's real rows from 2016-02-22 only, as an order system
    gives them) is too short for the coarse grains' models and rolling origins: it is young there and served by
    Flat from its days (the day grain's stated fallback), in the rolling origins and ahead; every grain still adds
    up across time and the hierarchy."""
    import duckdb

    from forecasting.job.common import project_root
    from forecasting.job.schema import JobSpec
    from forecasting.models.grains import grain_need

    as_of, opened = date(2016, 3, 27), date(2016, 2, 22)
    path = tmp_path / "stores.parquet"
    duckdb.execute(
        "SELECT * FROM read_parquet(?) WHERE store_id IN ('CA_1', 'TX_1') OR (store_id = 'CA_2' AND date >= ?)",
        [str(project_root() / "data/m5/m5_daily_store_sales.parquet"), opened],
    ).pl().write_parquet(path)
    job = load_job("m5-daily-warehouse")
    grains = job.grains.model_copy(
        update={
            "windows": 2,
            "coarser": [g.model_copy(update={"models": ["SeasonalNaive", "Naive"]}) for g in job.grains.coarser],
        }
    )
    data = job.model_dump() | {"warehouse_filter": ["CA_1", "CA_2", "TX_1"], "n_jobs": 1}
    data["source"]["sales"]["path"] = str(path)
    job = JobSpec.model_validate(data).model_copy(update={"grains": grains})
    _, hierarchy = pipeline.load_hierarchy(job, as_of)
    new = "total/CA/CA_2"
    coarse = forecast_grains(hierarchy.Y_df, hierarchy.members, job)
    own = hierarchy.Y_df.filter(pl.col("unique_id") == new)
    assert own.height == 35
    for grain in coarse.values():
        assert grain.young == [new] and grain.history.filter(pl.col("unique_id") == new).height < grain_need(
            grain.grain, 2
        )
        flat = grain.forecasts.filter(pl.col("unique_id") == new)
        assert flat.height == grain.grain.horizon
        assert ((flat["Base"] - own["y"].mean() * grain.grain.periods).abs() < 1e-6).all()
        assert grain.windows.filter(pl.col("unique_id") == new)["cutoff"].n_unique() == 2
    days = local_statistical_forecast(hierarchy.Y_df, job, [SeasonalNaive(season_length=7, alias="Base")], n_jobs=1)
    published = across_hierarchy(hierarchy, days.forecasts.with_columns(pl.col("ds").cast(pl.Date)), job.levels)
    result = reconcile_grains(hierarchy, published, coarse, job)
    table = grain_table(hierarchy, result, job)
    per_series = table.group_by("grain", "unique_id").len()
    assert per_series.height == 3 * hierarchy.members.height
    assert gap_across_hierarchy(table, hierarchy.members) < TOL
    if (table["reconciled"] == "hierarchy+time").any():
        assert gap_across_time(table, job.grains) < TOL
