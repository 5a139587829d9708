"""Contract tests: every staffing rule of the catalogue (forecasting.job.catalogue.STAFFING_RULES) draws demand for
every row of a real published warehouse forecast, non-negative and finite, the same draws for the same seed, and a
plan from those draws has ordered bands; one warehouse and one period is enough."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from forecasting.job.catalogue import STAFFING_RULES
from forecasting.outputs.runs import usable_backtest
from forecasting.staffing import rules
from forecasting.staffing.plans import (
    PlanSettings,
    backtest_log_errors,
    job_standards,
    published_warehouse,
    staffing_plan,
)

SAMPLES = 500


@pytest.fixture(scope="module")
def published(planner_runs):
    """The slice job's newest published warehouse forecast and the errors of its published backtest."""
    job, _, after = planner_runs
    forecast = published_warehouse(pl.read_parquet(after.run_dir / "reconciled_forecasts.parquet"))
    known = forecast["ds"].min()
    errors = backtest_log_errors(job, known, usable_backtest(job, known))
    assert errors is not None and errors.height > 0
    return job, forecast, errors


def draws(name, forecast, job, errors, seed=0):
    return rules.rule(name)(forecast, job.levels, SAMPLES, np.random.default_rng(seed), errors)


@pytest.mark.parametrize("name", sorted(STAFFING_RULES))
def test_rule_contract(published, name):
    job, forecast, errors = published
    drawn = draws(name, forecast, job, errors)
    assert drawn.shape == (forecast.height, SAMPLES)
    assert np.isfinite(drawn).all() and (drawn >= 0).all()
    assert np.array_equal(drawn, draws(name, forecast, job, errors))  # the same seed, the same draws
    assert not np.array_equal(drawn, draws(name, forecast, job, errors, seed=1))
    # Draws centre on the forecast: each row's median draw within a factor of 2 of its mean.
    ratio = np.median(drawn, axis=1) / forecast["mean"].to_numpy()
    assert ((ratio > 0.5) & (ratio < 2.0)).all(), ratio


@pytest.mark.parametrize("name", sorted(STAFFING_RULES))
def test_plan_bands_from_each_rule_are_ordered_down_to_one_warehouse_and_period(published, name):
    job, forecast, errors = published
    one = forecast.sort("warehouse", "ds").head(1)
    standards = job_standards(job, one["warehouse"].to_list())
    settings = PlanSettings.for_job(job)
    plan = staffing_plan(one, standards, settings, errors if name == "backtest" else None)
    assert plan.height == standards.height * 3  # every process, p50 / p80 / p95
    bands = plan.pivot(on="quantile", index=["warehouse", "process", "ds"], values="labour_hours")
    assert ((bands["p50"] <= bands["p80"]) & (bands["p80"] <= bands["p95"])).all()
