"""The synthetic generator: seeded, the promised shapes, and valid input for the real data-quality gate."""

from __future__ import annotations

import polars as pl
import pytest

from forecasting import pipeline
from forecasting.data import synthetic
from forecasting.data.quality import DataQualityError
from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec


def write(tmp_path, **kw) -> tuple[synthetic.SyntheticSpec, pl.DataFrame]:
    spec = synthetic.SyntheticSpec(**({"series": 3000, "periods": 80, "min_history": 30} | kw))
    synthetic.write(spec, tmp_path)
    return spec, pl.read_parquet(tmp_path / "sales.parquet")


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    _, a = write(tmp_path / "a")
    _, b = write(tmp_path / "b")
    _, c = write(tmp_path / "c", seed=1)
    assert a.equals(b)
    assert not a.equals(c)


def test_shapes_launches_delistings_intermittency_prices(tmp_path):
    spec, sales = write(tmp_path)
    per = sales.group_by("item_id", "store_id").agg(
        pl.col("date").min().alias("first"),
        pl.col("date").max().alias("last"),
        pl.len().alias("n"),
        (pl.col("sales") == 0).mean().alias("zeros"),
    )
    assert per.height == spec.series
    short = per.filter(pl.col("n") < spec.min_history)  # new products: launched in the last min_history periods
    assert short["n"].min() >= 1 and 0.005 < short.height / spec.series < 0.04
    launched_late = (per["first"] > synthetic.START).mean()
    delisted = (per["last"] < per["last"].max()).mean()
    assert 0.06 < launched_late < 0.17 and 0.02 < delisted < 0.08
    assert (per["zeros"] > 0.5).mean() > 0.2  # intermittent SKUs
    assert sales["store_id"].n_unique() == spec.warehouses
    assert sales.group_by("store_id").agg(pl.col("state_id").n_unique())["state_id"].max() == 1
    prices = pl.read_parquet(tmp_path / "prices.parquet")
    changes = prices.sort("wm_yr_wk").group_by("item_id", "store_id").agg(pl.col("sell_price").n_unique())
    assert (changes["sell_price"] > 1).mean() > 0.3  # price changes


def test_yearly_seasonality_in_the_total(tmp_path):
    _, sales = write(tmp_path, periods=104, min_history=60, share_new=0.0, share_delisted=0.0)
    total = sales.group_by("date").agg(pl.col("sales").sum()).sort("date")["sales"].to_numpy().astype(float)
    # Same week one year apart is closer than half a year apart: a yearly cycle.
    year = abs(total[52:] - total[:-52]).mean()
    half = abs(total[26:] - total[:-26]).mean()
    assert total.min() > 0 and year < half


def job_on(folder, **update) -> JobSpec:
    data = load_job("synthetic-weekly").model_dump(mode="json")
    for table in ("sales", "prices", "calendar"):
        data["source"][table]["path"] = str(folder / f"{table}.parquet")
    data["output_root"] = str(folder / "outputs")
    return JobSpec.model_validate(data | update)


def test_bundled_job_data_passes_the_real_gate_and_needs_zero_fill():
    job = load_job("synthetic-weekly")
    loaded = pipeline.load(job)
    validated = pipeline.validate(loaded, job)
    assert validated.history.select("region", "warehouse", "sku").n_unique() == 1000
    lengths = validated.history.group_by("sku", "warehouse").len()["len"]
    assert lengths.min() >= job.min_history
    with pytest.raises(DataQualityError, match="missing periods"):
        pipeline.validate(loaded, job.model_copy(update={"zero_fill_gaps": False}))


def test_generated_job_runs_end_to_end(tmp_path):
    synthetic.write(synthetic.SyntheticSpec(series=60, periods=104, share_short=0.1), tmp_path)
    models = {
        "aggregate_models": ["SeasonalNaive", "Naive"],
        "bottom_models": ["SeasonalNaive", "Naive"],
        "primary": {"total": "SeasonalNaive", "region": "SeasonalNaive", "warehouse": "SeasonalNaive", "sku": "Naive"},
        "intermittent_model": None,
    }
    result = pipeline.run_job(job_on(tmp_path, models=models, n_jobs=1))
    reconciled = pl.read_parquet(result.run_dir / "reconciled_forecasts.parquet")
    assert reconciled.filter(pl.col("level") == "sku")["sku"].n_unique() == 15  # 60 series over 4 warehouses
    assert reconciled["ds"].n_unique() == 13 and (reconciled["mean"] >= 0).all()
    new = result.summary["new_series"]  # launched in the last min_history weeks: forecast, counted
    assert (
        new["per_level"]["sku"]
        == reconciled.filter(pl.col("history_periods") < new["shorter_than_periods"])
        .filter(pl.col("level") == "sku")["unique_id"]
        .n_unique()
        > 0
    )
