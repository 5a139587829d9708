from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from support import slice_job

from forecasting.data.hierarchy import build_hierarchy, complete_periods
from forecasting.pipeline import load, validate


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    job = slice_job(tmp_path_factory.mktemp("hier"))
    return job, validate(load(job), job)


def test_partial_months_are_dropped(validated):
    job, checked = validated
    assert checked.periods.dropped == ["2011-01-01 (3/31 days)", "2016-04-01 (24/30 days)"]
    assert (checked.periods.kept_from, checked.periods.kept_to) == (date(2011, 2, 1), date(2016, 3, 1))


def test_prorate_scales_partial_source_months_but_never_the_as_of_month(tmp_path):
    job = slice_job(tmp_path, incomplete_periods="prorate")
    loaded = load(job)
    history, report = complete_periods(loaded.history, job)
    assert report.prorated == ["2011-01-01 (3/31 days)"]
    assert report.dropped == ["2016-04-01 (24/30 days)"]  # cut by the as-of date: its rows may hold later days
    raw = loaded.history.filter(pl.col("ds") == date(2011, 1, 1))["y"].sum()
    scaled = history.filter(pl.col("ds") == date(2011, 1, 1))["y"].sum()
    assert scaled == pytest.approx(raw * 31 / 3)


def test_levels_and_sums(validated):
    job, checked = validated
    hierarchy = build_hierarchy(checked.history, job.hierarchy)
    counts = {level: len(ids) for level, ids in hierarchy.tags.items()}
    assert counts == {"total": 1, "region": 2, "warehouse": 2, "sku": 80}
    y = hierarchy.Y_df
    total = y.filter(pl.col("unique_id") == "total").sort("ds")["y"].to_numpy()
    bottom = checked.history.group_by("ds").agg(pl.col("y").sum()).sort("ds")["y"].to_numpy()
    np.testing.assert_allclose(total, bottom)
    members = hierarchy.members.filter(pl.col("unique_id") == "total/CA/CA_1")
    assert members.select("level", "region", "warehouse").row(0) == ("warehouse", "CA", "CA_1")


def test_sparse_and_dense_summing_matrices_agree(validated):
    job, checked = validated
    sparse = build_hierarchy(checked.history, job.hierarchy, sparse=True)
    dense = build_hierarchy(checked.history, job.hierarchy, sparse=False)
    dense_values = dense.S.drop("unique_id").to_numpy()
    np.testing.assert_array_equal(sparse.S.to_dense(), dense_values)
    assert sparse.Y_df.equals(dense.Y_df)


def test_same_levels_as_aggregate_on_the_whole_history():
    """build_hierarchy calls aggregate() on one row per bottom series and sums the history itself: the result must
    be aggregate()'s on the whole history, bit for bit (tourism: fractional trips, where summation order shows)."""
    from hierarchicalforecast.utils import aggregate

    from forecasting.data.hierarchy import TOTAL
    from forecasting.job.loading import load_job

    job = load_job("tourism")
    history = validate(load(job), job).history
    ours = build_hierarchy(history, job.hierarchy, sparse=True)
    spec = job.hierarchy
    whole = history.with_columns(pl.col(spec.columns).cast(pl.String), pl.lit(TOTAL).alias(TOTAL))
    Y_df, S, tags = aggregate(whole, [[TOTAL, *keys] for keys in spec.levels.values()], sparse_s=True)
    assert ours.Y_df.equals(Y_df)
    np.testing.assert_array_equal(ours.S.to_dense(), S.to_dense())
    assert list(ours.S.row_labels) == list(S.row_labels) and list(ours.S.col_labels) == list(S.col_labels)
    assert {level: list(ids) for level, ids in ours.tags.items()} == {
        level: list(tags["/".join([TOTAL, *keys])]) for level, keys in spec.levels.items()
    }
