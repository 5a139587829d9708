"""The m5-daily-sku job end to end on two real items in all 10 stores (a smooth and an intermittent one): both
groupings (store -> state -> total, item -> dept -> category) reconciled together, the inventory table checked
against the published quantiles it comes from, its view and the at-risk recipe. Fast models here; the job's own
run in the slow test and in benchmarks/daily_sku.py."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from forecasting.job.loading import JobConfigError, load_job
from forecasting.outputs.recipes import missing_needs, run_recipe
from forecasting.outputs.views import open_views
from forecasting.pipeline import run_job

ITEMS = ["FOODS_3_377", "HOUSEHOLD_2_239"]


def _job(tmp_path, fast: bool):
    job = load_job("m5-daily-sku", output_root=str(tmp_path), n_jobs=1, sku_filter=ITEMS)
    if not fast:
        return job
    models = ["SeasonalNaive", "LightGBM"]
    spec = job.models.model_copy(
        update={
            "aggregate_models": models,
            "bottom_models": [*models, "TSB", "ADIDA"],
            "primary": {level: "Mean" for level in job.hierarchy.names},
            "choose_from_backtest": False,
            "lightgbm": job.models.lightgbm.model_copy(update={"n_estimators": 30}),
        }
    )
    return job.model_copy(update={"models": spec, "grains": None})  # the grains: tests/reconcile/test_temporal.py


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    job = _job(tmp_path_factory.mktemp("daily_sku"), fast=True)
    return job, run_job(job)


def test_both_groupings_add_up(run):
    job, result = run
    published = pl.read_parquet(result.run_dir / "reconciled_forecasts.parquet").filter(pl.col("published"))
    sizes = published.group_by("level").agg(pl.col("unique_id").n_unique()).sort("level")
    assert dict(sizes.rows()) == {
        "total": 1, "region": 3, "category": 2, "warehouse": 10, "dept": 2, "item": 2, "sku": 20
    }  # fmt: skip
    sku = published.filter(pl.col("level") == "sku")
    for level, key in [("warehouse", "warehouse"), ("dept", "dept"), ("item", "sku"), ("category", "category")]:
        sums = sku.group_by(key, "ds").agg(pl.col("mean").sum().alias("bottom"))
        upper = published.filter(pl.col("level") == level).select(key, "ds", "mean")
        joined = sums.join(upper, on=[key, "ds"])
        assert joined.height == upper.height
        np.testing.assert_allclose(joined["bottom"], joined["mean"], rtol=1e-6, atol=1e-6)
    assert len(sku["ds"].unique()) == 28 and (sku["mean"] >= 0).all()


def test_inventory_comes_from_the_published_quantiles(run):
    job, result = run
    inventory = pl.read_parquet(result.run_dir / "inventory.parquet")
    assert inventory.height == 20 * 2 and set(inventory["service_level"]) == {0.9, 0.95}
    lead = dict(inventory.select("category", "lead_time").unique().rows())
    assert lead == {"FOODS": 5, "HOUSEHOLD": 7}
    published = pl.read_parquet(result.run_dir / "reconciled_forecasts.parquet").filter(
        pl.col("published") & (pl.col("level") == "sku")
    )
    days = published.join(inventory.select("unique_id", "lead_time").unique(), on="unique_id").sort("unique_id", "ds")
    first = days.filter(pl.int_range(pl.len()).over("unique_id") < pl.col("lead_time"))
    sums = first.group_by("unique_id").agg(
        pl.col("mean").clip(lower_bound=0).sum().alias("mean_sum"),
        pl.col("hi_80").clip(lower_bound=0).sum().alias("q90_comonotone"),
        pl.col("hi_80").max().alias("q90_max_day"),
    )
    got = inventory.filter(pl.col("service_level") == 0.9).join(sums, on="unique_id")
    np.testing.assert_allclose(got["lead_time_demand_mean"], got["mean_sum"], rtol=1e-9)
    # between one day's 0.9-quantile and the sum of the days' (the days are neither one day nor moving together)
    assert (got["lead_time_demand_quantile"] <= got["q90_comonotone"] * 1.01).all()
    assert (got["lead_time_demand_quantile"] >= got["q90_max_day"]).all()
    assert (got["reorder_point"] == np.ceil(got["lead_time_demand_quantile"] - 1e-9)).all()
    wide = inventory.pivot(on="service_level", index="unique_id", values="reorder_point")
    assert (wide["0.95"] >= wide["0.9"]).all()


def test_inventory_view_and_at_risk_recipe(run):
    job, _ = run
    con = open_views(job)
    try:
        n, low = con.execute("SELECT count(*), min(service_level) FROM inventory").fetchone()
    finally:
        con.close()
    assert (n, low) == (40, 0.9)
    top = run_recipe(job, "sku_at_risk", {"service_level": "0.9", "top": "5"})
    assert top.height == 5 and (top["service_level"] == 0.9).all()
    share = top["safety_share"].to_list()
    assert share == sorted(share, reverse=True)
    assert "no inventory section" in missing_needs(load_job("m5-daily-warehouse"), "sku_at_risk")


def test_inventory_settings_are_checked():
    with pytest.raises(JobConfigError, match="lead_times: \\['aisle'\\] are not hierarchy keys"):
        load_job("m5-daily-sku", inventory={"lead_times": {"aisle": {"A": 3}}})
    with pytest.raises(JobConfigError, match="lead time of 40 periods is beyond the horizon 28"):
        load_job("m5-daily-sku", inventory={"lead_times": {"sku": {"FOODS_3_377": 40}}})


@pytest.mark.slow
def test_the_job_as_shipped_on_all_280_series(tmp_path):
    job = load_job("m5-daily-sku", output_root=str(tmp_path))
    result = run_job(job)
    inventory = pl.read_parquet(result.run_dir / "inventory.parquet")
    assert inventory.height == 280 * 2 and inventory["reorder_point"].is_not_null().all()
    models = pl.read_parquet(result.run_dir / "base_forecasts.parquet")["model"].unique().to_list()
    assert {"LightGBM", "AutoETS", "CrostonSBA", "TSB", "ADIDA", "IMAPA"} <= set(models)
