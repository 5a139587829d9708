"""Contract tests: every reconciliation method a job can name (every family of the catalogue,
forecasting.job.catalogue.RECONCILERS, with each of its variants) reconciles the same real base forecasts into a
coherent, non-negative forecast of every series, with ordered intervals, the same numbers twice, and does so on the
shortest calibration set a run accepts."""

from __future__ import annotations

from typing import get_args

import polars as pl
import pytest
from support import assert_coherent, slice_job

from forecasting.job.catalogue import RECONCILERS
from forecasting.job.reconciliation import MIDDLE_OUT, PLAIN_METHODS, MinTraceVariant, UpperReconciler
from forecasting.models.base import BASE
from forecasting.outputs.tables import decorate_reconciled
from forecasting.pipeline import aggregate, base_forecasts, load, reconcile, validate
from forecasting.reconcile import methods

LABELS = ["BottomUp", *(f"MinTrace_{v}" for v in get_args(MinTraceVariant))]
LABELS += [f"{MIDDLE_OUT}{upper}" for upper in get_args(UpperReconciler)]


@pytest.fixture(scope="module")
def based(tmp_path_factory):
    """Real base forecasts of a monthly slice (3 stores x 15 items; cheap models) and the hierarchy they are of."""
    job = slice_job(tmp_path_factory.mktemp("methods"), stores=("CA_1", "CA_2", "TX_1"), n_items=15)
    spec = job.models.model_copy(
        update={
            "aggregate_models": ["SeasonalNaive", "AutoETS"],
            "bottom_models": ["SeasonalNaive", "CrostonSBA"],
            "combinations": {},
            "intermittent_model": "CrostonSBA",
            "primary": {level: "SeasonalNaive" for level in job.hierarchy.names} | {"total": "AutoETS"},
        }
    )
    job = job.model_copy(update={"models": spec})
    loaded = load(job)
    hierarchy = aggregate(validate(loaded, job), job)
    return job, hierarchy, base_forecasts(hierarchy, loaded.prices, job)


def with_method(job, label: str):
    spec = job.reconciliation.model_copy(update={"methods": [label], "publish": label})
    return job.model_copy(update={"reconciliation": spec})


def test_every_family_in_the_catalogue_is_a_method_a_job_can_name():
    assert {methods.family(label) for label in LABELS} == set(RECONCILERS)
    assert set(LABELS) <= set(PLAIN_METHODS)
    for label in LABELS:
        assert callable(methods.builder(label)), label


@pytest.mark.parametrize("label", LABELS)
def test_method_contract(based, label):
    job, hierarchy, base = based
    job = with_method(job, label)
    reconciled = reconcile(hierarchy, base, job)
    assert set(reconciled["method"]) == {label}
    assert set(reconciled["unique_id"]) == set(hierarchy.members["unique_id"])
    assert reconciled.group_by("unique_id").len()["len"].unique().to_list() == [job.horizon]
    assert_coherent(decorate_reconciled(hierarchy, base, reconciled, job), atol=1e-4)
    bounds = [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]
    assert reconciled.select(pl.min_horizontal("mean", *bounds).min()).item() >= 0
    assert reconciled.select(pl.any_horizontal(pl.col("mean", *bounds).is_null()).any()).item() is False
    r = reconciled
    assert (
        (r["lo_95"] <= r["lo_80"] + 1e-9) & (r["lo_80"] <= r["hi_80"] + 1e-9) & (r["hi_80"] <= r["hi_95"] + 1e-9)
    ).all()
    assert reconcile(hierarchy, base, job).equals(reconciled)  # the same numbers twice


@pytest.mark.parametrize("label", LABELS)
def test_method_reconciles_on_the_shortest_calibration_set(based, label):
    """Two periods of errors per series, the fewest a run calibrates on (reconcile.calibration.out_of_sample_errors):
    the methods that estimate variances from them still give a full, coherent forecast."""
    job, hierarchy, base = based
    job = with_method(job, label)
    last = base.calibration.filter(pl.col(BASE).is_not_null())["ds"].unique().sort().tail(2)
    short = base.calibration.filter(pl.col("ds").is_in(last.implode()))
    shortened = type(base)(**{**base.__dict__, "calibration": short, "notes": []})
    reconciled = reconcile(hierarchy, shortened, job)
    assert set(reconciled["unique_id"]) == set(hierarchy.members["unique_id"])
    # The library's non-negative mint_shrink is ill-conditioned on 2 periods of these errors (3 work): it falls back
    # to wls_struct, and the run says so; every other method reconciles as asked.
    assert bool(shortened.notes) == ("mint_shrink" in label), shortened.notes
    if shortened.notes:
        assert "ill-conditioned" in shortened.notes[0] and "MinTrace_wls_struct was used instead" in shortened.notes[0]
    assert_coherent(decorate_reconciled(hierarchy, shortened, reconciled, job), atol=1e-4)
