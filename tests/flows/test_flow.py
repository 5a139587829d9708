"""The Prefect flow on a real slice of M5 (store CA_1, its first 50 items), run against a temporary Prefect server,
and the deployment definition in prefect.yaml."""

from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml
from prefect.client.schemas.objects import ConcurrencyLimitStrategy, StateType
from prefect.client.schemas.schedules import CronSchedule
from support import task_runs_of

from flows.nightly import nightly_forecast, resolve_job
from forecasting.job.common import project_root
from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec

ROOT = project_root()
STAGES = {"load", "validate", "aggregate", "base_forecasts", "reconcile", "staff", "write", "report"}
N_ITEMS = 50


def first_items(store: str, n: int) -> list[str]:
    rows = duckdb.execute(
        "SELECT DISTINCT item_id FROM read_parquet(?) WHERE store_id = ? ORDER BY item_id LIMIT ?",
        [str(ROOT / "data" / "m5" / "m5_monthly_sales.parquet"), store, n],
    ).fetchall()
    return [r[0] for r in rows]


def slice_spec(tmp: Path, **update) -> JobSpec:
    """The bundled job on CA_1's first items. One worker: on so small a slice, LightGBM's OpenMP threads only add
    barrier waits, and when another heavy process shares the cores those waits made this run take minutes."""
    data = {"warehouse_filter": ["CA_1"], "sku_filter": first_items("CA_1", N_ITEMS), "output_root": str(tmp)}
    return load_job("m5-monthly").model_copy(update=data | {"n_jobs": 1} | update)


@pytest.fixture(scope="module")
def slice_flow(harness, tmp_path_factory):
    spec = slice_spec(tmp_path_factory.mktemp("flow"))
    state = nightly_forecast(job=spec, return_state=True)
    return spec, state


def test_flow_completes_and_publishes_a_run(slice_flow):
    spec, state = slice_flow
    assert state.is_completed(), state.message
    result = state.result()
    assert result["job"] == "m5-monthly"
    assert result["as_of"] == "2016-04-24"  # the last day the M5 monthly file covers
    run_dir = Path(result["run_dir"])
    assert run_dir.parent == spec.output_dir()
    for name in ("base_forecasts.parquet", "reconciled_forecasts.parquet", "staffing.parquet", "manifest.json"):
        assert (run_dir / name).is_file(), name
    assert result["report"] == str(run_dir / "report.html") and (run_dir / "report.html").stat().st_size > 1e6
    assert result["summary"]["series_per_level"] == {"total": 1, "region": 1, "warehouse": 1, "sku": N_ITEMS}


def test_every_sku_has_every_horizon_step(slice_flow):
    spec, state = slice_flow
    run_dir = Path(state.result()["run_dir"])
    reconciled = pl.read_parquet(run_dir / "reconciled_forecasts.parquet")
    sku = reconciled.filter((pl.col("level") == "sku") & pl.col("published"))
    steps = sku.group_by("sku").agg(pl.col("ds").n_unique().alias("steps"), pl.col("mean").is_null().sum())
    assert set(steps["sku"]) == set(spec.sku_filter)
    assert steps["steps"].to_list() == [spec.horizon] * N_ITEMS
    assert steps["mean"].sum() == 0
    staffing = pl.read_parquet(run_dir / "staffing.parquet")
    assert staffing["ds"].n_unique() == spec.horizon


def test_every_task_run_completed(slice_flow):
    _, state = slice_flow
    runs = task_runs_of(state.state_details.flow_run_id, expected=len(STAGES))
    assert {r.name.rsplit("-", 1)[0] for r in runs} == STAGES
    assert len(runs) == len(STAGES)
    assert all(r.state.type == StateType.COMPLETED for r in runs), [(r.name, r.state.type) for r in runs]


def test_a_data_quality_failure_is_not_retried(harness, tmp_path):
    state = nightly_forecast(job=slice_spec(tmp_path, warehouse_filter=["NOPE"]), return_state=True)
    assert state.is_failed()
    runs = task_runs_of(state.state_details.flow_run_id, expected=1)
    assert [r.name.rsplit("-", 1)[0] for r in runs] == ["load"]
    assert runs[0].run_count == 1  # retries are for I/O errors, not for bad data
    assert not (tmp_path / "m5-monthly").exists()


def test_job_parameter_accepts_a_name_a_dict_or_a_spec():
    spec = load_job("m5-monthly")
    assert resolve_job("m5-monthly") == spec
    assert resolve_job(spec.model_dump(mode="json")) == spec
    assert resolve_job(spec) is spec


def test_prefect_yaml_defines_the_nightly_deployment():
    text = (ROOT / "prefect.yaml").read_text()
    config = yaml.safe_load(text)
    [deployment] = [d for d in config["deployments"] if d["name"] == "m5-monthly-nightly"]
    path, _, func = deployment["entrypoint"].partition(":")
    assert (ROOT / path).is_file() and func == "nightly_forecast"
    assert deployment["parameters"] == {"job": "m5-monthly", "lock_wait_seconds": 600}
    [schedule] = deployment["schedules"]
    assert schedule["cron"] == "30 2 * * *" and schedule["timezone"] == "Europe/Berlin"
    CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # a valid cron and IANA zone for Prefect
    assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    assert ConcurrencyLimitStrategy(deployment["concurrency_limit"]["collision_strategy"])
    pool = deployment["work_pool"]["name"]
    # prefect.yaml names the pool; its type is set when it is created, with the command the file documents
    assert pool == "forecasting-process" and f"prefect work-pool create {pool} --type process" in text
    # the pull step moves a flow run into the deployed clone, whose path a build step records at deploy time
    [pull] = deployment.get("pull", config["pull"])
    directory = pull["prefect.deployments.steps.set_working_directory"]["directory"]
    [build] = deployment.get("build", config["build"])
    step = build["prefect.deployments.steps.run_shell_script"]
    assert step["script"] == "pwd" and directory == f"{{{{ {step['id']}.stdout }}}}"
