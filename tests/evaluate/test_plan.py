"""The plan rule (forecasting.evaluate.plan) on score tables whose answer is known: the anchor stays unless a
candidate is clearly better, inverse-MSE weights, the reconciliation guard and its fallbacks, conformal interval
factors. The same rule on real backtests: tests/evaluate/test_backtest.py."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from support import slice_job

from forecasting.evaluate import plan as plans

CUTOFFS = [date(2015, 3, 1), date(2015, 6, 1), date(2015, 9, 1), date(2015, 12, 1)]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    return slice_job(tmp_path_factory.mktemp("plan"))


def scores(rows: dict[tuple[str, str], list[float]], kind: str = "base", metric: str = "rmsse") -> pl.DataFrame:
    """(level, model) -> one value per window of CUTOFFS."""
    return pl.DataFrame(
        [
            {"level": level, "kind": kind, "model": model, "cutoff": cutoff, metric: value}
            for (level, model), values in rows.items()
            for cutoff, value in zip(CUTOFFS, values, strict=True)
        ]
    )


def test_clearly_better_needs_a_lower_mean_by_more_than_a_standard_error():
    anchor = np.array([1.0, 1.0, 1.0, 1.0])
    assert plans.clearly_better(np.array([0.9, 0.92, 0.88, 0.9]), anchor)
    assert not plans.clearly_better(np.array([0.7, 1.3, 0.8, 1.1]), anchor)  # lower on average, but noisy
    assert not plans.clearly_better(np.array([0.5]), np.array([1.0]))  # one window proves nothing
    assert not plans.clearly_better(np.array([1.1, 1.1, 1.1, 1.1]), anchor)
    assert not plans.clearly_better(anchor - 1e-15, anchor)  # the same forecast by another name: rounding only


def test_base_stays_the_mean_unless_a_candidate_is_clearly_better(job):
    levels = job.hierarchy.names
    table = {(lv, "Mean"): [1.0, 1.0, 1.0, 1.0] for lv in levels}
    table |= {("total", "LightGBM"): [0.8, 0.82, 0.79, 0.81], ("region", "LightGBM"): [0.6, 1.4, 0.7, 1.2]}
    table |= {("warehouse", "SeasonalNaive"): [1.2, 1.1, 1.3, 1.2], ("sku", "LightGBM"): [0.99, 0.98, 0.99, 0.99]}
    chosen, reasons = plans.choose_base(scores(table), CUTOFFS, job)
    assert chosen == {"total": "LightGBM", "region": "Mean", "warehouse": "Mean", "sku": "LightGBM"}
    assert any("clearly better than Mean" in r for r in reasons)
    assert plans.choose_base(scores(table), [], job)[0] == job.primary_models()  # no earlier window: the job file


def test_fitted_combinations_are_inverse_mse_and_the_best_two_of_the_earlier_windows(job):
    table = {("sku", "SeasonalNaive"): [2.0] * 4, ("sku", "CrostonSBA"): [1.0] * 4, ("sku", "LightGBM"): [0.5] * 4}
    fitted = plans.combination_weights(scores(table), CUTOFFS[:2], job)
    weights = fitted["Weighted"]["sku"]
    expected = np.array([1 / 4, 1, 4]) / (1 / 4 + 1 + 4)
    np.testing.assert_allclose([weights[m] for m in ("SeasonalNaive", "CrostonSBA", "LightGBM")], expected)
    assert fitted["Top2"]["sku"] == {"CrostonSBA": 0.5, "LightGBM": 0.5}
    equal = plans.combination_weights(scores(table), [], job)  # no earlier window: both are the Mean
    assert equal["Weighted"]["sku"] == pytest.approx(dict.fromkeys(weights, 1 / 3)) == equal["Top2"]["sku"]


def test_a_reconciliation_worse_than_base_is_not_published(job):
    levels = job.hierarchy.names
    base = scores({(lv, "Base"): [1.0] * 4 for lv in levels})
    harmless = {(lv, "BottomUp"): [1.0] * 4 for lv in levels}
    harmful = {(lv, "MinTrace_wls_struct"): [0.9] * 4 for lv in levels} | {("total", "MinTrace_wls_struct"): [1.5] * 4}
    reconciled = scores(harmless | harmful, "reconciled")
    # Chosen from the backtest: BottomUp's worst level is clearly better than the job's MinTrace's.
    method, fallback, reasons = plans.choose_method(reconciled, base, CUTOFFS, job)
    assert (method, fallback) == ("BottomUp", {}) and "clearly better" in reasons[0]
    # The job's own method, not chosen: it harms the total, BottomUp harms nothing and is published instead.
    fixed = job.model_copy(
        update={"reconciliation": job.reconciliation.model_copy(update={"choose_from_backtest": False})}
    )
    method, fallback, reasons = plans.choose_method(reconciled, base, CUTOFFS, fixed)
    assert (method, fallback) == ("BottomUp", {}) and "worse than Base at total" in reasons[-1]
    only_harmful = reconciled.filter(pl.col("model") == "MinTrace_wls_struct")
    method, fallback, _ = plans.choose_method(only_harmful, base, CUTOFFS, fixed)
    assert method == "MinTrace_wls_struct" and fallback == {"total": "Base"}
    plan = plans.Plan(base={lv: "Mean" for lv in levels}, method=method, fallback=fallback)
    assert not plan.coherent and plan.published_at("total") == "Base" and plan.published_at("sku") == method


def test_interval_factors_cover_the_nominal_share_of_the_earlier_errors():
    rng = np.random.default_rng(0)
    n = 400
    mean = np.full(n, 100.0)
    y = mean + rng.normal(0, 10, n)
    rows = pl.DataFrame({"level": ["total"] * n, "y": y, "mean": mean})
    for lv, z in ((80, 1.2816), (95, 1.96)):
        # Intervals half as wide as they should be: the factor must be about 2.
        rows = rows.with_columns(lo=pl.col("mean") - z * 5, hi=pl.col("mean") + z * 5).rename(
            {"lo": f"lo_{lv}", "hi": f"hi_{lv}"}
        )
    factors = plans.interval_scales(rows, [80, 95])["total"]
    assert 1.6 < factors["80"] < 2.4 and 1.6 < factors["95"] < 2.4
    scaled = plans.apply_interval_scales(rows, {"total": factors}, [80, 95])
    for lv in (80, 95):
        covered = scaled.select(((pl.col("y") >= pl.col(f"lo_{lv}")) & (pl.col("y") <= pl.col(f"hi_{lv}"))).mean())
        assert covered.item() >= lv / 100
    assert (scaled["lo_95"] <= scaled["lo_80"]).all() and (scaled["hi_80"] <= scaled["hi_95"]).all()
    assert plans.interval_scales(rows.head(5), [80, 95]) == {}  # too few earlier errors: left as reconciled
