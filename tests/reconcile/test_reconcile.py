from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest
from support import M5_MONTHLY, assert_coherent, slice_job

from forecasting.job.loading import load_job
from forecasting.models.frames import calibration_periods
from forecasting.outputs.tables import decorate_reconciled
from forecasting.pipeline import aggregate, base_forecasts, load, reconcile, validate
from forecasting.reconcile import core as rec
from forecasting.reconcile.methods import reconcilers
from forecasting.reconcile.wide import tag_arrays

# the m5-monthly job's (middle level: region; the warehouses and the total as other middle levels, `@<level>`)
AT_REGION = [f"MiddleOut_{upper}" for upper in ("BottomUp", "wls_struct", "ols", "wls_var")]
AT_WAREHOUSE = [f"MiddleOut_{upper}@warehouse" for upper in ("BottomUp", "wls_struct", "ols", "wls_var", "mint_shrink")]
METHODS = {"BottomUp", "MinTrace_wls_struct", *AT_REGION, *AT_WAREHOUSE, "MiddleOut_BottomUp@total"}
SHARES = [("warehouse", "region"), ("sku", "warehouse")]  # (child level, the parent it is split from)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The monthly slice with the Base the job file had through stop 25 (the mean of AutoARIMA and LightGBM at the
    aggregate levels, LightGBM at SKU level): the unconstrained MinTrace of these goes below zero (test_qp_and_clip)."""
    primary = {"total": "ARIMALightGBM", "region": "ARIMALightGBM", "warehouse": "ARIMALightGBM", "sku": "LightGBM"}
    job = slice_job(tmp_path_factory.mktemp("reconcile"))
    update = {
        "primary": primary,
        "combinations": {"ARIMALightGBM": ["AutoARIMA", "LightGBM"]},
        "aggregate_models": [*job.models.aggregate_models, "AutoARIMA"],
    }
    job = job.model_copy(update={"models": job.models.model_copy(update=update)})
    loaded = load(job)
    validated = validate(loaded, job)
    return job, loaded, validated


def reconciled_with(hierarchy, base, job) -> pl.DataFrame:
    """The job's reconciliations of `base` on the sparse S, with level and keys."""
    return decorate_reconciled(hierarchy, base, reconcile(hierarchy, base, job, sparse=True), job)


def _reconciled(job, loaded, validated):
    hierarchy = aggregate(validated, job, sparse=True)
    base = base_forecasts(hierarchy, loaded.prices, job)
    return hierarchy, base, reconciled_with(hierarchy, base, job)


@pytest.fixture(scope="module")
def sparse_result(inputs):
    return _reconciled(*inputs)


@pytest.fixture(scope="module")
def three_stores(tmp_path_factory):
    """Two CA stores and one TX store: the region middle level then has a region with two warehouses to split."""
    job = slice_job(tmp_path_factory.mktemp("three"), stores=("CA_1", "CA_2", "TX_1"))
    loaded = load(job)
    return job, _reconciled(job, loaded, validate(loaded, job))


def test_coherent_and_non_negative(sparse_result, inputs):
    job = inputs[0]
    _, _, reconciled = sparse_result
    assert set(reconciled["method"]) == METHODS
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
    # Non-negative MinTrace is a QP, posed differently on the sparse and dense paths (hierarchicalforecast hands both
    # to clarabel, which stops at its tolerances): with the job's Base they differ by up to 0.005 units (0.2-unit SKU).
    np.testing.assert_allclose(joined["mean"].to_numpy(), joined["mean_dense"].to_numpy(), rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(joined["hi_95"].to_numpy(), joined["hi_95_dense"].to_numpy(), rtol=1e-2, atol=1e-2)


def middle_rows(reconciled, base, method: str, level: str) -> pl.DataFrame:
    """One method's rows at one level beside the Base they came from (clipped at zero, as reconcile clips it)."""
    clipped = base.forecasts.select("unique_id", "ds", pl.col("Base").clip(lower_bound=0))
    rows = reconciled.filter((pl.col("method") == method) & (pl.col("level") == level))
    return rows.join(clipped, on=["unique_id", "ds"]).sort("unique_id", "ds")


def assert_split_by_base_shares(reconciled, base, method: str, pairs: list[tuple[str, str]]) -> None:
    """Below the middle level, each child's share of its parent equals its share of the parent in the base forecasts
    (the total has no key column: its children share each period)."""
    for child, parent in pairs:
        rows = middle_rows(reconciled, base, method, child)
        assert rows.height > 0, (method, child)
        group = ["ds"] if parent == "total" else [parent, "ds"]
        shares = rows.with_columns(
            (pl.col("mean") / pl.col("mean").sum().over(group)).alias("share"),
            (pl.col("Base") / pl.col("Base").sum().over(group)).alias("base_share"),
        )
        np.testing.assert_allclose(shares["share"].to_numpy(), shares["base_share"].to_numpy(), atol=1e-9)


def test_middle_out_keeps_the_regions_and_splits_warehouses_and_skus_by_their_base_shares(three_stores):
    """The job's middle level is region: MiddleOut_BottomUp keeps the region Base and sums it to the total; every
    middle-out method splits warehouses from regions and SKUs from warehouses by base forecast proportions."""
    _, (_, base, reconciled) = three_stores
    assert_coherent(reconciled)
    warehouse_rows = reconciled.filter(pl.col("level") == "warehouse")
    warehouses = warehouse_rows.group_by("region").agg(pl.col("warehouse").n_unique())
    assert warehouses["warehouse"].max() == 2
    kept = middle_rows(reconciled, base, "MiddleOut_BottomUp", "region")
    np.testing.assert_allclose(kept["mean"].to_numpy(), kept["Base"].to_numpy(), rtol=1e-9)
    for method in AT_REGION:
        assert_split_by_base_shares(reconciled, base, method, SHARES)
    moved = middle_rows(reconciled, base, "MiddleOut_wls_var", "region")
    assert not np.allclose(moved["mean"].to_numpy(), kept["mean"].to_numpy())


def test_middle_out_at_the_warehouses(three_stores):
    """`MiddleOut_<upper>@warehouse`, in the same run: the 14 upper series reconciled among themselves (BottomUp keeps
    the warehouse Base, mint_shrink moves it), and only the SKUs split."""
    _, (_, base, reconciled) = three_stores
    kept = middle_rows(reconciled, base, "MiddleOut_BottomUp@warehouse", "warehouse")
    np.testing.assert_allclose(kept["mean"].to_numpy(), kept["Base"].to_numpy(), rtol=1e-9)
    region = middle_rows(reconciled, base, "MiddleOut_BottomUp", "region")
    summed = middle_rows(reconciled, base, "MiddleOut_BottomUp@warehouse", "region")
    assert not np.allclose(summed["mean"].to_numpy(), region["mean"].to_numpy())  # regions: warehouse sums now
    for method in AT_WAREHOUSE:
        assert_split_by_base_shares(reconciled, base, method, SHARES[1:])
    shrunk = middle_rows(reconciled, base, "MiddleOut_mint_shrink@warehouse", "warehouse")
    assert not np.allclose(shrunk["mean"].to_numpy(), kept["mean"].to_numpy())


def test_middle_out_from_the_total_is_top_down_by_base_shares(three_stores):
    """`MiddleOut_BottomUp@total` keeps the total Base and splits every level below by forecast proportions."""
    _, (_, base, reconciled) = three_stores
    assert_coherent(reconciled)
    kept = middle_rows(reconciled, base, "MiddleOut_BottomUp@total", "total")
    assert kept.height == 3
    np.testing.assert_allclose(kept["mean"].to_numpy(), kept["Base"].to_numpy(), rtol=1e-9)
    assert_split_by_base_shares(reconciled, base, "MiddleOut_BottomUp@total", [("region", "total"), *SHARES])


@pytest.mark.parametrize(
    ("method", "levels"),
    [("MiddleOut_wls_var", ("warehouse", "sku")), ("MiddleOut_BottomUp@total", ("region", "warehouse", "sku"))],
)
def test_middle_out_intervals_scale_with_the_mean(sparse_result, method, levels):
    _, base, reconciled = sparse_result
    for level in levels:
        rows = reconciled.filter((pl.col("method") == method) & (pl.col("level") == level))
        joined = rows.join(base.forecasts, on=["unique_id", "ds"]).filter(pl.col("Base") > 0)
        assert joined.height > 0, level
        factor = joined["mean"] / joined["Base"]
        np.testing.assert_allclose(joined["hi_95"], joined["Base-hi-95"].clip(lower_bound=0) * factor, rtol=1e-9)


def test_the_job_middle_level_and_an_at_level_give_the_same_reconciliation(sparse_result, inputs):
    """`middle_level: total` with MiddleOut_BottomUp is MiddleOut_BottomUp@total under another name."""
    job, *_ = inputs
    hierarchy, base, reconciled = sparse_result
    from_total = job.reconciliation.model_copy(
        update={"middle_level": "total", "methods": ["MiddleOut_BottomUp"], "publish": "MiddleOut_BottomUp"}
    )
    alone = reconciled_with(hierarchy, base, job.model_copy(update={"reconciliation": from_total}))
    keys = ["unique_id", "ds"]
    at_total = reconciled.filter(pl.col("method") == "MiddleOut_BottomUp@total").sort(keys)
    assert alone.sort(keys).drop("method", "published").equals(at_total.drop("method", "published"))


@pytest.mark.parametrize(
    ("methods", "expected"),
    [
        (["BottomUp", "MiddleOut_wls_var@warehouse"], True),
        (["BottomUp", "MiddleOut_mint_shrink@total"], True),
        (["BottomUp", "MiddleOut_BottomUp@warehouse", "MiddleOut_wls_struct@warehouse"], False),
    ],
)
def test_methods_at_another_level_that_estimate_variances_need_every_error_period(inputs, methods, expected):
    job, *_ = inputs
    spec = job.reconciliation.model_copy(update={"methods": methods, "publish": "BottomUp"})
    assert spec.estimates_from_errors is expected


def test_reconciliation_reruns_to_the_same_numbers(sparse_result, inputs):
    job = inputs[0]
    hierarchy, base, first = sparse_result
    again = reconciled_with(hierarchy, base, job)
    assert again.sort("unique_id", "ds", "method").equals(first.sort("unique_id", "ds", "method"))


def test_calibrating_on_the_complete_periods_only_changes_nothing(sparse_result, inputs):
    """reconcile passes the conformal sampler only the periods in which every series has an error; the library
    drops the others itself, so its intervals from every in-sample period must be the same, bit for bit."""
    from hierarchicalforecast.core import HierarchicalReconciliation

    from forecasting.models.base import BASE
    from forecasting.reconcile.methods import reconcilers

    job = inputs[0]
    hierarchy, base, reconciled = sparse_result
    labelled = reconcilers(job, sparse=True, n_series=hierarchy.members.height)
    every_period = (
        HierarchicalReconciliation(reconcilers=[r for _, r in labelled])
        .reconcile(
            Y_hat_df=base.forecasts.select("unique_id", "ds", pl.col(BASE).clip(lower_bound=0.0)),
            S_df=hierarchy.S,
            tags={level: np.asarray(ids) for level, ids in hierarchy.tags.items()},
            Y_df=base.calibration.select("unique_id", "ds", "y", BASE).drop_nulls(),
            level=job.levels,
            intervals_method="conformal",
            seed=job.seed,
        )
        .sort("unique_id", "ds")
    )
    means = [c for c in every_period.columns if c.startswith(f"{BASE}/") and "-lo-" not in c and "-hi-" not in c]
    for (label, _), column in zip(labelled, means, strict=True):
        ours = reconciled.filter(pl.col("method") == label).sort("unique_id", "ds")
        for lv in job.levels:
            for side in ("lo", "hi"):
                expected = every_period[f"{column}-{side}-{lv}"].clip(lower_bound=0.0)
                np.testing.assert_array_equal(ours[f"{side}_{lv}"].to_numpy(), expected.to_numpy())


def _mintrace(hierarchy, base, job, nonnegative) -> pl.DataFrame:
    """MinTrace wls_struct on the sparse S with `reconciliation.nonnegative` set to `nonnegative`."""
    spec = job.reconciliation.model_copy(update={"methods": ["MinTrace"], "nonnegative": nonnegative})
    run = job.model_copy(update={"reconciliation": spec})
    out = reconcile(hierarchy, base, run, sparse=True)
    return decorate_reconciled(hierarchy, base, out, run).sort("unique_id", "ds")


def test_qp_and_clip_both_give_coherent_non_negative_forecasts(sparse_result, inputs):
    """On 80 real SKUs the unconstrained MinTrace goes below zero; both non-negative methods fix it, differently."""
    job = inputs[0]
    hierarchy, base, _ = sparse_result
    free = _mintrace(hierarchy, base, job, False)
    assert free["mean"].min() < 0
    results = {method: _mintrace(hierarchy, base, job, method) for method in ("qp", "clip")}
    for out in results.values():
        assert_coherent(out)
        assert out["mean"].min() >= 0 and out.height == free.height
    assert np.abs(results["qp"]["mean"].to_numpy() - results["clip"]["mean"].to_numpy()).max() > 0.1
    # clip: the unconstrained bottom level, clipped at zero, summed up the tree
    sku = pl.col("level") == "sku"
    np.testing.assert_allclose(
        results["clip"].filter(sku)["mean"].to_numpy(), free.filter(sku)["mean"].clip(lower_bound=0).to_numpy()
    )


def test_clip_is_the_unconstrained_mintrace_when_nothing_is_negative(tmp_path):
    """On the 20 best-selling SKUs of two stores nothing goes negative: clip returns the unconstrained MinTrace
    exactly, and the QP's optimum is the same to its solver's tolerance."""
    items = duckdb.execute(
        "SELECT item_id FROM read_parquet(?) WHERE store_id IN ('CA_1', 'TX_1') GROUP BY item_id "
        "ORDER BY min(sales) DESC, item_id LIMIT 20",
        [str(M5_MONTHLY)],
    ).fetchall()
    bundled = load_job("m5-monthly").models.model_dump()  # with AutoARIMA, as the job file has it
    job = slice_job(tmp_path, sku_filter=[item for (item,) in items], models=bundled)
    loaded = load(job)
    hierarchy = aggregate(validate(loaded, job), job, sparse=True)
    base = base_forecasts(hierarchy, loaded.prices, job)
    free, clip, qp = (_mintrace(hierarchy, base, job, method) for method in (False, "clip", "qp"))
    assert free["mean"].min() > 0
    np.testing.assert_array_equal(clip["mean"].to_numpy(), free["mean"].to_numpy())
    np.testing.assert_allclose(qp["mean"].to_numpy(), free["mean"].to_numpy(), rtol=1e-5)


def test_the_direct_path_gives_the_library_reconcile_bit_for_bit(sparse_result, inputs):
    """reconcile_arrays hands hierarchicalforecast's reconcilers the arrays its HierarchicalReconciliation.reconcile
    would build (without its per-id Python checks): same means and intervals, bit for bit."""
    from hierarchicalforecast.core import HierarchicalReconciliation

    from forecasting.models.base import BASE

    job = inputs[0]
    spec = job.reconciliation.model_copy(update={"methods": ["BottomUp", "MinTrace_ols", "MinTrace_wls_struct"]})
    job = job.model_copy(update={"reconciliation": spec})
    hierarchy, base, _ = sparse_result
    y_hat = base.forecasts.select("unique_id", "ds", pl.col(BASE).clip(lower_bound=0.0))
    insample = calibration_periods(base.calibration.select("unique_id", "ds", "y", BASE).drop_nulls(), [BASE])
    ours = rec.reconcile_arrays(hierarchy, y_hat, insample, reconcilers(job, sparse=True), job)
    library = HierarchicalReconciliation(reconcilers=[r for _, r in reconcilers(job, sparse=True)]).reconcile(
        Y_hat_df=y_hat,
        S_df=hierarchy.S,
        tags=tag_arrays(hierarchy),
        Y_df=insample,
        level=job.levels,
        intervals_method="conformal",
        seed=job.seed,
        is_balanced=True,
    )
    assert ours.width == library.width and ours.height == library.height
    for mine, theirs in zip(ours.columns, library.columns, strict=True):
        np.testing.assert_array_equal(ours[mine].to_numpy(), library[theirs].to_numpy(), err_msg=f"{mine} / {theirs}")
