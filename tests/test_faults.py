"""Faults a new user and an operator meet (issue 34, 6 and 8), each through the real `forecasting` command in a real
process, on real tourism data: one line naming the stage and the file, column and rows (or the method and series),
exit 2 for bad input, 1 for an internal error (traceback in a log file) or a full disk; and the output folder, with
its last good run and `latest`, byte for byte as it was."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from support import TOURISM, checksums, cli, job_yaml, one_error_line, tourism_slice

from forecasting.job.schema import JobSpec
from forecasting.pipeline import run_job


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    """One good published run of the tourism slice: every test starts from a copy of its output root."""
    root = tmp_path_factory.mktemp("good")
    run_job(tourism_slice(root))
    return root / "outputs"


def with_good_run(good_run: Path, root: Path) -> Path:
    shutil.copytree(good_run, root, symlinks=True)
    return root


def rows() -> pl.DataFrame:
    return pl.read_parquet(TOURISM).filter(pl.col("State") == "Tasmania")


def bad_job(tmp: Path, frame: pl.DataFrame | None, good_run: Path, **update) -> tuple[JobSpec, Path, Path]:
    """The slice job on `frame` (written as parquet), writing over a copy of the good run."""
    root = with_good_run(good_run, tmp / "outputs")
    job = tourism_slice(tmp, **update).model_copy(update={"output_root": str(root)})
    path = tmp / "sales.parquet" if frame is not None else TOURISM
    if frame is not None:
        frame.write_parquet(path)
    sales = job.source.sales.model_copy(update={"path": str(path)})  # absolute: whatever FORECASTING_HOME says
    job = job.model_copy(update={"source": job.source.model_copy(update={"sales": sales})})
    return job, job_yaml(job, tmp / "job.yaml"), path


def trips(value: float) -> pl.DataFrame:
    where = (pl.col("Quarter").dt.year() == 2012) & (pl.col("Region") == "East Coast") & (pl.col("Purpose") == "Other")
    return rows().with_columns(pl.when(where).then(value).otherwise(pl.col("Trips")).alias("Trips"))


CASES = {
    "nan": (lambda: trips(float("nan")), {}, "load", "values that are not finite (NaN or infinity) (4 rows)"),
    "inf": (lambda: trips(float("inf")), {}, "load", "values that are not finite (NaN or infinity) (4 rows)"),
    "1e300": (lambda: trips(1e300), {}, "load", "values above source.max_quantity=1e+12 (4 rows)"),
    "all-zero": (
        lambda: rows().with_columns(pl.lit(0.0).alias("Trips")),
        {},
        "load",
        "every quantity is 0: there is nothing to forecast (1600 rows)",
    ),
    "slash-in-key": (
        lambda: rows().with_columns(pl.col("Region").str.replace("East Coast", "East/Coast")),
        {},
        "load",
        "[column Region]: key values holding '/', which separates the keys in series ids (320 rows)",
    ),
    "keys-collide-across-levels": (  # a region named like a purpose: region and state x purpose share an id
        lambda: rows().with_columns(pl.col("Region").str.replace("East Coast", "Business")),
        {},
        "validate",
        "key values that give two series of different levels the same id (1 rows), e.g. "
        "('total/Tasmania/Business', 'region', 'state=Tasmania, region=Business')",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_ends_in_one_line_exit_2_and_the_outputs_unchanged(good_run, tmp_path, case):
    make, update, stage, what = CASES[case]
    job, path, data = bad_job(tmp_path, make(), good_run, **update)
    before = checksums(job.output_dir().parent)
    code, out, err = cli("run", "--job", str(path))
    line = one_error_line(err)
    assert code == 2, err
    assert line.startswith(f"error: {stage}: input failed the data-quality gate: {data} [column ")
    assert what in line
    assert checksums(job.output_dir().parent) == before


def test_an_output_root_in_a_system_folder_is_refused_before_anything_is_read(tmp_path):
    job = tourism_slice(tmp_path)
    data = job.model_dump(mode="json") | {"output_root": "/proc"}
    path = tmp_path / "job.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("run", "--job", str(path))
    assert code == 2
    assert one_error_line(err) == (
        f"error: job: {path}: invalid job: output_root: Value error, output_root '/proc' is a system folder (/proc); "
        "choose a folder of your own for the outputs"
    )


def test_an_internal_error_exits_1_and_points_to_the_log_with_the_traceback(good_run, tmp_path):
    """A fault of the program's own files (its history query broken), not of the input."""
    job, path, _ = bad_job(tmp_path, None, good_run)
    home = tmp_path / "home"
    shutil.copytree(Path(__file__).parents[1] / "sql", home / "sql")
    (home / "sql" / "sales_history.sql").write_text("SELECT $period, $as_of, $observed_from, $observed_to FROM nowhere")
    before = checksums(job.output_dir().parent)
    logs = tmp_path / "logs"
    code, _, err = cli("run", "--job", str(path), env={"FORECASTING_HOME": str(home), "FORECASTING_LOG_DIR": str(logs)})
    line = one_error_line(err)
    assert code == 1
    assert line.startswith("error: internal error in stage load: CatalogException: Catalog Error: Table with name")
    (log,) = logs.iterdir()
    assert line.endswith(f"; the traceback is in {log}")
    assert "Traceback (most recent call last)" in log.read_text() and "nowhere" in log.read_text()
    assert checksums(job.output_dir().parent) == before


def _full_disk_run(job: JobSpec, path: Path, tmp: Path, how: str) -> tuple[int, str]:
    """Run the job with its output root on a disk that fills: a small tmpfs (root), else a file size limit."""
    env = {"PYTHONDONTWRITEBYTECODE": "1", "FORECASTING_LOG_DIR": str(tmp / "logs")}
    if how == "tmpfs":
        code, _, err = cli("run", "--job", str(path), env=env)
        return code, err

    def limit() -> None:  # in the child: no file of it may grow past 40 kB (a run's forecasts are ~77 kB)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    code, _, err = cli("run", "--job", str(path), env=env, preexec_fn=limit)
    return code, err


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs when this process may mount one (root), else None (the file size limit stands in)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)]).returncode:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("how", ["disk", "file-size-limit"])
def test_a_full_disk_says_so_and_leaves_the_last_good_run_and_latest(good_run, tmp_path, small_disk, how):
    mode = "tmpfs" if how == "disk" and small_disk is not None else "rlimit"
    job, path, _ = bad_job(tmp_path, None, good_run)
    if mode == "tmpfs":
        root = with_good_run(good_run, small_disk / "outputs")
        job = job.model_copy(update={"output_root": str(root)})
        path = job_yaml(job, tmp_path / "job.yaml")
        filler = small_disk / "filler"
        # Fill the disk, then leave 16 kB free: less than one table. Unbuffered, so that closing the file has nothing
        # left to flush onto the full disk (a buffered close raised ENOSPC again, outside the try).
        with open(filler, "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 65536)
            except OSError:
                pass
        os.truncate(filler, max(0, filler.stat().st_size - 16_384))
    before = checksums(job.output_dir())
    code, err = _full_disk_run(job, path, tmp_path, mode)
    line = one_error_line(err)
    assert code == 1, err
    full = "no space left on the device" if mode == "tmpfs" else "the file size limit is reached"
    assert line.startswith(f"error: write: {job.output_dir()}: {full}") and (
        "this run was not published, the run of 2017-12-31 and `latest` are as they were" in line
    )
    assert checksums(job.output_dir()) == before
