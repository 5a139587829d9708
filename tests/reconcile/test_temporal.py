"""Time grains on real M5 data: days, weeks and 4-week periods reconciled with hierarchicalforecast add up across
time and across the hierarchy (to 1e-6 relative) wherever the run says they do; the guard's Base levels are the only
exceptions, and are flagged."""

from __future__ import annotations

import polars as pl
import pytest
from statsforecast.models import SeasonalNaive

from forecasting import pipeline
from forecasting.job.loading import load_job
from forecasting.models.grains import forecast_grains
from forecasting.models.statistical import local_statistical_forecast
from forecasting.outputs.grains import grain_table
from forecasting.reconcile.temporal import across_hierarchy, reconcile_grains

TOL = 1e-6


def _relative(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return (a - b).abs() / pl.max_horizontal(b.abs(), pl.lit(1.0))


def check_across_time(table: pl.DataFrame, base: str, sizes: dict[str, int]) -> float:
    """Largest relative gap between each coarse period reconciled across time and the days inside it."""
    days = table.filter(pl.col("grain") == base)
    start = days["ds"].min()
    worst = 0.0
    for grain, size in sizes.items():
        coarse = table.filter((pl.col("grain") == grain) & (pl.col("reconciled") == "hierarchy+time"))
        assert coarse.height, f"no {grain} period reconciled across time"
        period = ((pl.col("ds") - pl.lit(start)).dt.total_days() // size).alias("period")
        summed = days.with_columns(period).group_by("unique_id", "period").agg(pl.col("mean").sum().alias("summed"))
        joined = coarse.with_columns(period).join(summed, on=["unique_id", "period"])
        assert joined.height == coarse.height
        worst = max(worst, joined.select(_relative(pl.col("summed"), pl.col("mean")).max()).item())
    return worst


def check_across_hierarchy(table: pl.DataFrame, members: pl.DataFrame, parent: str, child: str) -> float:
    """Largest relative gap between a parent level's rows and its children's sum, over the rows flagged coherent."""
    keys = [
        k
        for k in members.filter(pl.col("level") == parent).drop("unique_id", "level").columns
        if members.filter(pl.col("level") == parent)[k].null_count() == 0
    ]
    ok = table.filter(pl.col("coherent"))
    up = ok.filter(pl.col("level") == parent)
    down = ok.filter(pl.col("level") == child).group_by("grain", "ds", *keys).agg(pl.col("mean").sum().alias("kids"))
    joined = up.join(down, on=["grain", "ds", *keys])
    if not joined.height:
        return 0.0
    return joined.select(_relative(pl.col("kids"), pl.col("mean")).max()).item()


@pytest.fixture(scope="module")
def slice_grains():
    """m5-daily-warehouse on three real stores (two regions), the coarse grains on cheap models and two origins."""
    job = load_job("m5-daily-warehouse")
    grains = job.grains.model_copy(
        update={
            "windows": 2,
            "coarser": [g.model_copy(update={"models": ["SeasonalNaive", "Naive"]}) for g in job.grains.coarser],
        }
    )
    job = job.model_copy(update={"warehouse_filter": ["CA_1", "CA_2", "TX_1"], "grains": grains})
    _, hierarchy = pipeline.load_hierarchy(job)
    coarse = forecast_grains(hierarchy.Y_df, hierarchy.members, job)
    days = local_statistical_forecast(hierarchy.Y_df, job, [SeasonalNaive(season_length=7, alias="Base")], n_jobs=1)
    published_days = across_hierarchy(hierarchy, days.forecasts.with_columns(pl.col("ds").cast(pl.Date)), job.levels)
    result = reconcile_grains(hierarchy, published_days, coarse, job)
    return job, hierarchy, coarse, result, grain_table(hierarchy, result, job)


def test_grains_add_up_across_time_and_the_hierarchy(slice_grains):
    job, hierarchy, coarse, result, table = slice_grains
    sizes = {g.name: g.periods for g in job.grains.coarser}
    assert check_across_time(table, "day", sizes) < TOL
    for parent, child in (("total", "region"), ("region", "warehouse")):
        assert check_across_hierarchy(table, hierarchy.members, parent, child) < TOL
    # The guard's Base levels are the only rows not flagged coherent, and each one is said in the notes.
    flagged = table.filter(~pl.col("coherent"))["level"].unique().to_list()
    assert set(flagged) == {lv for levels in result.guard.values() for lv in levels}
    assert all(any(g in note for note in result.notes) for g in result.guard)


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
