"""Staffing plans: reconciled warehouse demand -> labour hours, FTE and headcount per warehouse x process x period.

Per process:  hours = volume x share / units_per_hour x (1 + PFD)
              fte = hours / (productive hours per shift x days one FTE works in the period) / (1 - shrinkage)
              headcount = ceil(fte), never below the FTE it takes to put `min_crew` on every shift the site runs
              crew_per_shift = ceil(hours / (shifts x operating days in the period x productive hours per shift)
                                    / (1 - shrinkage)), never below `min_crew`

Bands (p50 / p80 / p95) come from Monte Carlo draws of demand x productivity: demand is drawn from the *reconciled
quantiles* of the published warehouse forecast (mean and the lo/hi bounds of every interval level, joined by linear
interpolation, normal tails beyond the widest interval); realised productivity is drawn from a log-normal with mean 1
and the standards' `productivity_cv` (calibrated on observed labour records, `forecasting calibrate-labour`). The
hours quantile then covers both sources of uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import norm

from forecasting.job.context import FoundBacktest
from forecasting.job.schema import POLARS_FREQ, JobSpec
from forecasting.job.staffing import Scenario
from forecasting.staffing.rules import rule
from forecasting.staffing.standards import load_standards, standards_for

QUANTILES = {"p50": 0.5, "p80": 0.8, "p95": 0.95}
SCHEMA = {
    "region": pl.String,
    "warehouse": pl.String,
    "process": pl.String,
    "ds": pl.Date,
    "quantile": pl.String,
    "volume": pl.Float64,
    "labour_hours": pl.Float64,
    "fte": pl.Float64,
    "headcount": pl.Int64,
    "shifts_per_day": pl.Int64,
    "crew_per_shift": pl.Int64,
}
EPSILON = 1e-9  # an FTE that is whole up to float noise is not rounded up


def empty_plan() -> pl.DataFrame:
    """The staffing table of a job without labour standards: no rows, same columns."""
    return pl.DataFrame(schema=SCHEMA)


def productivity_factors(cv: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Log-normal realised / standard productivity with mean 1 and coefficient of variation `cv` per row."""
    sigma = np.sqrt(np.log1p(cv**2))[:, None]
    return np.exp(sigma * normal - sigma**2 / 2)


def apply_scenario(forecast: pl.DataFrame, scenario: Scenario | None) -> pl.DataFrame:
    """Scale the demand distribution (mean and every bound) by 1 + uplift where the scenario applies."""
    if scenario is None:
        return forecast
    where = pl.lit(True)
    if scenario.start:
        where &= pl.col("ds") >= scenario.start
    if scenario.end:
        where &= pl.col("ds") <= scenario.end
    if scenario.warehouses:
        where &= pl.col("warehouse").is_in(scenario.warehouses)
    scaled = [c for c in forecast.columns if c == "mean" or c.startswith(("lo_", "hi_"))]
    factor = pl.when(where).then(1.0 + scenario.uplift).otherwise(1.0)
    return forecast.with_columns(pl.col(c) * factor for c in scaled)


def period_days(freq: str) -> pl.Expr:
    """Calendar days in the period starting at ds."""
    return (pl.col("ds").dt.offset_by(POLARS_FREQ[freq]) - pl.col("ds")).dt.total_days().cast(pl.Float64)


@dataclass(frozen=True)
class PlanSettings:
    """What every plan needs beside the forecast and the standards: the period length, the reconciled interval
    levels, the Monte Carlo draws and their seed."""

    freq: str
    levels: tuple[int, ...]
    samples: int = 4000
    seed: int = 0

    @classmethod
    def for_job(cls, job: JobSpec) -> PlanSettings:
        samples = job.staffing.samples if job.staffing else cls.samples
        return cls(job.freq, tuple(job.levels), samples, job.seed)


def staffing_plan(
    warehouse_forecast: pl.DataFrame,
    standards: pl.DataFrame,
    settings: PlanSettings,
    errors: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """warehouse_forecast: region, warehouse, ds, mean, lo_/hi_<level> (the published reconciliation);
    standards: one row per warehouse x process (`labour.standards_for`). One row per warehouse x process x period
    x quantile. The same inputs and seed give the same plan.

    With `errors` (warehouse, log_error = log(actual / forecast mean) of earlier backtest periods) demand is drawn as
    mean x exp(error) from the warehouse's own errors (all warehouses' when it has fewer than MIN_OWN_ERRORS)
    instead of from the reconciled quantiles: bands as wide and as biased as the forecast has really been."""
    if warehouse_forecast.height == 0:
        return empty_plan()
    forecast = warehouse_forecast.sort("warehouse", "ds")
    rng = np.random.default_rng(settings.seed)
    draws = rule("backtest" if errors is not None and errors.height else "reconciled")
    demand = draws(forecast, list(settings.levels), settings.samples, rng, errors)
    demand_q = {name: np.quantile(demand, q, axis=1) for name, q in QUANTILES.items()}
    rows = forecast.select("region", "warehouse", "ds").with_row_index("_row")
    pairs = rows.join(standards, on="warehouse", how="inner").sort("process", "_row")
    frames = []
    for _process, part in pairs.group_by("process", maintain_order=True):
        index = part["_row"].to_numpy()
        shocks = rng.standard_normal(size=(len(index), settings.samples))
        factor = productivity_factors(part["productivity_cv"].to_numpy(), shocks)
        per_unit = (1.0 + part["pfd_allowance"].to_numpy()) / part["units_per_hour"].to_numpy()
        hours = demand[index] * part["volume_share"].to_numpy()[:, None] * per_unit[:, None] / factor
        for name, q in QUANTILES.items():
            frames.append(
                part.with_columns(
                    pl.lit(name).alias("quantile"),
                    pl.Series("volume", demand_q[name][index] * part["volume_share"].to_numpy()),
                    pl.Series("labour_hours", np.quantile(hours, q, axis=1)),
                )
            )
    return _headcount(pl.concat(frames), settings.freq)


def _headcount(plan: pl.DataFrame, freq: str) -> pl.DataFrame:
    days = period_days(freq)
    keep = 1.0 - pl.col("shrinkage")
    fte_hours = pl.col("productive_hours_per_shift") * days * pl.col("working_days_per_week") / 7.0
    operating_shifts = pl.col("shifts_per_day") * days * pl.col("operating_days_per_week") / 7.0
    min_fte = pl.col("min_crew") * operating_shifts / (days * pl.col("working_days_per_week") / 7.0) / keep
    fte = pl.col("labour_hours") / fte_hours / keep
    crew = pl.col("labour_hours") / operating_shifts / pl.col("productive_hours_per_shift") / keep
    return (
        plan.with_columns(fte.alias("fte"), min_fte.alias("_min_fte"), crew.alias("_crew"))
        .with_columns(
            pl.max_horizontal((pl.col("fte") - EPSILON).ceil(), (pl.col("_min_fte") - EPSILON).ceil())
            .cast(pl.Int64)
            .alias("headcount"),
            pl.max_horizontal((pl.col("_crew") - EPSILON).ceil(), pl.col("min_crew"))
            .cast(pl.Int64)
            .alias("crew_per_shift"),
        )
        .select(list(SCHEMA))
        .sort("warehouse", "process", "ds", "quantile")
    )


def plan_shortfall(
    backtest_forecast: pl.DataFrame,
    standards: pl.DataFrame,
    settings: PlanSettings,
    uncertainty: str = "reconciled",
) -> pl.DataFrame:
    """How often each quantile's plan would have been short of the labour the actual volume needed.

    backtest_forecast: cutoff, region, warehouse, ds, y (actual volume), mean, lo_/hi_<level> of the published
    reconciliation per backtest window. The labour the actual volume needed is y x share / units_per_hour x (1 + PFD)
    / f with f the (unobserved) realised productivity, so each row's shortfall is a probability over f:
    P(f < needed-at-standard / planned) under the same log-normal the plan used. Returned per cutoff x warehouse x
    process x period x quantile: `short_hours` (plan = the quantile's labour hours), `short_headcount` (plan = the
    hours its rounded headcount delivers) and `short_demand` (y above the demand quantile, productivity ignored).

    With uncertainty="backtest", each window's demand is drawn from the errors of the earlier windows only (periods
    that ended by its cutoff), as the nightly plan would have been with `demand_uncertainty: backtest`; the first
    window has no earlier errors and is left out."""
    frames = []
    for (cutoff,), window in backtest_forecast.sort("cutoff").group_by("cutoff", maintain_order=True):
        errors = None
        if uncertainty == "backtest":
            errors = log_errors(backtest_forecast, before=cutoff)
            if errors.height == 0:
                continue
        plan = staffing_plan(window.drop("cutoff", "y"), standards, settings, errors)
        frames.append(plan.with_columns(pl.lit(cutoff).alias("cutoff")))
    plans = pl.concat(frames)
    actual = backtest_forecast.select("cutoff", "warehouse", "ds", "y")
    joined = plans.join(actual, on=["cutoff", "warehouse", "ds"]).join(
        standards, on=["warehouse", "process"], how="left"
    )
    days = period_days(settings.freq)
    needed = pl.col("y") * pl.col("volume_share") * (1.0 + pl.col("pfd_allowance")) / pl.col("units_per_hour")
    capacity = (
        pl.col("headcount")
        * pl.col("productive_hours_per_shift")
        * days
        * pl.col("working_days_per_week")
        / 7.0
        * (1.0 - pl.col("shrinkage"))
    )
    out = joined.with_columns(
        needed.alias("needed_hours_at_standard"), capacity.alias("headcount_hours"), days.alias("_days")
    )
    sigma = np.sqrt(np.log1p(out["productivity_cv"].to_numpy() ** 2))
    need = out["needed_hours_at_standard"].to_numpy()
    return out.with_columns(
        pl.Series("short_hours", _prob_short(need, out["labour_hours"].to_numpy(), sigma)),
        pl.Series("short_headcount", _prob_short(need, out["headcount_hours"].to_numpy(), sigma)),
        (pl.col("y") * pl.col("volume_share") > pl.col("volume")).cast(pl.Float64).alias("short_demand"),
    ).select(
        "cutoff",
        "region",
        "warehouse",
        "process",
        "ds",
        "quantile",
        "y",
        "volume",
        "labour_hours",
        "headcount",
        "needed_hours_at_standard",
        "short_hours",
        "short_headcount",
        "short_demand",
    )


def log_errors(backtest_forecast: pl.DataFrame, before: object) -> pl.DataFrame:
    """(warehouse, log_error = log(actual / forecast mean)) of backtest rows from windows cut before `before` whose
    period began on or before it (actuals known by then); rows with a zero actual or mean are left out."""
    known = backtest_forecast.filter(
        (pl.col("cutoff") < before) & (pl.col("ds") <= before) & (pl.col("y") > 0) & (pl.col("mean") > 0)
    )
    return known.select("warehouse", (pl.col("y") / pl.col("mean")).log().alias("log_error"))


def _prob_short(needed_at_standard: np.ndarray, planned: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """P(needed_at_standard / f > planned) for log f ~ N(-sigma^2 / 2, sigma^2); a step when sigma is 0."""
    step = (needed_at_standard > planned).astype(float)
    usable = (sigma > 0) & (needed_at_standard > 0) & (planned > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.log(needed_at_standard / planned) + sigma**2 / 2) / np.where(sigma > 0, sigma, 1.0)
    return np.where(usable, norm.cdf(z), step)


def shortfall_summary(shortfall: pl.DataFrame) -> pl.DataFrame:
    """Per warehouse and quantile: the share of backtest periods (x processes) the plan was short, three ways."""
    by = [c for c in ("demand_uncertainty",) if c in shortfall.columns]
    return (
        shortfall.group_by(*by, "warehouse", "quantile")
        .agg(
            pl.len().alias("periods"),
            pl.col("short_hours").mean(),
            pl.col("short_headcount").mean(),
            pl.col("short_demand").mean(),
        )
        .sort(*by, "warehouse", "quantile")
    )


def published_warehouse(reconciled: pl.DataFrame) -> pl.DataFrame:
    """The rows staffing plans from: the published reconciliation at the warehouse level."""
    return reconciled.filter(pl.col("published") & (pl.col("level") == "warehouse"))


def job_standards(job: JobSpec, warehouses: list[str]) -> pl.DataFrame:
    """The job's standards file, checked and resolved to one row per warehouse x process (defaults applied).
    Rows for unknown warehouses are refused unless the job is filtered to a slice."""
    path = job.staffing_standards_path() or Path()
    return standards_for(load_standards(path), warehouses, path, strict=not job.key_filters())


def plan_for_job(
    warehouse_forecast: pl.DataFrame,
    job: JobSpec,
    backtest: FoundBacktest,
    scenario: Scenario | None = None,
) -> pl.DataFrame:
    """The job's staffing plan from its published warehouse forecast, optionally under a what-if scenario.
    `backtest`: the one the run reads (its errors draw the demand with `demand_uncertainty: backtest`)."""
    if job.staffing is None:
        return empty_plan()
    standards = job_standards(job, warehouse_forecast["warehouse"].unique().to_list())
    forecast = apply_scenario(warehouse_forecast, scenario)
    errors = (
        backtest_log_errors(job, warehouse_forecast["ds"].min() - timedelta(days=1), backtest)
        if job.staffing.demand_uncertainty == "backtest"
        else None
    )
    return staffing_plan(forecast, standards, PlanSettings.for_job(job), errors)


def demand_source(job: JobSpec, backtest: FoundBacktest) -> str:
    """Where the staffing plan's demand draws come from, for the run summary."""
    if job.staffing is None:
        return "no staffing"
    if job.staffing.demand_uncertainty == "reconciled":
        return "reconciled quantiles"
    folder, missing = backtest
    return f"errors of backtest {folder.name}" if folder is not None else f"reconciled quantiles ({missing})"


def backtest_log_errors(job: JobSpec, known_through: date, backtest: FoundBacktest) -> pl.DataFrame | None:
    """Warehouse errors of `backtest` (default: the newest that ends by `known_through`) whose actuals were known by
    `known_through`; None (reconciled quantiles are used) when there is no such backtest."""
    folder, _ = backtest
    if folder is None:
        return None
    rows = published_warehouse(pl.read_parquet(folder / "backtest_reconciled.parquet"))
    errors = log_errors(rows, before=known_through)
    return errors if errors.height else None
