"""Headcount per week for the weeks beyond the day horizon, from the published week grain of a job with time grains
(docs/time-grains.md): the same labour standards and plan as the days (forecasting.staffing.plans), one period a
week, demand drawn from the week's reconciled quantiles (the backtest's errors are daily ones)."""

from __future__ import annotations

import polars as pl

from forecasting.job.schema import JobSpec
from forecasting.staffing.plans import PlanSettings, empty_plan, job_standards, staffing_plan

WEEK = "week"


def weekly_plan(grain_rows: pl.DataFrame, job: JobSpec) -> pl.DataFrame:
    """grain_rows: the published grain table (grain, level, region, warehouse, ds, mean, lo/hi). One row per
    warehouse x process x week x quantile for the weeks starting after the day horizon, with grain = 'week'."""
    if job.staffing is None or job.grains is None or WEEK not in job.grains.names():
        return empty_plan()
    rows = grain_rows.filter((pl.col("grain") == WEEK) & (pl.col("level") == "warehouse"))
    days = grain_rows.filter(pl.col("grain") == job.grains.base)
    if rows.height == 0 or days.height == 0:
        return empty_plan()
    rows = rows.filter(pl.col("ds") > days["ds"].max())
    standards = job_standards(job, rows["warehouse"].unique().to_list())
    settings = PlanSettings(WEEK, tuple(job.levels), job.staffing.samples, job.seed)
    return staffing_plan(rows, standards, settings, None).with_columns(pl.lit(WEEK).alias("grain"))


def with_weeks(day_plan: pl.DataFrame, grain_rows: pl.DataFrame, job: JobSpec) -> pl.DataFrame:
    """The day plan (grain = the base grain) and the weekly headcount beyond it in one staffing table."""
    assert job.grains is not None
    day_plan = day_plan.with_columns(pl.lit(job.grains.base).alias("grain"))
    weeks = weekly_plan(grain_rows, job)
    return pl.concat([day_plan, weeks], how="diagonal_relaxed") if weeks.height else day_plan
