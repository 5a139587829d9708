"""The staffing rules of the catalogue (forecasting.job.catalogue.STAFFING_RULES): where a plan's demand draws come
from. Each rule takes the published warehouse forecast (one row per warehouse x period: mean and lo/hi bounds), the
interval levels, the number of draws, the plan's random generator and the backtest errors (warehouse, log_error;
None without a backtest) and returns non-negative draws, rows x draws. The contract tests
(tests/staffing/test_rule_contract.py) run the same checks over every rule."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

import numpy as np
import polars as pl
from scipy.stats import norm

from forecasting.job.catalogue import STAFFING_RULES

MIN_OWN_ERRORS = 30  # fewer backtest errors than this for a warehouse: draw from all warehouses' errors
DemandRule = Callable[[pl.DataFrame, list[int], int, np.random.Generator, pl.DataFrame | None], np.ndarray]


def rule(name: str) -> DemandRule:
    """The function registered for a staffing rule."""
    module, _, function = STAFFING_RULES[name].builder.partition(":")
    return getattr(import_module(module), function)


def from_reconciled_quantiles(
    forecast: pl.DataFrame, levels: list[int], samples: int, rng: np.random.Generator, errors: pl.DataFrame | None
) -> np.ndarray:
    """Inverse-CDF draws from each row's reconciled quantiles (normal tails beyond the widest interval)."""
    probs, values = quantile_grid(forecast, levels)
    return draw_demand(probs, values, rng.uniform(size=(forecast.height, samples)))


def from_backtest_errors(
    forecast: pl.DataFrame, levels: list[int], samples: int, rng: np.random.Generator, errors: pl.DataFrame | None
) -> np.ndarray:
    """mean x exp(error), the errors drawn from the warehouse's own backtest errors (all warehouses' when it has
    fewer than MIN_OWN_ERRORS): bands as wide and as biased as the forecast has really been. Without errors (no
    backtest yet) the reconciled quantiles."""
    if errors is None or errors.height == 0:
        return from_reconciled_quantiles(forecast, levels, samples, rng, errors)
    pooled = errors["log_error"].to_numpy()
    own = {w: g["log_error"].to_numpy() for (w,), g in errors.group_by("warehouse")}
    warehouses = forecast["warehouse"].to_numpy()
    draws = np.empty((forecast.height, samples))
    for warehouse in sorted(set(warehouses)):
        rows = np.flatnonzero(warehouses == warehouse)
        pool = own.get(warehouse)
        pool = pool if pool is not None and len(pool) >= MIN_OWN_ERRORS else pooled
        draws[rows] = rng.choice(pool, size=(len(rows), samples))
    return np.maximum(forecast["mean"].to_numpy()[:, None], 0.0) * np.exp(draws)


def quantile_grid(forecast: pl.DataFrame, levels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, values per row) of the forecast's quantiles: lo/hi of each interval level and the mean as the
    median (the reconciled intervals are symmetric about it). Values are made non-decreasing across the grid."""
    columns = [(0.5 - lv / 200, f"lo_{lv}") for lv in levels] + [(0.5 + lv / 200, f"hi_{lv}") for lv in levels]
    columns.append((0.5, "mean"))
    columns.sort()
    probs = np.array([p for p, _ in columns])
    values = forecast.select([c for _, c in columns]).to_numpy().astype(float)
    return probs, np.maximum.accumulate(values, axis=1)


def draw_demand(probs: np.ndarray, values: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws: u (rows x draws) uniform -> demand per row, from the quantile grid of each row."""
    out = np.empty_like(u)
    z_lo, z_hi = norm.ppf(probs[0]), norm.ppf(probs[-1])
    lower_scale = (values[:, 1] - values[:, 0]) / (norm.ppf(probs[1]) - z_lo)
    upper_scale = (values[:, -1] - values[:, -2]) / (z_hi - norm.ppf(probs[-2]))
    for i in range(values.shape[0]):
        out[i] = np.interp(u[i], probs, values[i])
    z = norm.ppf(u)
    low, high = u < probs[0], u > probs[-1]
    out = np.where(low, values[:, [0]] + lower_scale[:, None] * (z - z_lo), out)
    out = np.where(high, values[:, [-1]] + upper_scale[:, None] * (z - z_hi), out)
    return np.maximum(out, 0.0)
