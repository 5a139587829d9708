"""Every stage's rows, series, seconds and peak memory are recorded in the manifest (the flow also logs them to the
Prefect run log: see test_deployment)."""

from __future__ import annotations

from forecasting.outputs.runs import read_manifest

STAGES = ["load", "validate", "aggregate", "base_forecasts", "reconcile", "staff", "prepare outputs"]


def test_manifest_has_rows_series_seconds_and_peak_memory_per_stage(slice_run):
    job, result = slice_run
    timings = {row["stage"]: row for row in read_manifest(result.run_dir)["timings"]}
    assert list(timings)[: len(STAGES)] == STAGES
    for stage in STAGES:
        row = timings[stage]
        assert row["rows"] > 0 and row["seconds"] >= 0 and row["peak_rss_mb"] > 0, row
    series = sum(result.summary["series_per_level"].values())
    assert timings["aggregate"]["series"] == timings["base_forecasts"]["series"] == series
    assert timings["load"]["series"] == timings["validate"]["series"] == result.summary["series_per_level"]["sku"]
    assert timings["base_forecasts"]["rows"] == series * job.horizon
