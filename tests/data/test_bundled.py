"""The derived daily M5 store history (data/m5/m5_daily_store_sales.parquet) is what forecasting.data.bundled builds."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from forecasting.data.bundled import M5_DAILY_STORE, M5_TOTALS, build_m5_daily_store
from forecasting.job.common import project_root

ROOT = project_root()
FIRST, LAST, LAST_TOTALS = date(2011, 1, 29), date(2016, 5, 22), date(2016, 4, 24)  # d_1, d_1941, d_1913


@pytest.fixture(scope="module")
def shipped() -> pl.DataFrame:
    return pl.read_parquet(ROOT / M5_DAILY_STORE)


def test_shipped_file_equals_a_fresh_build(shipped, tmp_path):
    out = build_m5_daily_store(ROOT, tmp_path / "store.parquet")
    assert out == tmp_path / "store.parquet"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert_frame_equal(pl.read_parquet(out), shipped)


def test_ten_stores_by_1941_days_without_nulls(shipped):
    assert shipped.columns == ["store_id", "state_id", "date", "sales"]
    assert shipped.height == 10 * 1941
    assert shipped.null_count().sum_horizontal().item() == 0
    per_store = shipped.group_by("store_id", "state_id").agg(
        pl.len().alias("n"),
        pl.col("date").n_unique().alias("days"),
        pl.col("date").min().alias("first"),
        pl.col("date").max().alias("last"),
    )
    assert per_store.height == 10
    assert per_store["store_id"].n_unique() == 10
    assert sorted(per_store["state_id"].unique()) == ["CA", "TX", "WI"]
    assert (per_store["n"] == 1941).all() and (per_store["days"] == 1941).all()
    assert (per_store["first"] == FIRST).all() and (per_store["last"] == LAST).all()
    assert (per_store["store_id"].str.split("_").list.first() == per_store["state_id"]).all()


def test_state_sums_equal_the_state_totals(shipped):
    states = (
        shipped.filter(pl.col("date") <= LAST_TOTALS)
        .group_by("state_id", "date")
        .agg(pl.col("sales").sum().cast(pl.Int64))
        .sort("state_id", "date")
    )
    totals = (
        pl.read_parquet(ROOT / M5_TOTALS)
        .filter(pl.col("level") == "state")
        .select(pl.col("unique_id").alias("state_id"), "date", pl.col("sales").cast(pl.Int64))
        .sort("state_id", "date")
    )
    assert totals.height == 3 * 1913
    assert_frame_equal(states, totals)
