"""The same job on a Dask cluster (statsforecast's Fugue backend) gives the single-machine forecasts.

A real distributed.LocalCluster with 2 worker processes; a real slice of the bundled m5-monthly job (one store, 40
items; statsforecast models only, LightGBM is trained in-process with either engine)."""

from __future__ import annotations

import distributed
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from support import slice_job

from forecasting.config import load_job
from forecasting.engines import close_clients
from forecasting.pipeline import run_job

MODELS = {
    "aggregate_models": ["AutoETS", "SeasonalNaive"],
    "bottom_models": ["SeasonalNaive", "CrostonSBA"],
    "primary": {"total": "AutoETS", "region": "AutoETS", "warehouse": "AutoETS", "sku": "SeasonalNaive"},
    "intermittent_model": "CrostonSBA",
    "choose_from_backtest": False,
}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c
        close_clients()


@pytest.fixture(scope="module")
def single_machine(tmp_path_factory) -> dict[str, pl.DataFrame]:
    """The slice run once on this machine, the reference both tests compare with."""
    return outputs(run_job(slice_job(tmp_path_factory.mktemp("local"), stores=("CA_1",), n_items=40, models=MODELS)))


def tasks_run(address: str) -> int:
    with distributed.Client(address, set_as_default=False) as client:
        return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)


def outputs(result) -> dict[str, pl.DataFrame]:
    return {
        name: pl.read_parquet(result.run_dir / f"{name}.parquet") for name in ("base_forecasts", "reconciled_forecasts")
    }


def test_dask_cluster_gives_the_single_machine_forecasts(tmp_path, cluster, single_machine):
    engine = {"kind": "dask", "scheduler": cluster.scheduler_address}
    dask_job = slice_job(tmp_path / "dask", stores=("CA_1",), n_items=40, models=MODELS, engine=engine)
    before = tasks_run(cluster.scheduler_address)
    local, dask = single_machine, outputs(run_job(dask_job))
    assert tasks_run(cluster.scheduler_address) > before, "nothing ran on the Dask cluster"
    for name, frame in local.items():
        other = dask[name]
        assert frame.height == other.height > 0 and frame.columns == other.columns
        assert set(frame["model"]) == set(other["model"])
        # Fugue's output schema holds model columns as float32: equal to ~1e-7 relative, not bit for bit.
        assert_frame_equal(frame, other, check_exact=False, rel_tol=1e-5, abs_tol=1e-3)
    # A non-trivial slice: every level, and intervals that are intervals.
    assert set(local["reconciled_forecasts"]["level"]) == {"total", "region", "warehouse", "sku"}
    assert (local["base_forecasts"]["hi_95"] > local["base_forecasts"]["lo_95"]).any()


def test_engine_is_a_job_option(tmp_path):
    job = load_job("m5-monthly", engine={"kind": "dask", "scheduler": "tcp://10.0.0.5:8786"})
    assert job.engine.kind == "dask" and job.engine.scheduler == "tcp://10.0.0.5:8786"
    assert load_job("m5-monthly").engine.kind == "local"


def test_local_partitions_give_the_same_forecasts(tmp_path, single_machine):
    """engine.partitions on one machine fits groups of series one after another: same numbers, less memory."""
    split = slice_job(tmp_path / "split", stores=("CA_1",), n_items=40, models=MODELS, engine={"partitions": 3})
    a, b = single_machine, outputs(run_job(split))
    for name in a:
        assert a[name].height > 0
        assert_frame_equal(a[name], b[name])
