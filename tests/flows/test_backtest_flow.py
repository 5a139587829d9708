"""The scheduled backtest flow (flows/backtest.py) against Prefect's ephemeral API, on the real daily M5 job with two
cheap models, and the nightly run that then reads it; and its deployment in prefect.yaml."""

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.schedules import CronSchedule
from support import backtested_daily_job, task_runs_of

from flows.backtest import scheduled_backtest
from flows.nightly import nightly_forecast
from forecasting.job.common import project_root
from forecasting.job.loading import load_job
from forecasting.outputs.runs import read_manifest, run_dir

MODELS = ["SeasonalNaive", "Naive"]  # backtested_daily_job's: fast, since the flow is under test, not the models


@pytest.fixture(scope="module")
def backtest_then_nightly(harness, tmp_path_factory):
    job = backtested_daily_job(tmp_path_factory.mktemp("backtest-flow"))
    backtest = scheduled_backtest(job=job, return_state=True)
    nightly = nightly_forecast(job=job, return_state=True)
    return job, backtest, nightly


def test_the_flow_publishes_the_backtest_the_job_file_asks_for(backtest_then_nightly):
    job, state, _ = backtest_then_nightly
    assert state.is_completed(), state.message
    result = state.result()
    folder = Path(result["folder"])
    assert result["job"] == job.name and folder.resolve() == run_dir(job, None, subdir="backtests")
    manifest = read_manifest(folder)
    assert manifest["windows"] == 2 and manifest["step"] == job.horizon == 28
    last_day = date(2016, 5, 22)  # the last day of the daily M5 history
    expected = [last_day - timedelta(days=28 * k) for k in (2, 1)]
    assert result["cutoffs"] == manifest["cutoffs"] == [d.isoformat() for d in expected]
    base = pl.read_parquet(folder / "backtest_base.parquet")
    assert set(base["model"].unique()) == {*MODELS, "Mean", "Weighted", "Base"}
    assert base.group_by("unique_id", "cutoff", "model").len()["len"].unique().to_list() == [job.horizon]
    assert base["unique_id"].n_unique() == 14 and base["y"].is_not_null().all()
    [task_run] = task_runs_of(state.state_details.flow_run_id, expected=1)
    assert task_run.name.startswith("backtest") and task_run.state.type == StateType.COMPLETED


def test_the_nightly_run_then_chooses_calibrates_and_staffs_from_it(backtest_then_nightly):
    job, backtest, nightly = backtest_then_nightly
    assert nightly.is_completed(), nightly.message
    folder = Path(backtest.result()["folder"]).resolve()  # the run folder behind the as-of link
    summary = nightly.result()["summary"]
    assert summary["model_choice"] == f"backtest {folder.name} (2 windows)"
    assert summary["interval_calibration"].startswith(f"out-of-sample errors of backtest {folder.name} (56 periods")
    assert summary["staffing_demand"] == f"errors of backtest {folder.name}"
    plan = read_manifest(folder)["plan"]
    assert set(plan["base"]) == set(job.hierarchy.names)
    chosen = {row["level"]: row["model"] for row in summary["base_model_per_level"]}
    assert chosen == plan["base"]


def test_the_run_parameters_override_the_job_file(harness, tmp_path):
    job = backtested_daily_job(tmp_path)
    result = scheduled_backtest(job=job, as_of=date(2016, 5, 1), windows=3, step=7)
    assert (result["as_of"], result["windows"], result["step"]) == ("2016-05-01", 3, 7)
    assert result["cutoffs"] == ["2016-03-20", "2016-03-27", "2016-04-03"]  # 28 days before 2016-05-01, 7 apart
    assert read_manifest(Path(result["folder"]))["cutoffs"] == result["cutoffs"]


def test_a_bad_argument_fails_once_without_retries(harness, tmp_path):
    job = backtested_daily_job(tmp_path)
    state = scheduled_backtest(job=job, windows=0, return_state=True)
    assert state.is_failed() and "backtest windows must be at least 1" in state.message
    [task_run] = task_runs_of(state.state_details.flow_run_id, expected=1)
    assert task_run.state.type == StateType.FAILED and task_run.run_count == 1  # retries are for I/O errors only


@pytest.mark.parametrize("job_name", ["m5-daily-warehouse", "m5-monthly"])
def test_prefect_yaml_refreshes_the_backtest_before_the_nightly_run_that_reads_it(job_name):
    """Both bundled M5 jobs read their latest backtest at night (the daily one its models, intervals and staffing
    bands, the monthly one its reconciled intervals), so each has a weekly backtest deployment before its run."""
    root = project_root()
    job = load_job(job_name)
    assert job.reconciliation.calibration == "backtest"
    config = yaml.safe_load((root / "prefect.yaml").read_text())
    by_name = {d["name"]: d for d in config["deployments"]}
    backtest, nightly = by_name[f"{job_name}-backtest"], by_name[f"{job_name}-nightly"]
    path, _, func = backtest["entrypoint"].partition(":")
    assert (root / path).is_file() and func == scheduled_backtest.fn.__name__
    assert backtest["parameters"] == {"job": nightly["parameters"]["job"]} == {"job": job_name}
    assert nightly["parameters"]["lock_wait_seconds"] > 0  # a backtest publishing under the lock delays it only
    assert backtest["work_pool"] == nightly["work_pool"]
    assert backtest["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    [weekly], [daily] = backtest["schedules"], nightly["schedules"]
    assert weekly["timezone"] == daily["timezone"] == "Europe/Berlin"
    minute, hour, *_, weekday = weekly["cron"].split()
    nightly_minute, nightly_hour, *_ = daily["cron"].split()
    assert weekday == "0" and (int(hour), int(minute)) < (int(nightly_hour), int(nightly_minute))
    CronSchedule(cron=weekly["cron"], timezone=weekly["timezone"])  # valid for Prefect
