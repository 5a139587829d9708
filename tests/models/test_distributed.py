"""The same job on a Dask cluster (statsforecast's Fugue backend, mlforecast's DistributedMLForecast with LightGBM's
Dask estimator) gives the single-machine forecasts.

Real distributed.LocalClusters of 2 worker processes; a real slice of the bundled m5-monthly job (one store, 40 items,
a SKU-level LightGBM behind Base)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import distributed
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from support import assert_coherent, slice_job

from forecasting.data import features
from forecasting.job.engine import EngineSpec
from forecasting.job.loading import load_job
from forecasting.models import engines
from forecasting.models.cluster import close_clients
from forecasting.models.inputs import split_levels
from forecasting.pipeline import load_hierarchy, run_job

MODELS = {
    "aggregate_models": ["AutoETS", "SeasonalNaive"],
    "bottom_models": ["SeasonalNaive", "CrostonSBA", "LightGBM"],
    "primary": {"total": "AutoETS", "region": "AutoETS", "warehouse": "AutoETS", "sku": "LightGBM"},
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


def tasks_run(address: str) -> tuple[int, set[str]]:
    """The scheduler's transition counter and the names (prefixes) of the tasks it has run."""
    with distributed.Client(address, set_as_default=False) as client:
        return client.run_on_scheduler(
            lambda dask_scheduler: (dask_scheduler.transition_counter, set(dask_scheduler.task_prefixes))
        )


def outputs(result) -> dict[str, pl.DataFrame]:
    return {
        name: pl.read_parquet(result.run_dir / f"{name}.parquet") for name in ("base_forecasts", "reconciled_forecasts")
    }


def distance(a: pl.DataFrame, b: pl.DataFrame, column: str = "mean") -> float:
    """sum |a - b| / sum |a| over the rows of two tables in the same order (a relative L1 distance)."""
    return float((a[column] - b[column]).abs().sum() / a[column].abs().sum())


def train_parts(address: str, work: Callable[[], Any]) -> tuple[Any, list[str]]:
    """work()'s result and the workers that ran each of LightGBM's Dask training tasks (train_part) meanwhile."""
    with distributed.Client(address, set_as_default=False) as client, distributed.get_task_stream(client) as stream:
        result = work()
    return result, [task["worker"] for task in stream.data if "train_part" in task["key"]]


# LightGBM's data-parallel learner on 2 workers is not its single-machine learner (per-worker bins, the mean of the
# workers' starting scores, leaf sizes estimated from hessians: forecasting/models/dask_lightgbm.py). Measured on this
# slice: 0.13-0.16 relative L1 from the local forecasts; the bound fails a model far from the local one (SeasonalNaive's
# are 0.93 from the local LightGBM's).
DATA_PARALLEL_TOLERANCE = 0.25


def test_dask_cluster_gives_the_single_machine_forecasts(tmp_path, cluster, single_machine):
    engine = {"kind": "dask", "scheduler": cluster.scheduler_address}
    dask_job = slice_job(tmp_path / "dask", stores=("CA_1",), n_items=40, models=MODELS, engine=engine)
    before, _ = tasks_run(cluster.scheduler_address)
    local = single_machine
    dask, trainings = train_parts(cluster.scheduler_address, lambda: outputs(run_job(dask_job)))
    after, _ = tasks_run(cluster.scheduler_address)
    assert after > before, "nothing ran on the Dask cluster"
    # LightGBM trained on the cluster, one worker per training (the cross-validation's and the final model's).
    assert len(trainings) == 2, trainings
    for name, frame in local.items():
        assert frame.height == dask[name].height > 0 and frame.columns == dask[name].columns
    base_l, base_d = local["base_forecasts"], dask["base_forecasts"]
    lightgbm = pl.col("model") == "LightGBM"
    # LightGBM's forecasts and conformal intervals: the local numbers bit for bit.
    assert base_l.filter(lightgbm).height == 40 * dask_job.horizon
    assert_frame_equal(base_l.filter(lightgbm), base_d.filter(lightgbm), check_exact=True)
    # Fugue's output schema holds statsforecast's model columns as float32: equal to ~1e-7 relative, not bit for bit;
    # reconciliation mixes them with LightGBM's (its in-sample fits included: Base is LightGBM at SKU level).
    tolerance = {"check_exact": False, "rel_tol": 1e-5, "abs_tol": 1e-3}
    assert_frame_equal(base_l.filter(~lightgbm), base_d.filter(~lightgbm), **tolerance)
    reconciled_d = dask["reconciled_forecasts"]
    assert set(reconciled_d["level"]) == {"total", "region", "warehouse", "sku"}
    assert_coherent(reconciled_d)
    assert_frame_equal(local["reconciled_forecasts"], reconciled_d, **tolerance)


def test_a_fresh_two_worker_cluster_gives_the_local_lightgbm_exactly(tmp_path, cluster):
    """Aggregate and SKU level, on a second, fresh 2-worker cluster: forecasts, conformal intervals and in-sample fits
    equal the local run's bit for bit (so the first cluster's too), with row subsampling as well; LightGBM's
    data-parallel learner, on request, trains across both workers and stays near them."""
    job = slice_job(tmp_path, stores=("CA_1",), n_items=40, models=MODELS)
    loaded, hierarchy = load_hierarchy(job)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as fresh:
        dask_job = job.model_copy(update={"engine": EngineSpec(kind="dask", scheduler=fresh.scheduler_address)})
        for Y, aggregate in zip(split_levels(hierarchy), (True, False), strict=True):
            members = hierarchy.members.filter(pl.col("unique_id").is_in(Y["unique_id"].unique().implode()))
            exog = features.exogenous(members, loaded.prices, loaded.calendar, job, bottom=not aggregate)
            local = engines.lightgbm_forecast(Y, job, exog=exog, aggregate=aggregate)
            dask = engines.lightgbm_forecast(Y, dask_job, exog=exog, aggregate=aggregate)
            assert local.forecasts.height == Y["unique_id"].n_unique() * job.horizon
            assert_frame_equal(local.forecasts, dask.forecasts, check_exact=True)
            assert_frame_equal(local.fitted, dask.fitted, check_exact=True)
        # Bagging draws rows by position: the cluster's training rows come in the local order.
        spec = job.models.lightgbm.model_copy(update={"subsample": 0.8})
        bagged = job.model_copy(update={"models": job.models.model_copy(update={"lightgbm": spec})})
        bagged_local = engines.lightgbm_forecast(Y, bagged, exog=exog)
        bagged_dask = engines.lightgbm_forecast(Y, bagged.model_copy(update={"engine": dask_job.engine}), exog=exog)
        assert_frame_equal(bagged_local.forecasts, bagged_dask.forecasts, check_exact=True)
        close_clients()
    data_parallel = EngineSpec(kind="dask", scheduler=cluster.scheduler_address, lightgbm_training="data_parallel")
    parallel_job = job.model_copy(update={"engine": data_parallel})
    parallel, trainings = train_parts(
        cluster.scheduler_address, lambda: engines.lightgbm_forecast(Y, parallel_job, exog=exog)
    )
    close_clients()
    assert len(trainings) == 4 and len(set(trainings)) == 2, trainings  # 2 trainings, each on both workers
    assert_frame_equal(local.forecasts.select("unique_id", "ds"), parallel.forecasts.select("unique_id", "ds"))
    assert distance(local.forecasts, parallel.forecasts, "LightGBM") < DATA_PARALLEL_TOLERANCE
    ordered = pl.col("LightGBM-lo-95").le(pl.col("LightGBM")) & pl.col("LightGBM").le(pl.col("LightGBM-hi-95"))
    assert parallel.forecasts.select(ordered.all()).item()


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
