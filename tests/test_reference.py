"""The bundled m5-monthly job publishes what `python -m forecasting.reference m5-monthly` chooses."""

from __future__ import annotations

from datetime import date

import pytest

from forecasting import reconcile as rec
from forecasting.backtest import backtest_job
from forecasting.config import load_job
from forecasting.reference import with_models


@pytest.mark.slow
def test_m5_monthly_job_file_holds_the_reference_choice(tmp_path):
    """The reference's selection (4 windows of 3 months ending 2015-12, each reconciling the Base chosen in them):
    the job file's primary models and published reconciliation must be its choice, so the nightly run publishes
    what the benchmark scored (532 s at load average 3.5-5.5 on 2 cores, peak RSS 4.8 GB)."""
    job = load_job("m5-monthly", output_root=str(tmp_path))
    _, selection = backtest_job(with_models(job), date(2015, 12, 31), 4, 3)
    assert selection.base_models == job.models.primary
    assert rec.least_worst_method(selection.metrics, job.models.choice_metric) == rec.publish_label(job)
    assert not job.models.choose_from_backtest and not job.reconciliation.choose_from_backtest
