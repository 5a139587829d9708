"""The other bundled jobs through the same pipeline: the daily warehouse job (bottom level = warehouse, calendar
features, any as-of day) and the tourism job (a grouped structure, dense mint_shrink)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from support import daily_job

from forecasting.data import features
from forecasting.job.loading import load_job
from forecasting.pipeline import aggregate, load, run_job, validate


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    """m5-daily-warehouse as of an arbitrary Wednesday (Christmas falls in the horizon), with fast models (the
    job's own are exercised by the benchmark)."""
    job = daily_job(tmp_path_factory.mktemp("daily"), ["SeasonalNaive", "LightGBM"], "LightGBM")
    as_of = date(2015, 12, 2)
    return job, as_of, run_job(job, as_of)


def test_daily_job_forecasts_the_28_days_after_any_as_of(daily):
    job, as_of, result = daily
    reconciled = pl.read_parquet(result.run_dir / "reconciled_forecasts.parquet")
    assert set(reconciled["level"]) == {"total", "region", "warehouse"}
    days = sorted(reconciled["ds"].unique().to_list())
    assert days[0] == as_of + timedelta(days=1) and days[-1] == as_of + timedelta(days=28) and len(days) == 28
    published = reconciled.filter(pl.col("published"))
    assert published.height == 14 * 28
    stores = published.filter(pl.col("level") == "warehouse").group_by("ds").agg(pl.col("mean").sum())
    total = published.filter(pl.col("level") == "total").select("ds", pl.col("mean").alias("total"))
    joined = stores.join(total, on="ds")
    np.testing.assert_allclose(joined["mean"].to_numpy(), joined["total"].to_numpy(), atol=1e-6)
    # Christmas 2015 lies in the horizon: the stores are closed, and the calendar features let LightGBM know.
    christmas = published.filter((pl.col("level") == "total") & (pl.col("ds") == date(2015, 12, 25)))["mean"].item()
    usual = published.filter(pl.col("level") == "total")["mean"].median()
    assert christmas < 0.4 * usual  # seasonal naive says about 0.8; stores are closed (actual 14 units)
    # A daily per-shift plan: 10 stores x 6 processes x 28 days x 3 quantiles; closed on Christmas -> minimum crew
    staffing = pl.read_parquet(result.run_dir / "staffing.parquet")
    assert staffing.height == 10 * 6 * 28 * 3 and (staffing["headcount"] > 0).all()
    picking = staffing.filter((pl.col("process") == "picking") & (pl.col("quantile") == "p80"))
    assert picking.filter(pl.col("warehouse") == "CA_3")["shifts_per_day"].unique().to_list() == [3]
    assert picking.filter(pl.col("warehouse") == "TX_1")["shifts_per_day"].unique().to_list() == [2]
    crew = picking.group_by("warehouse").agg(
        pl.col("crew_per_shift").filter(pl.col("ds") == date(2015, 12, 25)).first().alias("christmas"),
        pl.col("crew_per_shift").filter(pl.col("ds") != date(2015, 12, 25)).min().alias("other_days"),
    )
    # stores are closed (the job's closed_days): only the template's picking min_crew of 2 on each shift
    assert (crew["christmas"] == 2).all() and (crew["other_days"] >= 2).all() and (crew["other_days"] > 2).any()


def test_daily_calendar_features_resolve_snap_per_state(daily):
    job, as_of, _ = daily
    loaded = load(job, as_of)
    hierarchy = aggregate(validate(loaded, job), job)
    exog = features.exogenous(hierarchy.members, None, loaded.calendar, job, bottom=False)
    assert exog["ds"].max() >= as_of + timedelta(days=28)  # known ahead for the whole horizon
    day = exog.filter(pl.col("ds") == date(2015, 11, 2))  # SNAP in CA and WI, not TX (m5_calendar)
    snap = dict(zip(day["unique_id"], day["snap"], strict=True))
    assert snap["total/CA/CA_1"] == 1 and snap["total/TX"] == 0 and snap["total"] == pytest.approx(2 / 3)
    assert "event_type_1=National" in exog.columns


@pytest.fixture(scope="module")
def tourism(tmp_path_factory):
    """The tourism job on two states (all purposes), trained through 2015 Q4."""
    job = load_job(
        "tourism",
        output_root=str(tmp_path_factory.mktemp("tourism")),
        filters={"state": ["Tasmania", "Northern Territory"]},
        n_jobs=1,
    )
    return job, run_job(job, date(2015, 12, 31))


def test_tourism_grouped_structure_is_coherent(tourism):
    job, result = tourism
    reconciled = pl.read_parquet(result.run_dir / "reconciled_forecasts.parquet")
    assert result.summary["series_per_level"] == {
        "total": 1, "purpose": 4, "state": 2, "state_purpose": 8, "region": 12, "region_purpose": 48,
    }  # fmt: skip
    assert sorted(reconciled["ds"].unique().to_list())[0] == date(2016, 1, 1)
    assert set(reconciled["method"]) == {"BottomUp", "MinTrace_ols", "MinTrace_wls_struct", "MinTrace_mint_shrink"}
    bottom = reconciled.filter(pl.col("level") == "region_purpose")
    for level, keys in (("purpose", ["purpose"]), ("state", ["state"]), ("region", ["state", "region"])):
        sums = bottom.group_by("method", "ds", *keys).agg(pl.col("mean").sum().alias("children"))
        parents = reconciled.filter(pl.col("level") == level).join(sums, on=["method", "ds", *keys])
        assert parents.height == reconciled.filter(pl.col("level") == level).height
        np.testing.assert_allclose(parents["mean"].to_numpy(), parents["children"].to_numpy(), atol=1e-6)
    assert (reconciled["mean"] >= 0).all()
    assert pl.read_parquet(result.run_dir / "staffing.parquet").is_empty()  # no labour standard in this job


def test_tourism_base_is_the_mean_and_median_of_its_models_without_a_backtest(tourism):
    """No backtest published: Base is the Mean of AutoETS, AutoTheta and SeasonalNaive at every level, with the mean
    of their interval bounds; the Median and the Weighted (equal weights until a backtest fits them) are candidates."""
    job, result = tourism
    base = pl.read_parquet(result.run_dir / "base_forecasts.parquet")
    models = ["AutoETS", "AutoTheta", "SeasonalNaive"]
    for value in ("mean", "hi_95"):
        wide = base.pivot(on="model", index=["unique_id", "ds"], values=value)
        np.testing.assert_allclose(
            wide["Mean"].to_numpy(), wide.select(pl.mean_horizontal(models)).to_series().to_numpy()
        )
        np.testing.assert_allclose(wide["Weighted"].to_numpy(), wide["Mean"].to_numpy(), rtol=1e-12)
        median = wide.select(pl.concat_list(models).list.median()).to_series().to_numpy()
        np.testing.assert_allclose(wide["Median"].to_numpy(), median)
        np.testing.assert_allclose(wide["Base"].to_numpy(), wide["Mean"].to_numpy())
