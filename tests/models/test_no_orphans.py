"""No orphans (issue 34, 5): a run killed (SIGKILL, SIGTERM), interrupted (Ctrl-C: SIGINT to its process group) or
failing leaves no process of its own alive 10 s later: not statsforecast's forkserver, its workers or the resource
tracker, not a Dask LocalCluster's workers. Real `forecasting run` processes on real tourism data; every process
that carries the run's marker in its environment (inherited by all its descendants) is found with psutil."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from support import checksums, job_yaml, tourism_slice

from forecasting.job.schema import JobSpec

MARK = "FORECASTING_TEST_RUN"


def marked(mark: str) -> list[psutil.Process]:
    """Every live process whose environment holds the run's marker."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get(MARK) == mark and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def start(job: JobSpec, tmp: Path, **env: str) -> tuple[subprocess.Popen, str]:
    mark = uuid.uuid4().hex
    command = [str(Path(sys.executable).parent / "forecasting"), "run", "--job", str(job_yaml(job, tmp / "job.yaml"))]
    with open(tmp / "run.log", "w") as log:  # a file, not a pipe: an orphan holding a pipe would hang the test
        proc = subprocess.Popen(
            command,
            env=os.environ | {MARK: mark, "PYTHONDONTWRITEBYTECODE": "1"} | env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a shell gives a command
        )
    return proc, mark


def wait_for_workers(proc: subprocess.Popen, enough, timeout: float = 180) -> list[str]:
    """Poll the run's process tree until `enough(command lines)` holds; returns those command lines."""
    root = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout
    while True:
        try:
            lines = [" ".join(child.cmdline()) for child in root.children(recursive=True)]
        except psutil.Error:
            lines = []
        if enough(lines):
            return lines
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no workers seen before the run ended (exit {proc.poll()}); see its run.log")
        time.sleep(0.01)


def assert_none_left(mark: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while (left := marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    described = []
    for proc in left:  # clean up before failing, so the suite's other tests do not share the machine with them
        try:
            described.append(" ".join(proc.cmdline())[:120])
            proc.kill()
        except psutil.Error:
            continue
    assert not described, described


def statsforecast_pool(lines: list[str]) -> bool:
    """The forkserver and two workers forked from it (their command line is the forkserver's)."""
    return sum("multiprocessing.forkserver" in line for line in lines) >= 3


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "interrupted"])
def test_a_killed_or_interrupted_run_leaves_no_statsforecast_worker(tmp_path, how):
    job = tourism_slice(tmp_path, states=(), n_jobs=2).model_copy(update={"filters": {}})  # all 304 series
    proc, mark = start(job, tmp_path)
    lines = wait_for_workers(proc, statsforecast_pool)
    assert any("resource_tracker" in line for line in lines), lines
    if how == "interrupted":
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
    else:
        proc.send_signal(getattr(signal, how))
    proc.wait(timeout=120)
    assert proc.returncode != 0
    assert_none_left(mark)
    assert checksums(job.output_dir()) == {}, "nothing was published"


def test_a_failing_run_leaves_no_worker(tmp_path):
    """A run whose publish fails (every file limited to 40 kB) after statsforecast's pool has worked."""
    import resource

    job = tourism_slice(tmp_path, n_jobs=2)
    mark = uuid.uuid4().hex

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    done = subprocess.run(
        [str(Path(sys.executable).parent / "forecasting"), "run", "--job", str(job_yaml(job, tmp_path / "job.yaml"))],
        env=os.environ | {MARK: mark, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
    )
    assert done.returncode == 1 and "the file size limit is reached" in done.stderr, done.stderr
    assert_none_left(mark)


def test_a_killed_run_leaves_no_dask_worker(tmp_path):
    job = tourism_slice(tmp_path).model_copy(update={"engine": {"kind": "dask", "workers": 2}})
    job = JobSpec.model_validate(job.model_dump())
    proc, mark = start(job, tmp_path)
    wait_for_workers(proc, lambda lines: sum("spawn_main" in line for line in lines) >= 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert_none_left(mark)
