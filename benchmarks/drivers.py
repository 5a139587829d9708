"""What drivers cost (a script, not a test): `python -m benchmarks.drivers [--job m5-monthly]`.

Runs the job twice, each in a fresh process writing into a temporary folder: with `drivers: false`, then with
`drivers: true` (TreeSHAP on every LightGBM forecast, MSTL components, drivers.parquet). Prints the run's own stage
table for both (stage, seconds, peak RSS) and the whole process tree's wall time and peak RSS, with what drivers
add. Targets (issue 36), on m5-monthly: at most +15 % time and +10 % peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks.benchmark import watched_run


def child(job_name: str, drivers: bool, out: str) -> None:
    """One run in this process; prints its stage rows as JSON on the last line."""
    from forecasting.job.loading import load_job
    from forecasting.pipeline import run_job

    warnings.simplefilter("ignore")
    job = load_job(job_name).model_copy(update={"drivers": drivers, "output_root": out})
    result = run_job(job)
    rows = pl_rows(result.run_dir / "drivers.parquet")
    print(json.dumps({"timings": result.timings, "seconds": result.seconds, "driver_rows": rows}))


def pl_rows(path: Path) -> int:
    import polars as pl

    return pl.scan_parquet(path).select(pl.len()).collect().item() if path.exists() else 0


def measured(job_name: str, drivers: bool) -> tuple[float, float, dict, float]:
    """(wall seconds, peak RSS MB of the process tree, the child's JSON, CPU seconds of the tree) of one run in a
    fresh process. CPU seconds (user + system, the run and its worker processes) are what the run costs when other
    work shares the cores; wall seconds are what it took on this machine at that moment."""

    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "benchmarks.drivers", "--child", "on" if drivers else "off", "--out", tmp]
        start = time.perf_counter()
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out, peak = watched_run([*command, "--job", job_name])
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = cpu.ru_utime + cpu.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    return time.perf_counter() - start, peak, json.loads(out.strip().splitlines()[-1]), cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job", default="m5-monthly")
    parser.add_argument("--child", choices=["on", "off"])
    parser.add_argument("--out")
    parser.add_argument("--with-only", action="store_true", help="only the run with drivers (one table column)")
    args = parser.parse_args()
    if args.child:
        child(args.job, args.child == "on", args.out)
        return
    if args.with_only:
        wall, peak, found, cpu = measured(args.job, True)
        print(f"job {args.job} with drivers ({found['driver_rows']:,} driver rows), 2 cores")
        print(f"{'stage':<18}{'seconds':>9}{'peak RSS MB':>13}")
        for row in found["timings"]:
            print(f"{row['stage']:<18}{row['seconds']:>9.1f}{row.get('peak_rss_mb', 0):>13.0f}")
        print(f"{'run (process)':<18}{wall:>9.1f}{peak:>13.0f}\n{'run (CPU seconds)':<18}{cpu:>9.1f}")
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        return
    off = measured(args.job, False)
    on = measured(args.job, True)
    print(f"job {args.job}: without drivers, then with drivers ({on[2]['driver_rows']:,} driver rows), 2 cores")
    print(f"{'stage':<18}{'s without':>10}{'s with':>9}{'RSS MB without':>16}{'RSS MB with':>13}")
    before = {row["stage"]: row for row in off[2]["timings"]}
    for row in on[2]["timings"]:
        base = before.get(row["stage"], {})
        print(
            f"{row['stage']:<18}{base.get('seconds', 0):>10.1f}{row['seconds']:>9.1f}"
            f"{base.get('peak_rss_mb', 0):>16.0f}{row.get('peak_rss_mb', 0):>13.0f}"
        )
    print(f"{'run (process)':<18}{off[0]:>10.1f}{on[0]:>9.1f}{off[1]:>16.0f}{on[1]:>13.0f}")
    print(f"{'run (CPU seconds)':<18}{off[3]:>10.1f}{on[3]:>9.1f}")
    wall, cpu, memory = on[0] / off[0] - 1, on[3] / off[3] - 1, on[1] / off[1] - 1
    print(f"drivers add {wall:+.1%} wall time, {cpu:+.1%} CPU time (target <= +15 %) and {memory:+.1%} peak RSS")
    print(f"(target <= +10 %); load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
