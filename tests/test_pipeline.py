"""End to end on real M5 data: the full bundled job (all 30,490 SKUs) and a slice run twice."""

from __future__ import annotations

import duckdb
import polars as pl
from polars.testing import assert_frame_equal
from support import M5_MONTHLY, assert_coherent, slice_job

from forecasting.outputs.runs import read_manifest
from forecasting.pipeline import run_job
from forecasting.staffing.plans import SCHEMA as STAFFING_SCHEMA

RECONCILED_COLUMNS = [
    "unique_id",
    "level",
    "region",
    "warehouse",
    "sku",
    "ds",
    "history_periods",
    "model",
    "method",
    "published",
    "mean",
    "lo_60",
    "hi_60",
    "lo_80",
    "hi_80",
    "lo_90",
    "hi_90",
    "lo_95",
    "hi_95",
]


def test_full_job_every_sku_forecast_coherent_non_negative(full_run):
    job, result = full_run
    reconciled = pl.read_parquet(result.run_dir / "reconciled_forecasts.parquet")
    skus = duckdb.execute(
        "SELECT count(*) FROM (SELECT DISTINCT item_id, store_id FROM read_parquet(?))", [str(M5_MONTHLY)]
    ).fetchone()[0]
    published = reconciled.filter(pl.col("published") & (pl.col("level") == "sku"))
    assert published.select("sku", "warehouse").n_unique() == skus == 30_490
    assert published.group_by("unique_id").len()["len"].unique().to_list() == [job.horizon]
    assert reconciled.select(pl.min_horizontal("mean", "lo_60", "lo_80", "lo_90", "lo_95").min()).item() >= 0
    assert_coherent(reconciled)


def test_full_job_schemas_and_manifest(full_run):
    job, result = full_run
    reconciled = pl.read_parquet(result.run_dir / "reconciled_forecasts.parquet")
    assert reconciled.columns == RECONCILED_COLUMNS
    assert reconciled.schema["ds"] == pl.Date and reconciled.schema["mean"] == pl.Float64
    base = pl.read_parquet(result.run_dir / "base_forecasts.parquet")
    assert {"AutoETS", "AutoTheta", "SeasonalNaive", "CrostonSBA", "LightGBM", "Base"} <= set(base["model"])
    assert base.filter(pl.col("level") == "sku")["model"].unique().sort().to_list() == [
        "Base",
        "CrostonSBA",
        "LightGBM",
        "Mean",
        "Median",
        "SeasonalNaive",
        "Top2",
        "Weighted",
    ]
    staffing = pl.read_parquet(result.run_dir / "staffing.parquet")
    assert staffing.height == 10 * 6 * job.horizon * 3  # warehouses x processes x months x quantiles
    assert staffing.columns == list(STAFFING_SCHEMA)
    assert staffing.schema == pl.Schema(STAFFING_SCHEMA)
    assert (staffing["headcount"] >= 1).all()
    manifest = read_manifest(result.run_dir)
    assert set(manifest["inputs_sha256"]) == {
        "data/m5/m5_monthly_sales.parquet",
        "data/m5/m5_sell_prices.parquet",
        "data/m5/m5_calendar.parquet",
        "data/labour/m5-monthly-standards.csv",
    }
    assert manifest["versions"]["statsforecast"] and manifest["config"]["name"] == "m5-monthly"
    assert [row["stage"] for row in manifest["timings"]] == [
        "load",
        "validate",
        "aggregate",
        "base_forecasts",
        "reconcile",
        "staff",
        "prepare outputs",
    ]
    assert manifest["summary"]["series_per_level"] == {"total": 1, "region": 3, "warehouse": 10, "sku": 30490}


def test_rerun_gives_the_same_numbers(slice_run, tmp_path):
    job, first = slice_run
    again = run_job(slice_job(tmp_path))
    for table in ("base_forecasts", "reconciled_forecasts", "staffing"):
        assert_frame_equal(
            pl.read_parquet(first.run_dir / f"{table}.parquet"), pl.read_parquet(again.run_dir / f"{table}.parquet")
        )
