"""Prefect retries on a real read failure: the job's sales file is missing when the load task first runs.

Transient: the file is put in place while Prefect waits to retry the failed load (seen through the API as the
task run's AwaitingRetry state), and the run succeeds on a later attempt. Permanent: the file never comes; every
attempt fails, the run fails with the file named, and the last good outputs stay published."""

from __future__ import annotations

import contextvars
import shutil
import threading
import time

import pytest
from prefect import get_client
from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName, TaskRunFilterState, TaskRunFilterStateName
from support import M5_MONTHLY, slice_job

from flows.nightly import RETRY_IO, nightly_forecast
from forecasting.outputs.runs import read_manifest, run_dir


def load_runs(state_name: str | None = None) -> list:
    state = TaskRunFilterState(name=TaskRunFilterStateName(any_=[state_name])) if state_name else None
    with get_client(sync_client=True) as client:
        return client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="load"), state=state))


def put_file_when_load_awaits_retry(source, target, done: threading.Event) -> None:
    deadline = time.monotonic() + 120
    while not load_runs("AwaitingRetry") and time.monotonic() < deadline:
        time.sleep(0.2)
    shutil.copyfile(source, target)
    done.set()


@pytest.fixture(scope="module")
def sliced(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retries")
    job = slice_job(tmp, stores=("CA_1",), n_items=10)
    data = job.model_dump()
    data["source"]["sales"]["path"] = str(tmp / "arrives-late.parquet")
    return type(job).model_validate(data)


def test_a_transient_read_failure_is_retried_and_the_run_succeeds(harness, sliced):
    assert not sliced.source.sales.resolved_path().exists()
    done = threading.Event()
    context = contextvars.copy_context()  # the harness's API settings, for the helper thread's client
    helper = threading.Thread(
        target=context.run,
        args=(put_file_when_load_awaits_retry, M5_MONTHLY, sliced.source.sales.resolved_path(), done),
    )
    helper.start()
    state = nightly_forecast(job=sliced, return_state=True)
    helper.join()
    assert done.is_set()
    assert state.is_completed(), state.message
    [load] = load_runs()
    assert 2 <= load.run_count <= RETRY_IO["retries"] + 1  # failed first, then succeeded on a retry
    assert read_manifest(run_dir(sliced))["summary"]["series_per_level"]["sku"] == 10


def test_a_permanent_read_failure_fails_the_run_and_keeps_the_last_good_outputs(harness, sliced):
    before = run_dir(sliced)  # published by the test above
    manifest = read_manifest(before)
    sliced.source.sales.resolved_path().unlink()
    state = nightly_forecast(job=sliced, return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="arrives-late.parquet: file not found"):
        state.result()
    failed = [r for r in load_runs() if r.state.is_failed()]
    assert failed and failed[0].run_count == RETRY_IO["retries"] + 1
    assert run_dir(sliced) == before and read_manifest(before) == manifest
