"""The reorder-point policy backtested: over earlier windows, would the reorder points have covered the demand?

For each backtest window (its published forecast, chosen from the windows before it) and each day s of the window
with a whole lead time L left in it, the reorder point is set as a run would have set it on day s from the
forecast for days s .. s+L-1 (forecasting.inventory.quantities), and compared with the real demand of those days:
- cycle service level: the share of SKU-days whose lead-time demand stayed within the reorder point;
- fill rate: the share of the lead-time demand served from the reorder-point stock, 1 - sum(shortage) / sum(demand).
`normal` sets the reorder point instead from a normal lead-time demand (mean + z sigma, sigma from the daily 80 %
intervals with independent days): the approximation the copula paths are compared with.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.stats import norm

from forecasting.inventory.quantities import SERIES_PER_BLOCK, path_draws, reorder_points
from forecasting.job.inventory import InventorySpec

Z80 = norm.ppf(0.9)


def policy_outcomes(
    windows: pl.DataFrame,
    lead: pl.DataFrame,
    levels: list[int],
    spec: InventorySpec,
    seed: int,
    method: str = "paths",
) -> pl.DataFrame:
    """One row per series x window x start day x service level: demand over the lead time, reorder point, whether
    it was covered and the shortage. `windows`: unique_id, cutoff, ds, y, mean, lo_*/hi_* (one forecast per series,
    window and day, every window the same length)."""
    rng = np.random.default_rng(seed)
    frames = []
    data = windows.join(lead, on="unique_id").sort("lead_time", "cutoff", "unique_id", "ds")
    for (lt, cutoff), group in data.group_by("lead_time", "cutoff", maintain_order=True):
        ids = group["unique_id"].unique(maintain_order=True)
        for start in range(0, ids.len(), SERIES_PER_BLOCK):
            block = group.filter(pl.col("unique_id").is_in(ids.slice(start, SERIES_PER_BLOCK).implode()))
            frames.append(_block(block, int(lt), cutoff, levels, spec, rng, method))
    return pl.concat(frames) if frames else pl.DataFrame()


def _block(
    block: pl.DataFrame,
    lead_time: int,
    cutoff: object,
    levels: list[int],
    spec: InventorySpec,
    rng: np.random.Generator,
    method: str,
) -> pl.DataFrame:
    n = block["unique_id"].n_unique()
    days = block.height // n
    if block.height != n * days or days < lead_time:
        raise ValueError(f"policy backtest: window {cutoff} is not {days} days for every series, or shorter than L")
    starts = days - lead_time + 1
    y = block["y"].to_numpy().reshape(n, days)
    demand = _window_sums(np.cumsum(y, axis=1), lead_time, starts)  # n x starts
    if method == "paths":
        draws = path_draws(block, levels, spec.samples, spec.day_correlation, rng)
        cum = np.cumsum(draws, axis=1)  # n x days x samples
        sums = np.concatenate([cum[:, lead_time - 1 : lead_time, :], cum[:, lead_time:, :] - cum[:, :-lead_time, :]], 1)
        rop, _ = reorder_points(sums.reshape(n * starts, -1), spec.service_levels)
    elif method == "normal":
        mean = np.maximum(block["mean"].to_numpy(), 0).reshape(n, days)
        sigma = ((block["hi_80"] - block["lo_80"]).to_numpy() / (2 * Z80)).reshape(n, days)
        mu = _window_sums(np.cumsum(mean, axis=1), lead_time, starts).reshape(-1)
        sd = np.sqrt(_window_sums(np.cumsum(sigma**2, axis=1), lead_time, starts)).reshape(-1)
        rop = np.ceil(mu[:, None] + sd[:, None] * norm.ppf(spec.service_levels)[None, :] - 1e-9)
    else:
        raise ValueError(f"unknown policy method {method!r}")
    ids = block["unique_id"].unique(maintain_order=True).to_numpy()
    first = block["ds"].to_numpy().reshape(n, days)[:, :starts]
    out = []
    for i, level in enumerate(spec.service_levels):
        r = rop[:, i]
        d = demand.reshape(-1)
        out.append(
            pl.DataFrame(
                {
                    "unique_id": np.repeat(ids, starts),
                    "cutoff": [cutoff] * (n * starts),
                    "start": first.reshape(-1),
                    "lead_time": lead_time,
                    "service_level": level,
                    "demand": d,
                    "reorder_point": r,
                    "covered": d <= r,
                    "shortage": np.maximum(d - r, 0.0),
                }
            )
        )
    return pl.concat(out)


def _window_sums(cum: np.ndarray, lead_time: int, starts: int) -> np.ndarray:
    """Sums over days s .. s+L-1 for s = 0 .. starts-1 from cumulative sums along axis 1."""
    first = cum[:, lead_time - 1 : lead_time]
    rest = cum[:, lead_time : lead_time + starts - 1] - cum[:, : starts - 1]
    return np.concatenate([first, rest], axis=1)


def policy_summary(outcomes: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Per group and service level: achieved cycle service level, fill rate and the SKU-days they rest on."""
    return (
        outcomes.group_by(*by, "service_level")
        .agg(
            pl.col("covered").mean().alias("cycle_service_level"),
            (1 - pl.col("shortage").sum() / pl.col("demand").sum()).alias("fill_rate"),
            pl.len().alias("sku_days"),
        )
        .with_columns((pl.col("cycle_service_level") - pl.col("service_level")).alias("csl_gap"))
        .sort(*by, "service_level")
    )
