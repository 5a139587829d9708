"""The deployment as operated: a real `prefect server` on loopback, the process work pool, a worker, `prefect deploy`
from prefect.yaml, runs triggered through the API and watched to the end; and `flows.serve` on a single box.

The deployed runs use the real nightly deployment with one parameter changed at trigger time: the job, the bundled
m5-monthly spec sliced to one store and 40 items and writing to a temporary folder (a full spec is a valid value
of the flow's `job` parameter). The weekly backtest deployment runs the same way on the daily job."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest
from live_prefect import LiveServer
from support import backtested_daily_job, slice_job

from forecasting.job.common import project_root
from forecasting.job.schema import JobSpec
from forecasting.outputs.locks import HOLD_ENV
from forecasting.outputs.runs import read_manifest, run_dir
from forecasting.outputs.views import open_views

DEPLOYMENT = "nightly-forecast/m5-monthly-nightly"
N_ITEMS = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("prefect-home"))
    try:
        live.start()
        live.cli("work-pool", "create", "forecasting-process", "--type", "process")
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def deployed(server):
    out = server.cli("deploy", "--name", "m5-monthly-nightly")
    assert "m5-monthly-nightly" in out.stdout
    server.spawn("worker", "prefect", "worker", "start", "--pool", "forecasting-process")
    return server


def slice_params(tmp: Path) -> tuple[JobSpec, dict]:
    job = slice_job(tmp, stores=("CA_1",), n_items=N_ITEMS)
    return job, {"job": job.model_dump(mode="json")}


def assert_published(job: JobSpec) -> None:
    folder = run_dir(job)
    series = read_manifest(folder)["summary"]["series_per_level"]
    assert series == {"total": 1, "region": 1, "warehouse": 1, "sku": N_ITEMS}
    con = open_views(job)
    sku = "SELECT count(DISTINCT sku), count(DISTINCT ds) FROM forecasts WHERE level = 'sku'"
    skus, steps = con.sql(sku).fetchone()
    assert (skus, steps) == (N_ITEMS, job.horizon)
    assert con.sql("SELECT count(*) FROM staffing").fetchone()[0] > 0


def flow_run_state(server: LiveServer, flow_run_id: str) -> str:
    with urllib.request.urlopen(f"{server.url}/flow_runs/{flow_run_id}", timeout=10) as response:
        return json.load(response)["state"]["type"]


def wait_state(server: LiveServer, flow_run_id: str, wanted: set[str], timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while (state := flow_run_state(server, flow_run_id)) not in wanted:
        assert time.monotonic() < deadline, f"flow run {flow_run_id} still {state}: {server.log('worker')[-3000:]}"
        time.sleep(0.5)
    return state


def test_deploy_from_prefect_yaml_and_run_on_a_worker(deployed, tmp_path):
    info = deployed.cli("deployment", "inspect", DEPLOYMENT).stdout
    assert "forecasting-process" in info and "CANCEL_NEW" in info
    job, params = slice_params(tmp_path)
    flow_run_id, state = deployed.run_deployment(DEPLOYMENT, params)
    assert state == "Completed", deployed.log("worker")[-5000:]
    assert_published(job)
    logs = deployed.flow_run_logs(flow_run_id)
    for stage in ("load", "validate", "aggregate", "base_forecasts", "reconcile", "staff", "write"):
        line = rf"{stage}: [\d,-]+ rows, [\d,-]+ series \| .+ \| [\d.]+ s \| peak RSS [\d.]+ MB"
        assert re.search(line, logs), (stage, logs)
    assert re.search(r"aggregate: [\d,]+ rows, 43 series", logs), logs


def test_the_weekly_backtest_deployment_runs_on_the_worker(deployed, tmp_path):
    """prefect.yaml's backtest deployment, on the daily job with two fast models and the job file's 2 windows."""
    name = "backtest/m5-daily-warehouse-backtest"
    assert "m5-daily-warehouse-backtest" in deployed.cli("deploy", "--name", "m5-daily-warehouse-backtest").stdout
    job = backtested_daily_job(tmp_path)
    flow_run_id, state = deployed.run_deployment(name, {"job": job.model_dump(mode="json")})
    assert state == "Completed", deployed.log("worker")[-5000:]
    manifest = read_manifest(run_dir(job, None, subdir="backtests"))
    assert manifest["windows"] == 2 and manifest["cutoffs"] == ["2016-03-27", "2016-04-24"]
    assert "window 2/2 (cutoff 2016-04-24)" in deployed.flow_run_logs(flow_run_id)


def test_the_deployment_concurrency_limit_cancels_a_second_run(deployed, tmp_path):
    job, params = slice_params(tmp_path)
    flag = tmp_path / "first-run-holds"
    env = {"FORECASTING_HOME": str(project_root()), HOLD_ENV: f"locked:{flag}"}
    first = deployed.cli(
        "deployment", "run", DEPLOYMENT, "--params", json.dumps(params), "--job-variable", f"env={json.dumps(env)}"
    ).stdout
    first_id = first.split("UUID: ", 1)[1].split()[0]
    deadline = time.monotonic() + 300
    while not flag.exists():  # the first run is inside the flow, holding the job's output lock
        assert time.monotonic() < deadline, deployed.log("worker")[-3000:]
        assert flow_run_state(deployed, first_id) not in {"FAILED", "CRASHED", "CANCELLED"}
        time.sleep(0.5)
    second = deployed.cli("deployment", "run", DEPLOYMENT, "--params", json.dumps(params)).stdout
    second_id = second.split("UUID: ", 1)[1].split()[0]
    assert wait_state(deployed, second_id, {"CANCELLED", "COMPLETED", "FAILED", "CRASHED"}) == "CANCELLED"
    flag.unlink()
    assert wait_state(deployed, first_id, {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}) == "COMPLETED"
    assert_published(job)
    assert len(list((job.output_dir() / ".runs").iterdir())) == 1


def test_serve_on_a_single_box(server, tmp_path):
    server.spawn("serve", "python", "-m", "flows.serve", "--name", "serve-test", "--no-schedule")
    server.wait_for_deployment("nightly-forecast/serve-test")
    job, params = slice_params(tmp_path)
    _, state = server.run_deployment("nightly-forecast/serve-test", params)
    assert state == "Completed", server.log("serve")[-5000:]
    assert_published(job)
