"""Shared fixtures: real M5 data, sliced to stay fast, and one full run of the bundled job."""

from __future__ import annotations

import warnings

import pytest
from support import slice_job

from forecasting.config import load_job


@pytest.fixture(autouse=True)
def _quiet_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="session")
def slice_run(tmp_path_factory):
    from forecasting.pipeline import run_job

    tmp = tmp_path_factory.mktemp("slice")
    job = slice_job(tmp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_job(job)
    return job, result


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    """The bundled job on all 30,490 real M5 SKU series (about 90 s on 2 cores)."""
    from forecasting.pipeline import run_job

    tmp = tmp_path_factory.mktemp("full")
    job = load_job("m5-monthly").model_copy(update={"output_root": str(tmp / "outputs")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_job(job)
    return job, result
