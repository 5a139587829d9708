"""drivers.parquet of a real run: at every series and period the rows sum to the published forecast, every family
adds up the hierarchy (children to parent) to 1e-6 relative, the bottom rows less reconciliation are Base."""

from __future__ import annotations

import numpy as np
import polars as pl

from forecasting.job.models import BASE


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
