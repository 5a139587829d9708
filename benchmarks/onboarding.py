"""Onboarding benchmark (a script, not a test): `python -m benchmarks.onboarding [--series 500]`.

A new user's two commands on a monthly file of real data they never configured: the first N item x store series of
the bundled M5 monthly sales (written to a temporary parquet, so nothing here knows it is M5), then
`forecasting init FILE` and `forecasting run --job FILE.yaml`, each in the real CLI. Prints stage / seconds / peak
RSS (the run's own stage table, and init's and the whole's wall time with the peak RSS of each command's process
tree). Target (issue 30): init + run <= 120 s on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from benchmarks.benchmark import watched_run

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str]) -> tuple[float, float, str]:
    """Run a command; its wall seconds, the peak RSS (MB) of its process tree, its stdout."""
    start = time.perf_counter()
    out, peak = watched_run(command)
    return time.perf_counter() - start, peak, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=500)
    args = parser.parse_args()
    cli = str(Path(sys.executable).parent / "forecasting")
    with tempfile.TemporaryDirectory() as tmp:
        columns = ["item_id", "store_id", "state_id", "month", "sales"]
        sales = pl.read_parquet(ROOT / "data/m5/m5_monthly_sales.parquet", columns=columns)
        ids = sales.select("item_id", "store_id").unique().sort("store_id", "item_id").head(args.series)
        data = Path(tmp) / "monthly_sales.parquet"
        sales.join(ids, on=["item_id", "store_id"]).write_parquet(data)
        job = Path(tmp) / "monthly_sales.yaml"
        init_s, init_mb, _ = timed([cli, "init", str(data), "--out", str(job)])
        run_s, run_mb, out = timed([cli, "run", "--job", str(job)])
    print(f"{args.series} monthly series ({data.name}), 2 cores")
    print(f"{'stage':<16}{'seconds':>9}{'peak RSS MB':>13}")
    print(f"{'init':<16}{init_s:>9.1f}{init_mb:>13.0f}")
    table = out.split("stage ", 1)[1].split("run time")[0].splitlines()[1:]
    for line in table:
        print(f"  run {line.strip()}")
    print(f"{'run (command)':<16}{run_s:>9.1f}{run_mb:>13.0f}")
    print(f"{'init + run':<16}{init_s + run_s:>9.1f}{max(init_mb, run_mb):>13.0f}   target <= 120 s")


if __name__ == "__main__":
    main()
