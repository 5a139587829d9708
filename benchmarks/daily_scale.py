"""Scale benchmark of the daily SKU job (a script, not a test): synthetic daily SKU x warehouse data at growing
sizes through the m5-daily-sku model set, inventory quantities included.

    nice python -m benchmarks.daily_scale --series 30490 [300000] [--days 730] [--data DIR]

For each size it writes (once) a seeded synthetic daily history with weekly prices under DIR (default: a folder in
the system's temporary directory; forecasting.data.synthetic --freq day), then runs the nightly job's stages in a
fresh child process (benchmarks.scale_benchmark.run_size: one size's memory does not colour the next, a size past
--max-rss-gb is stopped alone) and prints stage, seconds and peak RSS of the process tree. Models, as in
m5-daily-sku: the global LightGBM (tweedie; price, price change, weekday, lags 28..56 and rolling means 28 back) and
the intermittent CrostonSBA and TSB at SKU level (sparse SKUs get CrostonSBA), AutoETS and SeasonalNaive on the
aggregates; BottomUp and MinTrace wls_struct; reorder points at 90/95 % for a 7-day lead time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import psutil

from benchmarks.scale_benchmark import ROWS_PER_PARTITION, machine_line, print_table, run_size
from forecasting.data import synthetic
from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec

MIN_HISTORY = 120  # days: the LightGBM's longest lag (56) + its 2 conformal windows of 28 days, and a margin


def data_dir(root: Path, series: int, days: int) -> Path:
    return root / f"daily-{series}-{days}d"


def ensure_data(root: Path, series: int, days: int, seed: int = 0) -> Path:
    folder = data_dir(root, series, days)
    if not (folder / "sales.parquet").exists():
        spec = synthetic.SyntheticSpec(series=series, freq="day", periods=days, seed=seed, min_history=MIN_HISTORY)
        start = time.perf_counter()
        counts = synthetic.write(spec, folder)
        print(f"wrote {folder} ({counts['sales']:,} rows) in {time.perf_counter() - start:.0f} s", flush=True)
    return folder


def bench_job(folder: Path, series: int, days: int, n_jobs: int) -> JobSpec:
    """The synthetic job made daily with m5-daily-sku's model set (fewer trees), pointed at `folder`."""
    base = load_job("synthetic-weekly").model_dump(mode="json")
    spec = synthetic.SyntheticSpec(series=series, freq="day", periods=days)
    source = base["source"]
    base.update(
        name=f"synthetic-daily-bench-{series}",
        freq="day",
        horizon=28,
        season_length=7,
        min_history=MIN_HISTORY,
        n_jobs=n_jobs,
        output_root=str(folder / "outputs"),
        source=source
        | {
            "sales": source["sales"] | {"path": str(folder / "sales.parquet")},
            "prices": source["prices"] | {"path": str(folder / "prices.parquet")},
            "calendar": source["calendar"] | {"path": str(folder / "calendar.parquet")},
            "observed_from": synthetic.START.isoformat(),
            "observed_to": spec.last_day.isoformat(),
        },
        reconciliation=base["reconciliation"] | {"nonnegative": "clip"},
        models=base["models"]
        | {
            "aggregate_models": ["AutoETS", "SeasonalNaive"],
            "bottom_models": ["LightGBM", "CrostonSBA", "TSB"],
            "intermittent_model": "CrostonSBA",
            "primary": {"total": "AutoETS", "region": "AutoETS", "warehouse": "AutoETS", "sku": "LightGBM"},
            "automatic_combinations": False,
            "choose_from_backtest": False,
            "conformal_windows": 2,
            "lightgbm": {
                "objective": "tweedie",
                "n_estimators": 100,
                "lags": [28, 35, 42, 49, 56],
                "rolling_windows": [7, 28],
                "rolling_lag": 28,
            },
        },
        inventory={"service_levels": [0.9, 0.95], "lead_time": 7, "samples": 1000},
        # statsforecast's local models over groups of series one after another, as the weekly scale benchmark runs
        # them: the same forecasts, a lower peak (forecasting.models.engines.partitioned_statistical_forecast; 30,490
        # SKUs in one call held 8 GB, docs/scale.md).
        engine={"kind": "local", "partitions": max(1, -(-series * days // ROWS_PER_PARTITION))},
    )
    return JobSpec.model_validate(base)


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """In the child process: run_job's stages in its order, each reported on stdout as it ends."""
    from benchmarks.benchmark import TreeRSS, stage_recorder
    from forecasting import pipeline

    warnings.filterwarnings("ignore")
    job = bench_job(data_dir(Path(args.data), args.one, args.days), args.one, args.days, args.n_jobs)
    stages: list[dict[str, Any]] = []

    with TreeRSS(interval=0.2) as sampler:
        stage = stage_recorder(sampler, stages)
        cpu, start = sampler.cpu_seconds(), time.perf_counter()
        loaded = stage("load", pipeline.load, job)
        validated = stage("validate", pipeline.validate, loaded, job)
        loaded.history = loaded.history.clear()
        hierarchy = stage("aggregate", pipeline.aggregate, validated, job)
        validated.history = validated.history.clear()
        base = stage("base_forecasts", pipeline.base_forecasts, hierarchy, loaded.prices, job, loaded.calendar)
        hierarchy.Y_df = hierarchy.Y_df.clear()
        reconciled = stage("reconcile", pipeline.reconcile, hierarchy, base, job)
        base.fitted = base.calibration = base.fitted.clear()
        staffing = stage("staff", pipeline.staff, hierarchy, base, reconciled, job)
        stock = stage("inventory", pipeline.inventory, hierarchy, base, reconciled, job)
        tables = stage("prepare outputs", pipeline.output_tables, hierarchy, base, reconciled, staffing, job, stock)
        summary = pipeline.summarize(hierarchy, validated, base, job, reconciled)
        run_dir = stage("write", pipeline.write, job, loaded.as_of, tables, stages, summary)
        end = time.perf_counter()
        cpu = sampler.cpu_seconds() - cpu
    total = {"stage": "total", "seconds": round(end - start, 1), "cpu_seconds": round(cpu, 1)}
    stages.append(total | {"rss_mb": sampler.peak_mb(start, end)})
    series = sum(summary["series_per_level"].values())
    return {"bottom": args.one, "series": series, "stages": stages, "run_dir": str(run_dir)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, nargs="*", default=[30_490])
    parser.add_argument("--days", type=int, default=730, help="days of history")
    parser.add_argument("--n-jobs", type=int, default=psutil.cpu_count() or 2)
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "forecasting-daily-bench"))
    parser.add_argument("--max-rss-gb", type=float, default=12.0, help="stop a size whose process tree passes this")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size
    args = parser.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_one(args)), flush=True)
        return
    print(machine_line(f"{args.days} days", args.n_jobs), flush=True)
    for n in args.series:
        ensure_data(Path(args.data), n, args.days)
        command = [sys.executable, "-m", "benchmarks.daily_scale", "--one", str(n), "--days", str(args.days)]
        command += ["--n-jobs", str(args.n_jobs), "--data", args.data]
        if (result := run_size(n, command, args.max_rss_gb)) is not None:
            print_table([result])
        print(f"load average at the end {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
