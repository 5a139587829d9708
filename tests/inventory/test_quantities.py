"""Reorder points come from the forecast's own quantiles: checked against those quantiles on real M5 series
forecast by statsforecast (SeasonalNaive with its normal intervals, so the lead-time sums have known quantiles)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import norm
from statsforecast import StatsForecast
from statsforecast.models import SeasonalNaive

from forecasting.inventory.policy import policy_outcomes, policy_summary
from forecasting.inventory.quantities import inventory_quantities, lead_times
from forecasting.job.common import project_root
from forecasting.job.inventory import InventorySpec

LEVELS = [50, 67, 80, 90, 95, 99]
SMOOTH = ["FOODS_3_377_CA_1_evaluation", "FOODS_3_377_TX_2_evaluation", "HOUSEHOLD_1_521_WI_1_evaluation"]


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    raw = pl.read_parquet(project_root() / "data/m5/m5_daily_sku_subset_d1_d1941.parquet")
    return (
        raw.filter(pl.col("id").is_in(SMOOTH))
        .select(
            pl.col("id").alias("unique_id"), pl.col("date").alias("ds"), pl.col("sales").cast(pl.Float64).alias("y")
        )
        .sort("unique_id", "ds")
    )


def _renamed(frame: pl.DataFrame) -> pl.DataFrame:
    names = {"SeasonalNaive": "mean"} | {
        f"SeasonalNaive-{side}-{lv}": f"{side}_{lv}" for lv in LEVELS for side in ("lo", "hi")
    }
    return frame.rename(names).with_columns(pl.col("ds").cast(pl.Date))


@pytest.fixture(scope="module")
def forecast(history) -> pl.DataFrame:
    sf = StatsForecast(models=[SeasonalNaive(season_length=7)], freq="1d")
    return _renamed(sf.forecast(df=history.filter(pl.col("ds") < pl.date(2016, 4, 25)), h=28, level=LEVELS))


def _spec(correlation: float, samples: int = 4000, **extra) -> InventorySpec:
    return InventorySpec(service_levels=[0.9, 0.95], lead_time=7, samples=samples, day_correlation=correlation, **extra)


def _lead(forecast: pl.DataFrame, days: int) -> pl.DataFrame:
    return forecast.select(pl.col("unique_id").unique(), pl.lit(days, dtype=pl.Int64).alias("lead_time"))


def test_perfectly_correlated_days_give_the_sum_of_the_daily_quantiles(forecast):
    table = inventory_quantities(forecast, _lead(forecast, 7), LEVELS, _spec(1.0, 40_000), seed=0)
    first7 = forecast.sort("unique_id", "ds").group_by("unique_id", maintain_order=True).head(7)
    sums = first7.group_by("unique_id").agg(pl.col("hi_80").sum().alias("q90"), pl.col("mean").sum().alias("m"))
    got = table.filter(pl.col("service_level") == 0.9).join(sums, on="unique_id")
    # 0.9 is a grid point (the 80 % interval's upper bound): with one uniform per path the sum's 0.9-quantile is
    # the sum of the days' hi_80 (up to the empirical quantile of 40,000 draws: +-0.0015 in probability).
    np.testing.assert_allclose(got["lead_time_demand_quantile"], got["q90"], rtol=0.01)
    np.testing.assert_allclose(got["lead_time_demand_mean"], got["m"], rtol=1e-12)
    assert (got["reorder_point"] == np.ceil(got["lead_time_demand_quantile"] - 1e-9)).all()
    np.testing.assert_allclose(got["safety_stock"], got["reorder_point"] - got["m"], rtol=1e-12)


def test_independent_days_give_the_normal_sum(forecast):
    """SeasonalNaive's intervals are normal: with independent days the 7-day sum is normal with the summed
    variances, and the drawn quantile matches it where the days' lower quantiles stay near or above 0 (the two
    FOODS_3_377 series); where they reach far below 0 (HOUSEHOLD_1_521 at WI_1: 4 units a day, lo_80 -4) demand
    cannot follow them, the draws stop at 0 and the quantile lies above the normal one. Every quantile lies below
    the perfectly correlated one."""
    independent = inventory_quantities(forecast, _lead(forecast, 7), LEVELS, _spec(0.0, 40_000), seed=0)
    together = inventory_quantities(forecast, _lead(forecast, 7), LEVELS, _spec(1.0, 40_000), seed=0)
    first7 = forecast.sort("unique_id", "ds").group_by("unique_id", maintain_order=True).head(7)
    sd = first7.with_columns(((pl.col("hi_80") - pl.col("lo_80")) / (2 * norm.ppf(0.9))).alias("sd"))
    normal = sd.group_by("unique_id").agg(pl.col("mean").sum(), (pl.col("sd") ** 2).sum().sqrt().alias("sd"))
    for level in (0.9, 0.95):
        got = independent.filter(pl.col("service_level") == level).join(normal, on="unique_id")
        got = got.with_columns((pl.col("mean") + norm.ppf(level) * pl.col("sd")).alias("normal")).sort("unique_id")
        foods = got.filter(pl.col("unique_id").str.starts_with("FOODS"))
        np.testing.assert_allclose(foods["lead_time_demand_quantile"], foods["normal"], rtol=0.03)
        low = got.filter(pl.col("unique_id").str.starts_with("HOUSEHOLD"))
        assert low["lead_time_demand_quantile"].item() > 1.05 * low["normal"].item()
        upper = together.filter(pl.col("service_level") == level).sort("unique_id")
        assert (got["lead_time_demand_quantile"] < upper["lead_time_demand_quantile"]).all()


def test_same_seed_same_table_and_lead_times_per_key(forecast):
    spec = _spec(0.5)
    a = inventory_quantities(forecast, _lead(forecast, 5), LEVELS, spec, seed=3)
    b = inventory_quantities(forecast, _lead(forecast, 5), LEVELS, spec, seed=3)
    assert a.equals(b) and a.height == 3 * 2 and (a["lead_time"] == 5).all()
    members = pl.DataFrame(
        {"unique_id": ["a", "b", "c"], "category": ["FOODS", "FOODS", "HOBBIES"], "sku": ["F1", "F2", "H1"]}
    )
    spec = _spec(0.5, lead_times={"category": {"FOODS": 5}, "sku": {"F2": 3}})
    assert lead_times(members, spec, ["category", "sku"])["lead_time"].to_list() == [5, 3, 7]


def test_policy_backtest_counts_covered_lead_times(history):
    """Two real 28-day windows: demand over each 7-day lead time is the sum of the real sales, covered means within
    the reorder point, and the summary's rates are those shares."""
    sf = StatsForecast(models=[SeasonalNaive(season_length=7)], freq="1d")
    cv = _renamed(sf.cross_validation(df=history, h=28, n_windows=2, step_size=28, level=LEVELS))
    cv = cv.with_columns(pl.col("cutoff").cast(pl.Date))
    outcomes = policy_outcomes(cv, _lead(cv, 7), LEVELS, _spec(0.5), seed=0)
    assert outcomes.height == 3 * 2 * 22 * 2  # series x windows x start days x service levels
    one = outcomes.filter((pl.col("unique_id") == SMOOTH[0]) & (pl.col("service_level") == 0.9)).sort("start")
    start = one["start"][5]
    real = history.filter(
        (pl.col("unique_id") == SMOOTH[0]) & pl.col("ds").is_between(start, start + pl.duration(days=6))
    )["y"].sum()
    assert one["demand"][5] == real
    assert (outcomes["covered"] == (outcomes["demand"] <= outcomes["reorder_point"])).all()
    summary = policy_summary(outcomes, [])
    assert summary["sku_days"].to_list() == [132, 132]
    at90 = outcomes.filter(pl.col("service_level") == 0.9)
    assert summary["cycle_service_level"][0] == pytest.approx(at90["covered"].mean())
    assert summary["fill_rate"][0] == pytest.approx(1 - at90["shortage"].sum() / at90["demand"].sum())
    normal = policy_outcomes(cv, _lead(cv, 7), LEVELS, _spec(0.0), seed=0, method="normal")
    paths = policy_outcomes(cv, _lead(cv, 7), LEVELS, _spec(0.0), seed=0)
    # independent days: the paths' reorder points are the normal ones up to sampling and interpolation error where
    # demand stays well above 0, and higher where the normal reaches below 0 (see the test above)
    both = normal.select("unique_id", "reorder_point").with_columns(paths["reorder_point"].alias("paths"))
    foods = both.filter(pl.col("unique_id").str.starts_with("FOODS"))
    gap = (foods["paths"] - foods["reorder_point"]).abs() / foods["reorder_point"]
    assert gap.mean() < 0.03 and gap.max() < 0.1  # 4000 paths: sampling error of the 0.9 / 0.95 quantiles
    assert (both["paths"] >= both["reorder_point"] - 1).all()
