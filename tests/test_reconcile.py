from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from support import assert_coherent, slice_job

from forecasting.pipeline import aggregate, base_forecasts, decorate_reconciled, load, reconcile, validate


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    job = slice_job(tmp_path_factory.mktemp("reconcile"))
    loaded = load(job)
    validated = validate(loaded, job)
    return job, loaded, validated


@pytest.fixture(scope="module")
def sparse_result(inputs):
    job, loaded, validated = inputs
    hierarchy = aggregate(validated, job, sparse=True)
    base = base_forecasts(hierarchy, loaded.prices, job)
    return hierarchy, base, decorate_reconciled(hierarchy, base, reconcile(hierarchy, base, job, sparse=True), job)


def test_coherent_and_non_negative(sparse_result, inputs):
    job = inputs[0]
    _, _, reconciled = sparse_result
    assert set(reconciled["method"]) == {"BottomUp", "MinTrace_wls_struct"}
    assert_coherent(reconciled)
    bounds = [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]
    assert reconciled.select(pl.min_horizontal("mean", *bounds).min()).item() >= 0


def test_intervals_are_ordered(sparse_result):
    _, _, r = sparse_result
    assert (r["lo_95"] <= r["lo_80"] + 1e-9).all() and (r["lo_80"] <= r["hi_80"] + 1e-9).all()
    assert (r["hi_80"] <= r["hi_95"] + 1e-9).all()


def test_bottom_up_keeps_the_sku_base_forecasts(sparse_result):
    hierarchy, base, reconciled = sparse_result
    bottom = reconciled.filter((pl.col("method") == "BottomUp") & (pl.col("level") == "sku"))
    joined = bottom.join(base.forecasts.select("unique_id", "ds", "Base"), on=["unique_id", "ds"])
    np.testing.assert_allclose(joined["mean"].to_numpy(), joined["Base"].clip(lower_bound=0).to_numpy(), atol=1e-9)


def test_dense_and_sparse_reconciliation_agree(sparse_result, inputs):
    job, _, validated = inputs
    _, base, sparse = sparse_result
    dense_hierarchy = aggregate(validated, job, sparse=False)
    dense = reconcile(dense_hierarchy, base, job, sparse=False)
    key = ["unique_id", "ds", "method"]
    joined = sparse.join(dense, on=key, suffix="_dense")
    assert joined.height == sparse.height == dense.height
    np.testing.assert_allclose(joined["mean"].to_numpy(), joined["mean_dense"].to_numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(joined["hi_95"].to_numpy(), joined["hi_95_dense"].to_numpy(), rtol=1e-2, atol=1e-2)
