"""Benchmark of the nightly job (a script, not a test): `python -m benchmarks.benchmark [--job NAME]`.

Prints stage, seconds and peak RSS, where RSS is sampled every 0.1 s over this process *and* its child processes
(statsforecast's n_jobs pool and the forkserver it starts from), summed: an upper bound on what the machine must
hold at once (pages the children share with each other count once per child).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import psutil

from forecasting.job.loading import load_job
from forecasting.pipeline import run_job


class TreeRSS:
    """Samples the summed RSS of this process and its descendants in a background thread, and their CPU seconds
    (user + system): wall seconds on a shared machine say little about what a stage costs, CPU seconds do."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._cpu: dict[tuple[int, float], float] = {}  # (pid, start time) -> CPU seconds last seen
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        """The tree's RSS now; records every live process's CPU seconds (a process that has ended keeps the last
        value seen, up to one interval short: statsforecast's pool workers are reaped by its forkserver)."""
        me = psutil.Process(os.getpid())
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                with proc.oneshot():
                    total += proc.memory_info().rss
                    times = proc.cpu_times()
                    key = (proc.pid, proc.create_time())
                with self._lock:
                    self._cpu[key] = times.user + times.system
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            total = self._sample()
            self.samples.append((time.perf_counter(), total))
            self._stop.wait(self.interval)

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) used so far by this process and every descendant seen."""
        self._sample()
        with self._lock:
            return sum(self._cpu.values())

    def __enter__(self) -> TreeRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_mb(self, start: float, end: float) -> float:
        """Peak over the samples taken in [start, end]. A stage shorter than the sampling interval may hold none:
        then the samples just before and just after it bound what it held (rather than a misleading 0)."""
        inside = [rss for t, rss in self.samples if start <= t <= end]
        if not inside:
            before = [rss for t, rss in self.samples if t < start][-1:]
            after = [rss for t, rss in self.samples if t > end][:1]
            inside = before + after
        return max(inside, default=0) / 2**20


def watched_run(command: list[str]) -> tuple[str, float]:
    """Run a command in a child process and return its stdout and the peak RSS (MB) of its process tree, sampled
    every 0.1 s; exit naming the command when it fails."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, watched = 0, psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode:
        sys.exit(f"{' '.join(command)} failed: {err[-2000:]}")
    return out, peak / 2**20


def stage_recorder(sampler: TreeRSS, stages: list[dict[str, Any]]) -> Callable[..., Any]:
    """`stage(name, fn, *args)`: run fn, append its seconds, CPU seconds and peak RSS to `stages` and print them as
    a STAGE line (what a parent process reads from a child-process benchmark)."""

    def stage(name: str, fn: Callable[..., Any], *fn_args: Any) -> Any:
        cpu, began = sampler.cpu_seconds(), time.perf_counter()
        out = fn(*fn_args)
        ended = time.perf_counter()
        row = {
            "stage": name,
            "seconds": round(ended - began, 1),
            "cpu_seconds": round(sampler.cpu_seconds() - cpu, 1),
            "rss_mb": sampler.peak_mb(began, ended),
        }
        stages.append(row)
        print("STAGE " + json.dumps(row), flush=True)
        return out

    return stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job", default=None)
    parser.add_argument("--as-of", default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    job = load_job(args.job)
    from datetime import date

    as_of = date.fromisoformat(args.as_of) if args.as_of else None
    with TreeRSS() as sampler:
        start = time.perf_counter()
        result = run_job(job, as_of)
        end = time.perf_counter()
    print(
        f"job {job.name}, as of {result.as_of}; {platform.processor() or platform.machine()}, "
        f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; n_jobs={job.n_jobs}"
    )
    print(f"series per level: {result.summary['series_per_level']}")
    print(f"| {'stage':<16} | {'seconds':>8} | {'peak RSS (MB, process tree)':>28} |")
    print(f"|{'-' * 18}|{'-' * 10}|{'-' * 30}|")
    cursor = start
    for row in result.timings:
        stage_end = cursor + row["seconds"]
        print(f"| {row['stage']:<16} | {row['seconds']:>8.1f} | {sampler.peak_mb(cursor, stage_end):>28.0f} |")
        cursor = stage_end
    print(f"| {'total':<16} | {end - start:>8.1f} | {sampler.peak_mb(start, end):>28.0f} |")
    print(f"outputs: {result.run_dir}")


if __name__ == "__main__":
    main()
