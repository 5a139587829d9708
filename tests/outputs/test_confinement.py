"""Touch only what the project made (issue 34, 1): links, run folders, temp files and the lock file that a run reads,
replaces or removes must be the project's own, inside the job's output folder. Anything else is refused with one
error naming the path, and nothing is removed: checked on real files, the folders' checksums before and after."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from support import checksums, cli, job_yaml, one_error_line, tourism_slice

from forecasting.job.common import package_dir
from forecasting.job.errors import InputError
from forecasting.job.loading import JobConfigError, parse_job
from forecasting.outputs.confine import OutsideOutputsError
from forecasting.outputs.locks import lock_path, output_lock
from forecasting.outputs.runs import LATEST, RUNS, publish_run, remove_debris, run_dir
from forecasting.pipeline import run_job

AS_OF = date(2016, 4, 24)


def _tables(value: float) -> dict[str, pl.DataFrame]:
    return {"staffing": pl.DataFrame({"warehouse": ["CA_1"], "headcount": [value]})}


@pytest.fixture
def job(tmp_path):
    return tourism_slice(tmp_path)


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder of the user's beside the outputs: an operator's restored run."""
    folder = tmp_path / "restored-run"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"restored": true}')
    (folder / "reconciled_forecasts.parquet").write_bytes(os.urandom(4096))
    return folder


def test_a_date_link_to_an_operators_restored_run_is_refused_and_nothing_removed(job, outside, tmp_path):
    """The issue's case: `2017-12-31` pointed at an absolute path; rerunning that date removed it. Now the real CLI
    refuses in one line naming the link, before fitting, and neither folder changes."""
    run_job(job)
    link = job.output_dir() / "2017-12-31"
    link.unlink()
    link.symlink_to(outside)
    before, restored = checksums(job.output_dir()), checksums(outside)
    code, _, err = cli("run", "--job", str(job_yaml(job, tmp_path / "job.yaml")))
    line = one_error_line(err)
    assert code == 2, err
    assert f"{link} is a link to {outside}, outside the job's .runs folder" in line and "nothing" in line
    assert checksums(outside) == restored and checksums(job.output_dir()) == before


@pytest.mark.parametrize("where", ["latest-file", "latest-folder", "as-of-file", "as-of-folder"])
def test_a_users_file_or_folder_where_a_link_belongs_is_refused(job, where):
    publish_run(job, AS_OF, _tables(1), {})
    name = LATEST if where.startswith("latest") else AS_OF.isoformat()
    path = job.output_dir() / name
    path.unlink()
    if where.endswith("file"):
        path.write_text("my notes")
    else:
        path.mkdir()
        (path / "notes.txt").write_text("mine")
    before = checksums(job.output_dir())
    with pytest.raises(OutsideOutputsError, match=f"{path} is a file or folder where the project keeps"):
        publish_run(job, AS_OF, _tables(2), {})
    assert checksums(job.output_dir()) == before
    with pytest.raises(OutsideOutputsError, match=str(path)):
        run_dir(job, AS_OF.isoformat() if name != LATEST else None)


def test_links_that_lead_outside_are_never_followed_to_remove(job, outside):
    publish_run(job, AS_OF, _tables(1), {})
    latest = job.output_dir() / LATEST
    latest.unlink()
    latest.symlink_to(outside)
    before = checksums(job.output_dir())
    with pytest.raises(OutsideOutputsError, match=f"{latest} is a link to {outside}, not to a date link"):
        publish_run(job, AS_OF, _tables(2), {})
    latest.unlink()
    latest.symlink_to(AS_OF.isoformat())
    runs = job.output_dir() / RUNS
    for run in runs.iterdir():
        run.rename(outside / run.name)
    runs.rmdir()
    runs.symlink_to(outside)  # `.runs` itself a link: the run folder it names lies outside
    before, restored = checksums(job.output_dir()), checksums(outside)
    with pytest.raises(OutsideOutputsError, match=f"{job.output_dir() / AS_OF.isoformat()} is a link to"):
        publish_run(job, AS_OF, _tables(2), {})
    assert checksums(job.output_dir()) == before and checksums(outside) == restored


def test_debris_removal_removes_only_what_the_project_made(job, outside):
    publish_run(job, AS_OF, _tables(1), {})
    runs, job_dir = job.output_dir() / RUNS, job.output_dir()
    ours = [runs / ".staging-2016-04-24-0123456789ab", runs / "2016-03-31-0123456789ab"]
    for folder in ours:
        folder.mkdir()
        (folder / "manifest.json").write_text("{}")
    (job_dir / f".latest.{'0' * 32}.lnk").symlink_to(AS_OF.isoformat())
    theirs = {runs / "my-notes": "dir", runs / "2016-02-29-abcdefabcdef": "link", runs / "readme.txt": "file"}
    (runs / "my-notes").mkdir()
    (runs / "2016-02-29-abcdefabcdef").symlink_to(outside)  # named like a run, but a link: not ours
    (runs / "readme.txt").write_text("mine")
    restored = checksums(outside)
    removed = remove_debris(job_dir)
    assert sorted(p.name for p in removed) == sorted([f".latest.{'0' * 32}.lnk", *(p.name for p in ours)])
    assert all(p.exists() or p.is_symlink() for p in theirs) and checksums(outside) == restored
    publish_run(job, AS_OF, _tables(2), {})  # a rerun removes its own old run, and nothing of theirs
    assert all(p.exists() or p.is_symlink() for p in theirs) and len([p for p in runs.iterdir()]) == 4


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_the_lock_file_is_never_followed(job, tmp_path, kind):
    """The lock truncates and writes its file: a link there would overwrite the user's file it points to."""
    precious = tmp_path / "precious.txt"
    precious.write_text("do not truncate")
    path = lock_path(job.output_dir())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(precious) if kind == "symlink" else os.link(precious, path)
    with pytest.raises(OutsideOutputsError, match=str(path)):
        with output_lock(job.output_dir()):
            pass
    with pytest.raises(OutsideOutputsError, match=str(path)):
        publish_run(job, AS_OF, _tables(1), {})
    assert precious.read_text() == "do not truncate" and not job.output_dir().exists()


@pytest.mark.parametrize("root", ["/", "/proc", "/proc/self", "/etc/forecasting", "/usr/local/out", "/sys", "PKG"])
def test_the_output_root_may_not_be_the_root_a_system_folder_or_the_package(job, root):
    root = str(package_dir() / "outputs") if root == "PKG" else root
    with pytest.raises(JobConfigError, match=f"output_root: Value error, output_root '{root}' is"):
        parse_job(job.model_dump() | {"output_root": root})


def test_an_output_root_that_leads_there_through_a_link_is_refused(job, tmp_path):
    link = tmp_path / "outputs-link"
    link.symlink_to("/proc")
    linked = job.model_copy(update={"output_root": str(link)})
    with pytest.raises(OutsideOutputsError, match="resolves to /proc/tourism, which is a system folder"):
        publish_run(linked, AS_OF, _tables(1), {})
    code, _, err = cli("run", "--job", str(job_yaml(linked, tmp_path / "job.yaml")))
    assert code == 2 and "a system folder (/proc)" in one_error_line(err)


@pytest.mark.parametrize("run", ["/etc", "../../..", "2016-04-24/../..", "latest", "2016-02-30"])
def test_a_run_is_named_by_its_date_never_by_a_path(job, run, tmp_path):
    publish_run(job, AS_OF, _tables(1), {})
    with pytest.raises(InputError, match="is not an as-of date"):
        run_dir(job, run)
    if run in ("/etc", "../../.."):  # and through the real command line, in one line
        path = str(job_yaml(job, tmp_path / "j.yaml"))
        code, _, err = cli("recipe", "demand_by_level", "--job", path, "--run", run)
        assert code == 2 and f"--run {run!r} is not an as-of date" in one_error_line(err)


def test_what_if_plans_never_write_through_a_link(slice_run, tmp_path, outside):
    from forecasting.outputs.scenarios import what_if

    source_job, result = slice_run
    job = source_job.model_copy(update={"output_root": str(tmp_path / "out")})
    tables = {p.stem: pl.read_parquet(p) for p in result.run_dir.glob("*.parquet")}
    publish_run(job, AS_OF, tables, {"as_of": "2016-04-24"})
    (job.output_dir() / "scenarios").symlink_to(outside)
    restored = checksums(outside)
    with pytest.raises(OutsideOutputsError, match=f"{job.output_dir() / 'scenarios'} is a link or a file"):
        what_if(job, None, "+10%", None)
    assert checksums(outside) == restored
    (job.output_dir() / "scenarios").unlink()
    path, _ = what_if(job, None, "+10%", None)
    assert path == job.output_dir() / "scenarios" / "2016-04-24" / "volume+10pct.parquet"


def test_a_backtests_folder_that_is_a_link_is_refused(job, outside):
    job.output_dir().mkdir(parents=True)
    (job.output_dir() / "backtests").symlink_to(outside)
    restored = checksums(outside)
    with pytest.raises(OutsideOutputsError, match=f"{job.output_dir() / 'backtests'} is a link or a file"):
        publish_run(job, AS_OF, _tables(1), {}, subdir="backtests")
    assert checksums(outside) == restored
