"""Shared fixtures: real M5 data, sliced to stay fast, one full run of the bundled job, and Prefect's ephemeral API."""

from __future__ import annotations

import warnings

import pytest
from support import slice_job

from forecasting.job.loading import load_job


@pytest.fixture(autouse=True)
def _quiet_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _quiet_run(job):
    """(job, run_job(job)) with the libraries' warnings silenced."""
    from forecasting.pipeline import run_job

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return job, run_job(job)


@pytest.fixture(scope="module")
def harness():
    """A temporary Prefect server for the flow tests of one module."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def slice_run(tmp_path_factory):
    return _quiet_run(slice_job(tmp_path_factory.mktemp("slice")))


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    """The bundled job on all 30,490 real M5 SKU series (about 90 s on 2 cores)."""
    tmp = tmp_path_factory.mktemp("full")
    return _quiet_run(load_job("m5-monthly").model_copy(update={"output_root": str(tmp / "outputs")}))


@pytest.fixture(scope="session")
def planner_runs(tmp_path_factory):
    """The slice job published twice (as of 2016-02-29 and as of the newest data) and backtested over 2 windows:
    what the report, the recipes and the run comparison read (tests/outputs/test_report.py, test_recipes.py)."""
    from datetime import date

    from forecasting.pipeline import backtest_job, run_job

    job = slice_job(tmp_path_factory.mktemp("planner"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = run_job(job, date(2016, 2, 29))
        after = run_job(job)
        backtest_job(job, None, 2)
    return job, before, after


@pytest.fixture(scope="session")
def clean_rows():
    """Three real CA_1 SKUs' monthly rows: the clean input the data-quality tests (test_quality, test_quality_gate)
    corrupt one way at a time."""
    import duckdb
    from support import M5_MONTHLY, first_items

    return duckdb.execute(
        "SELECT * FROM read_parquet(?) WHERE store_id = 'CA_1' AND list_contains(?, item_id) ORDER BY id, month",
        [str(M5_MONTHLY), first_items("CA_1", 3)],
    ).pl()
