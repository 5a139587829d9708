"""Scale benchmark (a script, not a test): the nightly job on synthetic weekly data at growing sizes.

    python -m benchmarks.scale_benchmark --series 10000 100000 1000000

For each size it writes (once) a seeded synthetic history under data/synthetic/bench-<n>-<periods>w/
(forecasting.data.synthetic, no prices file), then runs the whole job (load -> validate -> aggregate -> base_forecasts
-> reconcile -> prepare outputs -> write) in a fresh child process, so one size's memory does not colour the next,
and prints stage, seconds, peak RSS of the process tree and series per second. Models: a baseline set through
statsforecast (SeasonalNaive and Naive per SKU; AutoETS, SeasonalNaive, Naive on the aggregates), BottomUp and
non-negative MinTrace wls_struct on the sparse S (`--nonnegative clip` by default, `qp` for the QP); `--lightgbm`
adds the global LightGBM at SKU level.

Last, `--throughput-series` series go through statsforecast's own published experiment (experiments/
benchmarks_at_scale in the statsforecast repository: generate_series(min_length=20, max_length=100), 9 baseline
models, cross_validation(h=7, test_size=13) = 7 windows) to set its per-core fit rate on this machine beside the
published one: 1,000,000 series in 4.81 min on 128 CPUs, i.e. 1e6 x 7 windows x 10 models / (288.6 s x 128) = 1,895
model fits per core-second as the README counts them (10 models), 1,706 with the 9 the script runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import psutil

from forecasting.data import synthetic
from forecasting.job.common import project_root
from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec

CALIBRATION_WINDOW = 26  # conformal intervals calibrated on the last 26 weeks every series has fits for
NONNEGATIVE = "clip"  # reconcile unconstrained, clip and sum up only if a bottom value is negative (docs/scale.md)
ROWS_PER_PARTITION = 5_000_000  # local engine: series are fitted in groups of about this many history rows
PUBLISHED = {"series": 1_000_000, "minutes": 4.81, "cpus": 128, "windows": 7, "models_counted": 10, "models_run": 9}


def published_rate(models: int) -> float:
    """statsforecast's published model fits per core-second, counting `models` models per series and window."""
    p = PUBLISHED
    return p["series"] * p["windows"] * models / (p["minutes"] * 60 * p["cpus"])


def history_rules(periods: int) -> tuple[int, int]:
    """(season_length, min_history) for `periods` weeks: yearly seasonality when two years fit, else half the
    history (a short-history run keeps the same code path, with a shorter season). Every series gets more periods
    than a season: statsforecast 2.1.1's SeasonalNaive fails on a series of exactly one season when asked for
    fitted intervals (no residuals, an int sigma)."""
    if periods >= 104:
        return 52, min(60, periods - 1)
    season = max(2, periods // 2)
    return season, min(periods - 1, season + max(2, season // 2))


def data_dir(series: int, periods: int) -> Path:
    # "-launches": the generator's 2 % new products (launched in the last 1..min_history weeks) since issue 35; an
    # older folder without them is not reused.
    return project_root() / "data" / "synthetic" / f"bench-{series}-{periods}w-launches"


def ensure_data(series: int, periods: int, seed: int = 0) -> Path:
    folder = data_dir(series, periods)
    if not (folder / "sales.parquet").exists():
        min_history = history_rules(periods)[1]
        spec = synthetic.SyntheticSpec(
            series=series, freq="week", periods=periods, seed=seed, prices=False, min_history=min_history
        )
        start = time.perf_counter()
        counts = synthetic.write(spec, folder)
        print(f"wrote {folder} ({counts['sales']:,} rows) in {time.perf_counter() - start:.0f} s", flush=True)
    return folder


def bench_job(
    folder: Path,
    series: int,
    periods: int,
    lightgbm: bool,
    n_jobs: int,
    engine: dict | None,
    nonnegative: str = NONNEGATIVE,
) -> JobSpec:
    """The synthetic-weekly job pointed at `folder`, with the baseline model set (and LightGBM if asked)."""
    base = load_job("synthetic-weekly").model_dump(mode="json")
    spec = synthetic.SyntheticSpec(series=series, periods=periods)
    bottom = ["SeasonalNaive", "Naive", *(["LightGBM"] if lightgbm else [])]
    base.update(
        name=f"synthetic-bench-{series}",
        n_jobs=n_jobs,
        season_length=history_rules(periods)[0],
        min_history=history_rules(periods)[1],
        source=base["source"]
        | {
            "sales": base["source"]["sales"] | {"path": str(folder / "sales.parquet")},
            "prices": None,
            "calendar": None,
            "observed_from": synthetic.START.isoformat(),
            "observed_to": spec.last_day.isoformat(),
        },
        reconciliation=base["reconciliation"] | {"calibration_window": CALIBRATION_WINDOW, "nonnegative": nonnegative},
        models=base["models"]
        | {
            "aggregate_models": ["AutoETS", "SeasonalNaive", "Naive"],
            "bottom_models": bottom,
            "primary": {"total": "AutoETS", "region": "AutoETS", "warehouse": "AutoETS", "sku": bottom[-1]},
            "intermittent_model": None,
        },
    )
    if engine:
        base["engine"] = engine
    return JobSpec.model_validate(base)


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """In the child process: the job's stages in run_job's order (pipeline.py), each reported on stdout as it ends,
    so a run stopped by the memory cap still shows how far it got."""
    from benchmarks.benchmark import TreeRSS, stage_recorder
    from forecasting import pipeline

    warnings.filterwarnings("ignore")
    folder = data_dir(args.one, args.periods)
    engine = {"kind": args.engine, "scheduler": args.scheduler, "partitions": args.partitions}
    job = bench_job(folder, args.one, args.periods, args.lightgbm, args.n_jobs, engine, args.nonnegative)
    stages: list[dict[str, Any]] = []

    with TreeRSS(interval=0.2) as sampler:
        stage = stage_recorder(sampler, stages)
        cpu, start = sampler.cpu_seconds(), time.perf_counter()
        loaded = stage("load", pipeline.load, job)
        validated = stage("validate", pipeline.validate, loaded, job)
        loaded.history = loaded.history.clear()  # as run_job does
        hierarchy = stage("aggregate", pipeline.aggregate, validated, job)
        validated.history = validated.history.clear()  # as run_job does
        base = stage("base_forecasts", pipeline.base_forecasts, hierarchy, None, job)
        hierarchy.Y_df = hierarchy.Y_df.clear()  # as run_job does
        reconciled = stage("reconcile", pipeline.reconcile, hierarchy, base, job)
        base.fitted = base.calibration = base.fitted.clear()  # as run_job does
        staffing = stage("staff", pipeline.staff, hierarchy, base, reconciled, job)
        tables = stage("prepare outputs", pipeline.output_tables, hierarchy, base, reconciled, staffing, job)
        summary = pipeline.summarize(hierarchy, validated, base, job, reconciled)
        run_dir = stage("write", pipeline.write, job, loaded.as_of, tables, stages, summary)
        end = time.perf_counter()
        cpu = sampler.cpu_seconds() - cpu
    total = {"stage": "total", "seconds": round(end - start, 1), "cpu_seconds": round(cpu, 1)}
    stages.append(total | {"rss_mb": sampler.peak_mb(start, end)})
    series = sum(summary["series_per_level"].values())
    new = summary["new_series"]
    return {"bottom": args.one, "series": series, "stages": stages, "run_dir": str(run_dir), "new_series": new}


def run_child(command: list[str], max_rss_gb: float) -> tuple[int, str, str, float]:
    """Run a size in a child process; stop it (and only it, by pid) if its process tree passes `max_rss_gb`, so a
    size that does not fit fails alone instead of pushing the machine into swap or the OOM killer."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=project_root())
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("STAGE "):
                print("  " + line.strip(), flush=True)  # progress: a long size shows how far it got

    reader = threading.Thread(target=read, daemon=True)
    errors: list[str] = []
    err_reader = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    err_reader.start()
    peak, me = 0.0, psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            rss = sum(p.memory_info().rss for p in [me, *me.children(recursive=True)]) / 2**30
        except psutil.Error:
            rss = 0.0
        peak = max(peak, rss)
        if rss > max_rss_gb:
            for child in me.children(recursive=True):
                child.kill()
            proc.kill()
            errors.append(f"stopped by the benchmark: process tree at {rss:.1f} GB > --max-rss-gb {max_rss_gb}")
            break
        time.sleep(0.5)
    proc.wait()
    reader.join(5)
    err_reader.join(5)
    return proc.returncode, "".join(lines), "".join(errors), peak


def machine_line(history: str, n_jobs: int) -> str:
    """The header every size table starts with: the machine, its load, the history and the pool size."""
    return (
        f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; load average "
        f"{os.getloadavg()[0]:.1f}; {history} of history; n_jobs={n_jobs}"
    )


def run_size(n: int, command: list[str], max_rss_gb: float) -> dict[str, Any] | None:
    """One size in its child process (run_child): its RESULT, or None after printing why it failed (exit code,
    time, the process tree's peak, the stages it finished and the end of its stderr)."""
    started = time.perf_counter()
    code, out, err, peak = run_child(command, max_rss_gb)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if code or not lines:
        done = [json.loads(line.removeprefix("STAGE ")) for line in out.splitlines() if line.startswith("STAGE ")]
        print(
            f"{n:,} series FAILED (exit {code}) after {time.perf_counter() - started:.0f} s, process tree peak "
            f"{peak:.1f} GB; stages done: {done}\n{err[-2000:]}",
            flush=True,
        )
        return None
    return json.loads(lines[-1].removeprefix("RESULT "))


def throughput(n_series: int, n_jobs: int) -> dict[str, float]:
    """statsforecast's benchmarks_at_scale experiment on `n_series` series: model fits per core-second here."""
    from statsforecast import StatsForecast
    from statsforecast.models import (
        ADIDA,
        IMAPA,
        CrostonClassic,
        HistoricAverage,
        Naive,
        SeasonalExponentialSmoothing,
        SeasonalNaive,
        SeasonalWindowAverage,
        WindowAverage,
    )
    from statsforecast.utils import generate_series

    from forecasting.models.statistical import worker_processes_from_forkserver

    series = generate_series(n_series=n_series, seed=1, min_length=20, max_length=100, equal_ends=True)
    models = [
        CrostonClassic(),
        SeasonalNaive(season_length=7),
        Naive(),
        ADIDA(),
        HistoricAverage(),
        SeasonalWindowAverage(season_length=7, window_size=4),
        IMAPA(),
        WindowAverage(window_size=7),
        SeasonalExponentialSmoothing(season_length=7, alpha=0.9),
    ]
    sf = StatsForecast(models=models, freq="D", n_jobs=n_jobs)
    with worker_processes_from_forkserver():
        start = time.perf_counter()
        sf.cross_validation(df=series, h=7, test_size=13)
        seconds = time.perf_counter() - start
    fits = n_series * 7 * len(models)
    return {"series": n_series, "seconds": seconds, "cores": n_jobs, "fits": fits, "rate": fits / (seconds * n_jobs)}


def print_table(results: list[dict[str, Any]]) -> None:
    for res in results:
        new = res.get("new_series") or {}
        print(f"{res['bottom']:,} bottom series: {new.get('count', 0):,} new, served by {new.get('served_by', {})}")
    print(
        "| bottom series | all series | stage | seconds | CPU seconds (user + sys, process tree) "
        "| peak RSS (MB, process tree) | series / s |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|")
    for res in results:
        for row in res["stages"]:
            rate = res["series"] / row["seconds"] if row["seconds"] > 0 else float("inf")
            cpu = f"{row['cpu_seconds']:.1f}" if "cpu_seconds" in row else "-"
            print(
                f"| {res['bottom']:,} | {res['series']:,} | {row['stage']} | {row['seconds']:.1f} | {cpu} | "
                f"{row['rss_mb']:,.0f} | {rate:,.0f} |"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--periods", type=int, default=104, help="weeks of history")
    parser.add_argument("--lightgbm", action="store_true", help="add the global LightGBM at SKU level")
    parser.add_argument("--n-jobs", type=int, default=psutil.cpu_count() or 2)
    parser.add_argument("--engine", choices=["local", "dask"], default="local")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address (engine dask)")
    parser.add_argument("--throughput-series", type=int, default=10_000, help="0 to skip")
    parser.add_argument("--max-rss-gb", type=float, default=20.0, help="stop a size whose process tree passes this")
    parser.add_argument(
        "--partitions", type=int, default=None, help="engine partitions (default: local, one per 5M history rows)"
    )
    parser.add_argument(
        "--nonnegative", choices=["qp", "clip"], default=NONNEGATIVE, help="reconciliation.nonnegative of the job"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size
    args = parser.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_one(args)), flush=True)
        return
    print(machine_line(f"{args.periods} weeks", args.n_jobs), flush=True)
    results = []
    for n in args.series:
        ensure_data(n, args.periods)
        command = [sys.executable, "-m", "benchmarks.scale_benchmark", "--one", str(n), "--periods", str(args.periods)]
        rows = n * args.periods
        partitions = args.partitions or (max(1, -(-rows // ROWS_PER_PARTITION)) if args.engine == "local" else None)
        command += ["--n-jobs", str(args.n_jobs), "--engine", args.engine, "--nonnegative", args.nonnegative]
        command += ["--partitions", str(partitions)] if partitions else []
        command += (["--lightgbm"] if args.lightgbm else []) + (
            ["--scheduler", args.scheduler] if args.scheduler else []
        )
        if (result := run_size(n, command, args.max_rss_gb)) is not None:
            results.append(result)
            print_table(results[-1:])
    print("\nAll sizes:")
    print_table(results)
    if args.throughput_series:
        res = throughput(args.throughput_series, args.n_jobs)
        print(
            f"\nstatsforecast benchmarks_at_scale design (9 baseline models, 7 CV windows) on {res['series']:,} "
            f"series: {res['seconds']:.1f} s on {res['cores']} cores = {res['rate']:,.0f} model fits per core-second; "
            f"published: {published_rate(PUBLISHED['models_counted']):,.0f} (as counted, 10 models) / "
            f"{published_rate(PUBLISHED['models_run']):,.0f} (9 models run) on {PUBLISHED['cpus']} CPUs"
        )


if __name__ == "__main__":
    main()
