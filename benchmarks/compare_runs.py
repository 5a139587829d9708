"""Same outputs before and after a change that should not change them (a refactor, a move of modules).

    python -m benchmarks.compare_runs run /tmp/before                 # every bundled job, and a tourism backtest
    python -m benchmarks.compare_runs run /tmp/before --jobs tourism  # some of them
    python -m benchmarks.compare_runs compare /tmp/before /tmp/after  # every published table, frame for frame

`run` publishes each bundled job under FOLDER/outputs through the CLI, as a user would (a copy of the job file with
`output_root` set to that folder: nothing is written into the project), and times it. Run it from a checkout of the
old commit and of the new one, then `compare`: it reads each job's `latest` run and backtest and says, table by table,
whether the two frames are equal (`polars.DataFrame.equals`: same columns, types, rows and order). Exit code 1 when
any table differs or is missing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import yaml

from forecasting.job.loading import available_jobs, jobs_dir

BACKTEST = ["--windows", "3", "--step", "2", "--horizon", "4"]  # the tourism backtest: about a minute


def run(folder: Path, jobs: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{'job':<22}{'seconds':>9}  exit")
    for name in jobs:
        raw = yaml.safe_load((jobs_dir() / f"{name}.yaml").read_text())
        raw["output_root"] = str((folder / "outputs").resolve())
        job_file = folder / f"{name}.yaml"
        job_file.write_text(yaml.safe_dump(raw))
        start = time.perf_counter()
        commands = [["run", "--job", str(job_file)]]
        if name == "tourism":
            commands.insert(0, ["backtest", "--job", str(job_file), *BACKTEST])
        code = 0
        for command in commands:
            done = subprocess.run(["forecasting", *command], capture_output=True, text=True)
            code = code or done.returncode
            if done.returncode:
                print(done.stderr[-2000:], file=sys.stderr)
        print(f"{name:<22}{time.perf_counter() - start:>9.1f}  {code}")


def compare(before: Path, after: Path) -> int:
    differing = 0
    for latest in sorted((before / "outputs").rglob("latest")):
        where = latest.relative_to(before / "outputs").parent
        other = after / "outputs" / where / "latest"
        for table in sorted(latest.resolve().glob("*.parquet")):
            twin = other.resolve() / table.name
            if not twin.exists():
                print(f"MISSING  {where}/{table.name}")
                differing += 1
                continue
            old, new = pl.read_parquet(table), pl.read_parquet(twin)
            same = old.equals(new)
            differing += not same
            print(f"{'equal' if same else 'DIFFER':<8} {where}/{table.name} {old.shape}")
    print(f"tables that differ or are missing: {differing}")
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    runner = sub.add_parser("run", help="publish the bundled jobs under FOLDER/outputs")
    runner.add_argument("folder", type=Path)
    runner.add_argument("--jobs", nargs="+", default=available_jobs(), choices=available_jobs())
    comparer = sub.add_parser("compare", help="compare two folders written by `run`")
    comparer.add_argument("before", type=Path)
    comparer.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.folder, args.jobs)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
