"""drivers.parquet of a real run: at every series and period the rows sum to the published forecast, every family
adds up the hierarchy (children to parent) to 1e-6 relative, the bottom rows less reconciliation are Base."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from support import daily_job

from forecasting.job.models import BASE
from forecasting.pipeline import run_job


def _check_adds_up(job, run_dir) -> None:
    table = pl.read_parquet(run_dir / "drivers.parquet").filter(pl.col("basis") == "hierarchy")
    published = pl.read_parquet(run_dir / "reconciled_forecasts.parquet").filter(pl.col("published"))
    sums = table.group_by("unique_id", "ds").agg(pl.col("effect").sum())
    joined = published.select("unique_id", "ds", "mean").join(sums, on=["unique_id", "ds"], how="left")
    assert joined["effect"].null_count() == 0, "a published forecast without drivers"
    np.testing.assert_allclose(joined["effect"], joined["mean"], rtol=1e-6, atol=1e-6)
    bottom = job.hierarchy.bottom
    leaves = table.filter(pl.col("level") == bottom)
    checked = 0
    for level, keys in job.hierarchy.levels.items():
        if level == bottom:
            continue
        parent = table.filter((pl.col("level") == level) & (pl.col("family") != "reconciliation"))
        children = leaves.filter(pl.col("family") != "reconciliation").group_by(*keys, "ds", "family")
        summed = children.agg(pl.col("effect").sum().alias("children"))
        on = [*keys, "ds", "family"]
        both = parent.join(summed, on=on, how="full", coalesce=True).fill_null(0.0)
        scale = np.maximum(np.abs(both["effect"].to_numpy()), 1.0)
        np.testing.assert_allclose(both["effect"] / scale, both["children"] / scale, rtol=0, atol=1e-6)
        checked += both.height
    assert checked > 0


def test_drivers_add_up_to_the_published_forecast_at_every_level(slice_run):
    job, result = slice_run
    _check_adds_up(job, result.run_dir)


def test_bottom_drivers_without_reconciliation_are_base(slice_run):
    job, result = slice_run
    table = pl.read_parquet(result.run_dir / "drivers.parquet")
    bottom = table.filter((pl.col("level") == job.hierarchy.bottom) & (pl.col("family") != "reconciliation"))
    sums = bottom.group_by("unique_id", "ds").agg(pl.col("effect").sum())
    base = pl.read_parquet(result.run_dir / "base_forecasts.parquet").filter(pl.col("model") == BASE)
    joined = sums.join(base.select("unique_id", "ds", "mean"), on=["unique_id", "ds"])
    assert joined.height == sums.height > 0
    np.testing.assert_allclose(joined["effect"], joined["mean"], rtol=1e-6, atol=1e-9)
    families = set(table["family"].unique().to_list())
    assert {"price", "recent level", "season and calendar", "interactions", "reconciliation"} <= families
    share = table.filter(pl.col("share").is_not_null()).group_by("basis", "unique_id", "ds").agg(pl.col("share").sum())
    np.testing.assert_allclose(share["share"], 1.0, rtol=1e-6)


@pytest.fixture(scope="module")
def daily_run(tmp_path_factory):
    """m5-daily-warehouse on two stores with cheap LightGBMs behind Base: level-ratio targets, grouped horizons,
    events, SNAP, closed days and the series code, explained."""
    job = daily_job(tmp_path_factory.mktemp("daily"), ["SeasonalNaive", "LightGBM", "LightGBMBlocks"], "LightGBMBlocks")
    cheap = job.models.lightgbm.model_copy(update={"n_estimators": 40})
    models = job.models.model_copy(update={"lightgbm": cheap, "conformal_windows": 2})
    job = job.model_copy(update={"warehouse_filter": ["CA_1", "TX_1"], "models": models})
    return job, run_job(job)


def test_daily_drivers_name_the_jobs_events_and_flags_and_add_up(daily_run):
    job, result = daily_run
    _check_adds_up(job, result.run_dir)
    table = pl.read_parquet(result.run_dir / "drivers.parquet")
    families = set(table["family"].unique().to_list())
    assert {"snap", "series identity", "recent level", "season and calendar", "interactions"} <= families
    assert any(f.startswith("event ") for f in families)
    # level-ratio targets with an identity link: the families' effects add without interactions
    assert table.filter(pl.col("family") == "interactions")["effect"].abs().max() < 1e-6
    closed = table.filter(pl.col("ds").dt.strftime("%m-%d") == "12-25")
    assert closed.is_empty() or closed["effect"].abs().max() == 0
    _recipes_run(job)


def _recipes_run(job) -> None:
    """The drivers recipes run on the job with their defaults, each returning rows."""
    from forecasting.outputs import recipes

    for name in ("series_drivers", "series_most_driven_by", "drivers_by_level"):
        params = {"family": "recent level"} if name == "series_most_driven_by" else {}
        assert recipes.run_recipe(job, name, params).height > 0, name


@pytest.mark.slow
def test_every_sku_of_the_full_monthly_job_has_its_drivers(full_run):
    """All 30,490 SKUs: the rows add up at every level, and every SKU whose Base holds the LightGBM has its TreeSHAP
    families (no part of it left undecomposed)."""
    job, result = full_run
    _check_adds_up(job, result.run_dir)
    table = pl.read_parquet(result.run_dir / "drivers.parquet").filter(pl.col("level") == "sku")
    assert table["unique_id"].n_unique() == 30_490
    assert table.filter(pl.col("family") == "no decomposition: LightGBM").is_empty()
    explained = table.filter(pl.col("family") == "recent level")["unique_id"].n_unique()
    with_lightgbm = table.filter(pl.col("model").is_in(["LightGBM", "Mean", "Weighted", "Top2"]))["unique_id"]
    assert explained >= with_lightgbm.n_unique() > 0


@pytest.mark.slow
def test_tourism_statistical_levels_are_decomposed(tmp_path):
    from forecasting.job.loading import load_job

    job = load_job("tourism").model_copy(update={"output_root": str(tmp_path / "outputs")})
    result = run_job(job)
    _check_adds_up(job, result.run_dir)
    table = pl.read_parquet(result.run_dir / "drivers.parquet")
    assert {"recent level", "season and calendar", "trend and rest"} <= set(table["family"].unique().to_list())
    _recipes_run(job)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["online-retail", "synthetic-weekly", "m5-daily-warehouse", "m5-daily-sku", "m5-monthly-orders"]
)
def test_every_other_bundled_job_publishes_drivers_that_add_up(name, tmp_path):
    """The bundled jobs not checked above (m5-monthly, tourism), run whole: every published forecast has its drivers,
    they add up every level of the hierarchy, and the drivers view and recipes answer."""
    from forecasting.job.loading import load_job

    job = load_job(name, output_root=str(tmp_path / "outputs"))
    result = run_job(job)
    _check_adds_up(job, result.run_dir)
    _recipes_run(job)
