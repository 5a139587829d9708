"""The reference benchmarks' tables (benchmarks.reference_tables) on a real nested backtest of a monthly slice, and
the benchmark scripts themselves (slow)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from support import slice_job

from benchmarks.reference_tables import interval_table, per_window, ratio_table, scored
from forecasting.pipeline import backtest_job


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    job = slice_job(tmp_path_factory.mktemp("reference"), n_items=15, backtest={"windows": 4, "nested_windows": 2})
    _, result = backtest_job(job)
    cutoffs = sorted(result.reconciled["cutoff"].unique().to_list())
    return job, result, cutoffs[-2:]


def test_the_ratio_table_is_the_mean_over_the_nested_windows(nested):
    job, result, windows = nested
    means = scored(result.window_metrics, windows)
    table = ratio_table(means, "rmsse", job.hierarchy.names, ["SeasonalNaive", "CrostonSBA", "LightGBM"])
    rows = result.window_metrics.filter(pl.col("cutoff").is_in(windows))
    for level in job.hierarchy.names:
        row = table.filter(pl.col("level") == level).row(0, named=True)
        published = rows.filter((pl.col("level") == level) & (pl.col("model") == "nested"))["rmsse"]
        naive = rows.filter((pl.col("level") == level) & (pl.col("model") == "SeasonalNaive"))["rmsse"]
        assert published.len() == naive.len() == 2
        assert row["published (nested)"] == pytest.approx(published.mean())
        assert row["published / sNaive"] == pytest.approx(published.mean() / naive.mean())
        singles = rows.filter((pl.col("level") == level) & pl.col("model").is_in(["SeasonalNaive", "LightGBM"]))
        best = singles.group_by("model").agg(pl.col("rmsse").mean())["rmsse"].min()
        assert row["best single model (hindsight)"] <= best + 1e-12
    # The level table's nested score is over the nested windows only: its MAE is their mean (window MAEs are means
    # over the same series, so the mean of means is the mean).
    level_table = result.metrics.filter((pl.col("kind") == "published") & (pl.col("model") == "nested"))
    assert (level_table["windows"] == 2).all()
    ours = means.filter(pl.col("model") == "nested").select("level", pl.col("mae").alias("ours"))
    joined = level_table.join(ours, on="level")
    assert joined.height == len(job.hierarchy.names)
    np.testing.assert_allclose(joined["mae"].to_numpy(), joined["ours"].to_numpy(), rtol=1e-9)


def test_interval_and_window_tables(nested):
    job, result, windows = nested
    means = scored(result.window_metrics, windows)
    intervals = interval_table(means, job.hierarchy.names)
    assert intervals["coverage 80"].is_between(0, 1).all() and (intervals["WSPL"] > 0).all()
    wide = per_window(result.window_metrics, "rmsse", job.hierarchy.names, windows)
    assert wide.height == 2 and set(wide.columns) == {"cutoff", *job.hierarchy.names}


@pytest.mark.slow
def test_the_tourism_benchmark_runs_and_writes_its_tables(tmp_path):
    """python -m benchmarks.reference tourism: its nested backtest and every table (about 10 min), under --output."""
    import subprocess
    import sys

    from forecasting.job.common import project_root

    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.reference", "tourism", "--output", str(tmp_path)],
        cwd=project_root(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "beats fpp3's best column" in done.stdout and "published / sNaive" in done.stdout
    assert (tmp_path / "tourism-results.md").read_text().strip() in done.stdout
