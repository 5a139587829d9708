"""Staffing plans: the formula by hand, monotonicity, rounding and minimum crew, bands that cover demand and
productivity, the shortfall backtest on a known distribution."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy.stats import norm

from forecasting.job.staffing import Scenario
from forecasting.staffing.plans import (
    PlanSettings,
    apply_scenario,
    log_errors,
    plan_shortfall,
    shortfall_summary,
    staffing_plan,
)
from forecasting.staffing.standards import REQUIRED_PROCESSES

LEVELS = [60, 80, 90, 95]


def _standards(warehouses=("CA_1",), cv: float = 0.0, min_crew: int = 0, **override) -> pl.DataFrame:
    rows = []
    for warehouse in warehouses:
        for process in REQUIRED_PROCESSES:
            rows.append(
                {
                    "warehouse": warehouse,
                    "process": process,
                    "volume_share": 1.0 if process != "returns" else 0.1,
                    "units_per_hour": 100.0,
                    "productivity_cv": cv,
                    "pfd_allowance": 0.15,
                    "productive_hours_per_shift": 7.5,
                    "shifts_per_day": 2,
                    "operating_days_per_week": 7.0,
                    "working_days_per_week": 5.0,
                    "shrinkage": 0.12,
                    "min_crew": min_crew,
                }
                | override
            )
    return pl.DataFrame(rows)


def _forecast(means: list[float], sd_share: float = 0.0, start: date = date(2016, 4, 1), freq: str = "month"):
    """Normal demand per period with sd = sd_share x mean: mean and the lo/hi bounds of every level."""
    if freq == "month":
        days = [
            date(start.year + (start.month - 1 + i) // 12, (start.month - 1 + i) % 12 + 1, 1) for i in range(len(means))
        ]
    else:
        days = [start + timedelta(days=i) for i in range(len(means))]
    frame = pl.DataFrame({"region": "CA", "warehouse": "CA_1", "ds": days, "mean": means})
    bounds = []
    for lv in LEVELS:
        z = norm.ppf(0.5 + lv / 200)
        bounds += [
            (pl.col("mean") * (1 - z * sd_share)).alias(f"lo_{lv}"),
            (pl.col("mean") * (1 + z * sd_share)).alias(f"hi_{lv}"),
        ]
    return frame.with_columns(bounds)


def test_formula_by_hand_for_a_known_volume():
    plan = staffing_plan(_forecast([100_000.0]), _standards(), PlanSettings("month", LEVELS, samples=500))
    row = plan.filter((pl.col("quantile") == "p50") & (pl.col("process") == "picking")).row(0, named=True)
    hours = 100_000 / 100 * 1.15
    fte_hours = 7.5 * 30 * 5 / 7  # April: 30 days, one FTE works 5 of 7
    assert row["labour_hours"] == pytest.approx(hours)
    assert row["fte"] == pytest.approx(hours / fte_hours / 0.88)
    assert row["headcount"] == int(np.ceil(hours / fte_hours / 0.88))
    assert row["crew_per_shift"] == int(np.ceil(hours / (2 * 30) / 7.5 / 0.88))
    returns = plan.filter((pl.col("quantile") == "p50") & (pl.col("process") == "returns"))["labour_hours"].item()
    assert returns == pytest.approx(hours * 0.1)


def test_monotone_in_volume_and_quantile():
    standards = _standards(cv=0.1, min_crew=1)
    plan = staffing_plan(_forecast([10_000.0, 50_000.0, 200_000.0], 0.1), standards, PlanSettings("month", LEVELS))
    for (process, quantile), part in plan.group_by("process", "quantile"):
        assert part.sort("ds")["headcount"].to_list() == sorted(part["headcount"].to_list()), (process, quantile)
    wide = plan.pivot(on="quantile", index=["process", "ds"], values="labour_hours")
    assert ((wide["p50"] <= wide["p80"]) & (wide["p80"] <= wide["p95"])).all()
    heads = plan.pivot(on="quantile", index=["process", "ds"], values="headcount")
    assert ((heads["p50"] <= heads["p80"]) & (heads["p80"] <= heads["p95"])).all()
    bigger = staffing_plan(_forecast([12_000.0, 60_000.0, 240_000.0], 0.1), standards, PlanSettings("month", LEVELS))
    assert (bigger["headcount"] >= plan["headcount"]).all() and (bigger["labour_hours"] > plan["labour_hours"]).all()


def test_exact_fte_is_not_rounded_up_and_minimum_crew_holds():
    fte_hours = 7.5 * 30 * 5 / 7
    volume = 10 * fte_hours * 0.88 * 100 / 1.15  # exactly 10 FTE of picking in April
    plan = staffing_plan(_forecast([volume]), _standards(), PlanSettings("month", LEVELS, samples=500))
    assert plan.filter((pl.col("process") == "picking") & (pl.col("quantile") == "p50"))["headcount"].item() == 10
    tiny = staffing_plan(_forecast([10.0]), _standards(min_crew=3), PlanSettings("month", LEVELS, samples=500))
    assert (tiny["crew_per_shift"] == 3).all()
    # 3 people on each of 2 shifts, 7 days a week, by people who work 5 days and are away 12 % of the time
    assert (tiny["headcount"] == int(np.ceil(3 * 2 * 7 / 5 / 0.88))).all()


def test_productivity_spread_widens_the_upper_bands_only():
    forecast = _forecast([100_000.0], 0.05)
    steady = staffing_plan(forecast, _standards(cv=0.0), PlanSettings("month", LEVELS, samples=20_000))
    varied = staffing_plan(forecast, _standards(cv=0.15), PlanSettings("month", LEVELS, samples=20_000))
    for quantile in ("p80", "p95"):
        a = steady.filter(pl.col("quantile") == quantile)["labour_hours"].sum()
        b = varied.filter(pl.col("quantile") == quantile)["labour_hours"].sum()
        assert b > 1.03 * a, quantile
    assert staffing_plan(forecast, _standards(cv=0.15), PlanSettings("month", LEVELS, samples=20_000)).equals(
        varied
    )  # seeded


def test_daily_plan_has_crew_per_shift():
    plan = staffing_plan(
        _forecast([4000.0] * 7, 0.1, freq="day"), _standards(), PlanSettings("day", LEVELS, samples=500)
    )
    picking = plan.filter((pl.col("process") == "picking") & (pl.col("quantile") == "p50"))
    assert picking.height == 7
    hours = 4000 / 100 * 1.15
    assert picking["crew_per_shift"][0] == int(np.ceil(hours / 2 / 7.5 / 0.88))
    assert picking["fte"][0] == pytest.approx(hours / (7.5 * 5 / 7) / 0.88, rel=0.02)


def test_scenario_scales_only_its_window_and_warehouses():
    forecast = _forecast([100.0, 200.0, 300.0], 0.1)
    scaled = apply_scenario(forecast, Scenario(uplift=0.5, start=date(2016, 5, 1), end=date(2016, 5, 31)))
    assert scaled["mean"].to_list() == [100.0, 300.0, 300.0]
    assert scaled["hi_95"][1] == pytest.approx(forecast["hi_95"][1] * 1.5)
    other = apply_scenario(forecast, Scenario(uplift=0.5, warehouses=["TX_1"]))
    assert other.equals(forecast)


@pytest.mark.parametrize("cv", [0.0, 0.12])
def test_p80_shortfall_on_a_known_distribution_is_near_20_percent(cv):
    """Demand ~ N(mean, (0.1 mean)^2) in every period; actual volumes drawn from that same distribution; realised
    productivity log-normal with the standards' cv. The p80 plan should be short in about 20 % of periods (p95: 5 %)."""
    rng = np.random.default_rng(7)
    n = 1500
    means = rng.uniform(20_000, 80_000, n)
    forecast = _forecast(list(means), 0.1, start=date(2016, 1, 1), freq="day")
    actual = means * (1 + 0.1 * rng.standard_normal(n))
    backtest = forecast.with_columns(pl.lit(date(2015, 12, 31)).alias("cutoff"), pl.Series("y", actual))
    shortfall = plan_shortfall(backtest, _standards(cv=cv), PlanSettings("day", LEVELS, samples=4000, seed=1))
    summary = shortfall_summary(shortfall.filter(pl.col("process") == "picking"))
    rates = dict(zip(summary["quantile"], summary["short_hours"], strict=True))
    assert rates["p80"] == pytest.approx(0.20, abs=0.03)
    assert rates["p95"] == pytest.approx(0.05, abs=0.02)
    assert rates["p50"] == pytest.approx(0.50, abs=0.04)
    # rounding headcount up can only make the plan short less often
    rounded = dict(zip(summary["quantile"], summary["short_headcount"], strict=True))
    assert all(rounded[q] <= rates[q] + 1e-12 for q in rates)


def test_backtest_errors_use_only_what_was_known_at_each_cutoff():
    """Demand from earlier windows' errors: window k sees only windows cut before it whose periods had begun by its
    cutoff; a forecast that is always 20 % low then gets a p50 plan at the actual volume."""
    rows = []
    for w, cutoff in enumerate([date(2016, 1, 31), date(2016, 2, 29), date(2016, 3, 31)]):
        for step in range(1, 3):
            ds = cutoff + timedelta(days=step)
            rows.append(
                {"cutoff": cutoff, "warehouse": "CA_1", "ds": ds, "mean": 1000.0 * (w + 1), "y": 1250.0 * (w + 1)}
            )
    frame = pl.DataFrame(rows)
    errors = log_errors(frame, before=date(2016, 3, 31))
    assert errors.height == 4 and np.allclose(errors["log_error"], np.log(1.25))  # windows 1 and 2
    assert log_errors(frame, before=date(2016, 2, 1)).height == 1  # window 1's first period only
    assert log_errors(frame, before=date(2016, 1, 31)).height == 0
    forecast = _forecast([40_000.0], 0.1)
    plan = staffing_plan(forecast, _standards(), PlanSettings("month", LEVELS, samples=500), errors=errors)
    volume = plan.filter((pl.col("process") == "picking") & (pl.col("quantile") == "p50"))["volume"].item()
    assert volume == pytest.approx(50_000.0)
    backtest = (
        _forecast([40_000.0] * 3, 0.1, start=date(2016, 1, 1))
        .with_columns(pl.Series("cutoff", [date(2015, 12, 31), date(2016, 1, 31), date(2016, 2, 29)]))
        .with_columns(pl.col("mean").alias("y"))
    )
    evaluated = plan_shortfall(
        backtest, _standards(), PlanSettings("month", LEVELS, samples=500), uncertainty="backtest"
    )
    assert evaluated["cutoff"].unique().sort().to_list() == [date(2016, 1, 31), date(2016, 2, 29)]


def test_backtest_errors_are_drawn_per_warehouse_when_there_are_enough():
    few = pl.DataFrame({"warehouse": ["CA_1"] * 5, "log_error": [np.log(2.0)] * 5})
    many = pl.DataFrame({"warehouse": ["CA_1"] * 40, "log_error": [np.log(1.1)] * 40})
    other = pl.DataFrame({"warehouse": ["TX_1"] * 40, "log_error": [np.log(0.5)] * 40})
    forecast = _forecast([1000.0], 0.1)

    def p50(errors: pl.DataFrame) -> float:
        plan = staffing_plan(forecast, _standards(), PlanSettings("month", LEVELS, samples=4000), errors=errors)
        return plan.filter((pl.col("process") == "picking") & (pl.col("quantile") == "p50"))["volume"].item()

    assert p50(pl.concat([many, other])) == pytest.approx(1100.0)  # CA_1's own 40 errors
    assert p50(pl.concat([few, other])) == pytest.approx(500.0)  # 5 own are too few: all 45, mostly TX_1's
