"""Real processes killed with SIGKILL while they publish, and two runs of one job at once.

The writers are real `python` subprocesses running the library. They stop at a named point of the publish through
the $FORECASTING_HOLD_AT hook (forecasting.outputs.locks.hold), or are killed while polars is still writing a parquet
file (found by polling for its temp file), so the kill lands where the test says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml
from support import backtested_daily_job, slice_job

from forecasting.job.common import project_root
from forecasting.job.schema import JobSpec
from forecasting.outputs.locks import HOLD_ENV, WAIT_ENV, lock_path, output_lock
from forecasting.outputs.runs import LATEST, RUNS, publish_run, read_manifest, run_dir
from forecasting.outputs.views import open_views

AS_OF = date(2016, 4, 24)

PUBLISH = """
import sys
from datetime import date
from pathlib import Path
import numpy as np
import polars as pl
from forecasting.job.schema import JobSpec
from forecasting.outputs.runs import publish_run
job = JobSpec.model_validate_json(Path(sys.argv[1]).read_text())
tables = {p.stem: pl.read_parquet(p) for p in sorted(Path(sys.argv[2]).glob("*.parquet"))}
if sys.argv[4] == "big":
    tables = {"base_forecasts": pl.DataFrame({"x": np.random.default_rng(0).random(30_000_000)})} | tables
publish_run(job, date.fromisoformat(sys.argv[3]), tables, {"writer": "second"})
"""

RUN = """
import sys
from pathlib import Path
from forecasting.job.schema import JobSpec
from forecasting.pipeline import run_job
if __name__ == "__main__":
    job = JobSpec.model_validate_json(Path(sys.argv[1]).read_text())
    print("published", run_job(job).run_dir, flush=True)
"""

BACKTEST = """
import sys
from pathlib import Path
from forecasting.job.schema import JobSpec
from forecasting.pipeline import backtest_job
if __name__ == "__main__":
    job = JobSpec.model_validate_json(Path(sys.argv[1]).read_text())
    print("published", backtest_job(job)[0], flush=True)
"""


def python(code: str, *args: str, env: dict[str, str] | None = None, stderr=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=project_root(),
        env=os.environ | (env or {}),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"process ended before {path.name}: {proc.communicate()}")
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def job_file(job: JobSpec, tmp: Path) -> Path:
    path = tmp / "job.json"
    path.write_text(job.model_dump_json())
    return path


@pytest.fixture
def published(slice_run, tmp_path):
    """A job with one good run published (the real slice run's tables), and that run's identity."""
    source_job, result = slice_run
    job = source_job.model_copy(update={"output_root": str(tmp_path / "out")})
    tables = {p.stem: pl.read_parquet(p) for p in result.run_dir.glob("*.parquet")}
    publish_run(job, AS_OF, tables, {"writer": "first"})
    return job, result.run_dir, snapshot(job)


def snapshot(job: JobSpec) -> dict:
    """What a planner sees: the links, the manifest and the published numbers through the DuckDB views."""
    job_dir = job.output_dir()
    con = open_views(job)
    rows = con.sql("SELECT level, sum(mean) FROM forecasts GROUP BY level ORDER BY level").fetchall()
    staffing = con.sql("SELECT count(*), sum(headcount) FROM staffing").fetchone()
    return {
        "latest": os.readlink(job_dir / LATEST),
        "as_of": os.readlink(job_dir / AS_OF.isoformat()),
        "writer": read_manifest(run_dir(job))["writer"],
        "forecasts": rows,
        "staffing": staffing,
    }


@pytest.mark.parametrize("point", ["table", "manifest", "links", "mid-parquet"])
def test_sigkill_while_publishing_leaves_the_previous_run(published, tmp_path, point):
    job, source, before = published
    flag = tmp_path / "held"
    env = {HOLD_ENV: f"{point}:{flag}"} if point != "mid-parquet" else {}
    proc = python(PUBLISH, str(job_file(job, tmp_path)), str(source), AS_OF.isoformat(), "big", env=env)
    runs = job.output_dir() / RUNS
    if point == "mid-parquet":
        deadline = time.monotonic() + 120
        while not list(runs.glob(".staging-*/.*.tmp")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.001)
    else:
        wait_for(flag, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    debris = sorted(p.name for p in runs.iterdir())
    assert len(debris) == 2, debris  # the good run and what the killed writer left
    if point == "mid-parquet":
        assert list(runs.glob(".staging-*/.*.tmp")), "killed while the parquet file was being written"
    if point in ("table", "manifest", "mid-parquet"):
        assert not list(runs.glob(".staging-*/manifest.json")), "the manifest is written last"
    assert snapshot(job) == before

    # The next publish removes the debris and replaces the run.
    tables = {p.stem: pl.read_parquet(p) for p in source.glob("*.parquet")}
    publish_run(job, AS_OF, tables, {"writer": "third"})
    assert len(list(runs.iterdir())) == 1
    assert snapshot(job) == before | {"as_of": os.readlink(job.output_dir() / AS_OF.isoformat()), "writer": "third"}


def test_two_runs_of_one_job_never_both_write(tmp_path):
    job = slice_job(tmp_path, stores=("CA_1",), n_items=10)
    path = job_file(job, tmp_path)
    flag = tmp_path / "first-holds-the-lock"
    first = python(RUN, str(path), env={HOLD_ENV: f"locked:{flag}"})
    wait_for(flag, first)

    refused = python(RUN, str(path))
    out, err = refused.communicate(timeout=120)
    assert refused.returncode != 0
    assert "OutputLockedError" in err and f"another run (pid {first.pid} on" in err and "refused" in err, err
    assert not job.output_dir().exists(), "the refused run wrote nothing"

    log = tmp_path / "waiting.err"
    with open(log, "w") as stderr:
        waiting = python(RUN, str(path), env={WAIT_ENV: "300"}, stderr=stderr)
    deadline = time.monotonic() + 120
    while "waiting up to 300 s" not in log.read_text():
        assert time.monotonic() < deadline and waiting.poll() is None, log.read_text()
        time.sleep(0.1)
    flag.unlink()  # let the first run go on
    out1, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    out2, _ = waiting.communicate(timeout=300)
    err2 = log.read_text()
    assert waiting.returncode == 0, err2
    assert f"another run (pid {first.pid} on" in err2 and "got the write lock" in err2
    first_dir, second_dir = (Path(o.split("published ", 1)[1].strip()) for o in (out1, out2))
    assert read_manifest(run_dir(job))["run_id"] == second_dir.resolve().name  # published after the first
    assert len(list((job.output_dir() / RUNS).iterdir())) == 1
    assert lock_path(job.output_dir()).read_text() == ""  # released


def test_the_cli_refuses_a_second_run_with_one_clear_line(tmp_path):
    job = slice_job(tmp_path, stores=("CA_1",), n_items=10)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job.model_dump(mode="json")))
    with output_lock(job.output_dir()):  # this test process is the run in progress
        refused = subprocess.run(
            [str(Path(sys.executable).parent / "forecasting"), "run", "--job", str(path)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
    assert f"another run (pid {os.getpid()} on" in refused.stderr and "refused" in refused.stderr
    assert not job.output_dir().exists()


def test_a_backtest_finishing_during_a_nightly_run_publishes_after_it(tmp_path):
    """The nightly run reads the latest backtest from its model choice to its staffing plan, under the job's lock:
    a backtest of the same job computes meanwhile but publishes only once that run has published."""
    job = backtested_daily_job(tmp_path)
    path = job_file(job, tmp_path)
    flag = tmp_path / "nightly-holds-the-lock"
    nightly = python(RUN, str(path), env={HOLD_ENV: f"locked:{flag}"})
    wait_for(flag, nightly)
    log = tmp_path / "backtest.err"
    with open(log, "w") as stderr:
        backtest = python(BACKTEST, str(path), stderr=stderr)
    deadline = time.monotonic() + 120
    while "waiting up to 3600 s" not in log.read_text():
        assert time.monotonic() < deadline and backtest.poll() is None, log.read_text()
        time.sleep(0.1)
    assert not (job.output_dir() / "backtests").exists(), "computed, but not published while the run reads"
    flag.unlink()
    out, err = nightly.communicate(timeout=300)
    assert nightly.returncode == 0, err
    assert read_manifest(run_dir(job))["summary"]["model_choice"] == "job file (no backtest published for this job)"
    out, _ = backtest.communicate(timeout=300)
    assert backtest.returncode == 0, log.read_text()
    assert "got the write lock" in log.read_text()
    assert read_manifest(run_dir(job, None, subdir="backtests"))["windows"] == 2
