"""The Prefect flow on a job with time grains (three real stores of m5-daily-warehouse as of 2015-12-20, a
Christmas inside the day horizon), against a temporary Prefect server: after a backtest is published, the nightly
flow writes grain_forecasts.parquet, adding up across time and the hierarchy, with the temporal step checked on the
backtest's windows; the published days, staffing and the grain table agree."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from support import grains_slice_job

from flows.nightly import nightly_forecast
from forecasting import pipeline
from forecasting.data.transforms import closed_mask
from forecasting.evaluate.grains import gap_across_hierarchy, gap_across_time

AS_OF = date(2015, 12, 20)


@pytest.fixture(scope="module")
def grains_flow(harness, tmp_path_factory):
    job = grains_slice_job(tmp_path_factory.mktemp("grains-flow"))
    pipeline.backtest_job(job, AS_OF, 2)  # the backtest the run reads (model choice off; the temporal guard)
    state = nightly_forecast(job=job, as_of=AS_OF, return_state=True)
    return job, state


def test_the_flow_publishes_every_grain_coherent(grains_flow):
    job, state = grains_flow
    assert state.is_completed(), state.message
    run_dir = Path(state.result()["run_dir"])
    table = pl.read_parquet(run_dir / "grain_forecasts.parquet")
    assert set(table["grain"]) == {"day", "week", "4-week"} and table["ds"].min() == date(2015, 12, 21)
    _, hierarchy = pipeline.load_hierarchy(job.model_copy(update={"grains": None}), AS_OF)
    assert gap_across_hierarchy(table, hierarchy.members) < 1e-6
    assert gap_across_time(table, job.grains) < 1e-6  # reconciled across time or the days summed: both add up
    christmas = table.filter(closed_mask(pl.col("ds"), job.closed_periods) & (pl.col("grain") == "day"))
    assert christmas.height == hierarchy.members.height and (christmas.select("mean", "hi_95").to_numpy() == 0).all()
    summary = state.result()["summary"]
    guard = summary["grain_time_guard"]
    assert guard["windows"] == ["2015-10-25", "2015-11-22"] and {r["grain"] for r in guard["rmsse"]} == {
        "day",
        "week",
        "4-week",
    }
    span = table.filter(pl.col("ds") <= table.filter(pl.col("grain") == "day")["ds"].max())
    kept_off = set(span.filter(pl.col("reconciled") == "days summed")["level"])
    assert kept_off == set(guard["fallback_levels"])
    assert any(guard["said"] in w for w in summary["warnings"])


def test_published_days_and_staffing_read_the_grain_table(grains_flow):
    job, state = grains_flow
    run_dir = Path(state.result()["run_dir"])
    table = pl.read_parquet(run_dir / "grain_forecasts.parquet").filter(pl.col("grain") == "day")
    reconciled = pl.read_parquet(run_dir / "reconciled_forecasts.parquet").filter(pl.col("published"))
    joined = reconciled.join(table, on=["unique_id", "ds"], suffix="_grain")
    assert joined.height == table.height and ((joined["mean"] - joined["mean_grain"]).abs() < 1e-9).all()
    assert (reconciled["grain"] == "day").all()
    staffing = pl.read_parquet(run_dir / "staffing.parquet")
    assert set(staffing["grain"]) == {"day", "week"} and staffing.filter(pl.col("grain") == "week")["ds"].min() > (
        table["ds"].max()
    )
