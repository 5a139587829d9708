"""The drivers view and its recipes (series_drivers, series_most_driven_by, drivers_by_level) against polars over
the real drivers.parquet of a slice run; and a run without drivers refused in words."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from forecasting.outputs import recipes
from forecasting.outputs.views import open_views


def _drivers(run_dir) -> pl.DataFrame:
    return pl.read_parquet(run_dir / "drivers.parquet")


def test_the_drivers_view_reads_the_run_confined(planner_runs):
    job, _, after = planner_runs
    con = open_views(job)
    try:
        assert con.execute("SELECT count(*) FROM drivers").fetchone()[0] == _drivers(after.run_dir).height
        with pytest.raises(Exception, match="(?i)permission|disabled|not allowed|outside"):
            con.execute("COPY (SELECT * FROM drivers) TO '/tmp/h36_drivers_copy.csv'")
    finally:
        con.close()


def test_series_drivers_sums_the_families_over_the_first_periods(planner_runs):
    job, _, after = planner_runs
    table = _drivers(after.run_dir).filter((pl.col("unique_id") == "total/CA") & (pl.col("basis") == "hierarchy"))
    first = table["ds"].unique().sort().head(2)
    expected = table.filter(pl.col("ds").is_in(first.implode())).group_by("family").agg(pl.col("effect").sum())
    got = recipes.run_recipe(job, "series_drivers", {"series": "total/CA", "periods": "2"})
    assert set(got["periods"]) == {2}
    assert dict(got.select("family", "effect").rows()) == pytest.approx(dict(expected.rows()), abs=0.006)
    assert got["share"].sum() == pytest.approx(1.0, abs=1e-3)
    default = recipes.run_recipe(job, "series_drivers")
    assert set(default["unique_id"]) == {"total"}


def test_series_most_driven_by_ranks_by_the_familys_share(planner_runs):
    job, _, after = planner_runs
    table = _drivers(after.run_dir).filter((pl.col("level") == "sku") & (pl.col("basis") == "hierarchy"))
    shares = (
        table.group_by("unique_id")
        .agg(
            pl.col("effect").filter(pl.col("family") == "price").sum().alias("price"),
            pl.col("effect").sum().alias("forecast"),
        )
        .filter(pl.col("price") != 0)
        .with_columns((pl.col("price") / pl.col("forecast")).alias("share"))
        .sort(pl.col("share").abs(), descending=True)
    )
    got = recipes.run_recipe(job, "series_most_driven_by", {"top": "5"})
    assert got["unique_id"].to_list() == shares["unique_id"].head(5).to_list()
    assert got["share"].to_list() == pytest.approx(shares["share"].head(5).to_list(), abs=1e-4)


def test_drivers_by_level_adds_every_family_up_the_levels(planner_runs):
    job, *_ = planner_runs
    got = recipes.run_recipe(job, "drivers_by_level")
    by_level = {
        level: dict(rows.select("family", "effect").rows())
        for (level,), rows in got.partition_by("level", as_dict=True).items()
    }
    assert set(by_level) == set(job.hierarchy.names)
    for level in job.hierarchy.names:  # each family sums to the same figure at every level
        assert by_level[level] == pytest.approx(by_level["total"], abs=0.05)


def test_a_run_without_drivers_is_refused_in_words(planner_runs, tmp_path):
    from forecasting.pipeline import run_job

    job, *_ = planner_runs
    quiet = job.model_copy(update={"drivers": False, "output_root": str(tmp_path / "outputs")})
    result = run_job(quiet)
    assert not (result.run_dir / "drivers.parquet").exists()
    with pytest.raises(FileNotFoundError, match="has not published"):
        recipes.run_recipe(quiet, "drivers_by_level")


def test_diff_splits_each_change_into_drivers_model_change_and_remainder(planner_runs):
    from forecasting.outputs.diff import diff_runs
    from forecasting.outputs.diff_drivers import MODEL_CHANGE, REMAINDER, split_change

    job, before, after = planner_runs
    split = split_change(job, before.run_dir, after.run_dir)
    a, b = (
        pl.read_parquet(run.run_dir / "reconciled_forecasts.parquet").filter(pl.col("published"))
        for run in (before, after)
    )
    change = (
        a.select("unique_id", "ds", "mean")
        .join(b.select("unique_id", "ds", pl.col("mean").alias("after")), on=["unique_id", "ds"])
        .group_by("unique_id")
        .agg((pl.col("after") - pl.col("mean")).sum().alias("change"))
    )
    parts = split.group_by("unique_id").agg(pl.col("change").sum().alias("parts")).join(change, on="unique_id")
    assert parts.height == change.height > 0
    np.testing.assert_allclose(parts["parts"], parts["change"], rtol=1e-6, atol=1e-6)
    bottom = split.filter(pl.col("level") == job.hierarchy.bottom)
    assert bottom.filter(pl.col("part") == REMAINDER)["change"].abs().max() < 1e-6  # the bottom has no remainder
    drivers_moved = bottom.filter(~pl.col("part").is_in([MODEL_CHANGE, REMAINDER]))
    assert drivers_moved["change"].abs().sum() > 0  # the runs differ in data, so their drivers do
    result = diff_runs(job, before.run_dir, after.run_dir, top=3)
    assert result.explained is not None
    assert set(result.explained["unique_id"]) <= set(result.forecasts["unique_id"])
    for rows in result.explained.partition_by("unique_id"):
        assert rows["change"].sum() == pytest.approx(rows["series_change"][0], rel=1e-6, abs=1e-6)
