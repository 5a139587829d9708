"""Atomic run folders: a run is staged in a hidden folder, the manifest is written last, and only then does the
`<as-of>` link (and the `latest` link) switch to it with an atomic rename. Readers never see half a run, even when
the writer is killed (SIGKILL) at any point: what it leaves is hidden debris that the next publish removes. One
writer at a time per folder (forecasting.outputs.locks)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import date
from pathlib import Path

import polars as pl

from forecasting.job.context import FoundBacktest
from forecasting.job.errors import InputError
from forecasting.job.schema import JobSpec
from forecasting.outputs import confine
from forecasting.outputs.atomic import DiskFullError, Table, disk_full, write_json_atomic, write_parquet_atomic
from forecasting.outputs.confine import LATEST, RUNS
from forecasting.outputs.locks import hold, output_lock

MANIFEST = "manifest.json"


def _point_link(link: Path, target: str) -> None:
    """Make `link` a symlink to `target`, replacing any old link in one atomic rename."""
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex}.lnk")
    os.symlink(target, tmp)
    os.replace(tmp, link)


def publish_run(job: JobSpec, as_of: date, tables: dict[str, Table], manifest: dict, subdir: str | None = None) -> Path:
    """Write every table, then the manifest, then switch `<as-of>` and `latest` to the new run. Returns `<as-of>`.
    A manifest with a `tables` entry gets the rows written per table there.

    `subdir` keeps another kind of run (backtests) in its own folder with its own `latest`. The links it will
    replace are checked first (forecasting.outputs.confine): one that is not the project's refuses the publish
    before anything is written or removed."""
    job_dir = confine.job_folder(job, subdir)
    with output_lock(job_dir):
        previous = confine.run_of(job_dir, as_of.isoformat())
        newest = confine.latest_as_of(job_dir)
        runs = confine.runs_folder(job_dir)
        remove_debris(job_dir)
        run_id = f"{as_of.isoformat()}-{uuid.uuid4().hex[:12]}"
        staging = runs / f".staging-{run_id}"
        staging.mkdir()
        try:
            rows = {}
            for name, table in tables.items():
                rows[name] = write_parquet_atomic(table, staging / f"{name}.parquet")
                hold("table")
            hold("manifest")
            counted = {"tables": rows} if "tables" in manifest else {}
            write_json_atomic(manifest | {"run_id": run_id} | counted, staging / MANIFEST)
            final = runs / run_id
            os.replace(staging, final)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if disk_full(exc):
                kept = f"the run of {newest} and `latest` are as they were" if newest else "nothing was published"
                raise DiskFullError(f"{job_dir}: {disk_full(exc)}; this run was not published, {kept}") from exc
            raise
        hold("links")
        as_of_link = job_dir / as_of.isoformat()
        try:
            _point_link(as_of_link, f"{RUNS}/{run_id}")
            if newest is None or newest <= as_of.isoformat():
                # `latest` is the newest as-of date published; a backfill of an older date does not move it back.
                _point_link(job_dir / LATEST, as_of.isoformat())
        except OSError as exc:
            if disk_full(exc):  # a link is a few bytes; each switch is atomic, so both links point at whole runs
                raise DiskFullError(
                    f"{job_dir}: {disk_full(exc)} while switching the links; {as_of_link} and "
                    "`latest` each point at a whole run (the new one or the one before)"
                ) from exc
            raise
        if previous is not None and confine.removable(Path(os.path.realpath(runs)), previous):
            shutil.rmtree(previous)
        return as_of_link


def remove_debris(job_dir: Path) -> list[Path]:
    """Remove what a killed writer left: staging folders, temp links, run folders no link points to; only names
    the project gives, and only real folders inside `.runs/` (forecasting.outputs.confine.removable). Only called
    under the folder's write lock, so none of it belongs to a live run."""
    runs = Path(os.path.realpath(job_dir / RUNS))
    linked = {os.path.realpath(p) for p in job_dir.iterdir() if p.is_symlink()}
    removed = [p for p in job_dir.iterdir() if confine.TEMP_LINK.match(p.name) and p.is_symlink()]
    removed += [p for p in runs.iterdir() if confine.removable(runs, p) and str(p) not in linked]
    for path in removed:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return removed


def run_dir(job: JobSpec, as_of: str | None = None, subdir: str | None = None) -> Path:
    """The folder of one published run (default: the latest), resolved and inside the job's `.runs/`. Raises
    FileNotFoundError if there is none; an `as_of` that is not a date, or a link the project did not make, is
    refused (forecasting.outputs.confine)."""
    job_dir = confine.job_folder(job, subdir)
    name = confine.as_of_name(as_of) if as_of else confine.latest_as_of(job_dir)
    found = confine.run_of(job_dir, name) if name else None
    if found is None or not (found / MANIFEST).exists():
        which = f"run {as_of}" if as_of else "latest run"
        raise FileNotFoundError(f"no published {which} for job {job.name!r} under {job_dir}")
    return found


def published_as_of(job: JobSpec, subdir: str | None = None) -> list[str]:
    """The as-of dates with a published run (or backtest, with `subdir`), oldest first: the `<as-of>` links."""
    folder = confine.job_folder(job, subdir)
    if not folder.is_dir():
        return []
    found = []
    for link in folder.iterdir():
        if not (link.is_symlink() and confine.AS_OF.match(link.name)):
            continue
        try:
            run = confine.run_of(folder, confine.as_of_name(link.name))
        except InputError:  # a link the project did not make: not read (run_dir on it says why)
            continue
        if run is not None and (run / MANIFEST).exists():
            found.append(link.name)
    return sorted(found)


def backtest_dir(job: JobSpec, known_through: date | None = None) -> Path:
    """The published backtest a run reads (model choice, reconciliation choice, calibration, staffing errors): the
    latest, or with `known_through` (the run's last period of history) the newest whose actuals all end by then, so
    a backfill never chooses or calibrates on actuals after its own data. FileNotFoundError if there is none."""
    latest = run_dir(job, None, subdir="backtests")
    if known_through is None:
        return latest
    for as_of in reversed(published_as_of(job, subdir="backtests")):  # `latest` is the newest as-of date
        folder = run_dir(job, as_of, subdir="backtests")
        last = pl.scan_parquet(folder / "backtest_base.parquet").select(pl.col("ds").max()).collect().item()
        if last is not None and last <= known_through:
            return folder
    raise FileNotFoundError(f"no published backtest of job {job.name!r} ends by {known_through}")


def usable_backtest(job: JobSpec, known_through: date | None = None) -> FoundBacktest:
    """`backtest_dir`, or None and why there is none."""
    try:
        return backtest_dir(job, known_through), ""
    except FileNotFoundError:
        try:
            run_dir(job, None, subdir="backtests")
        except FileNotFoundError:
            return None, "no backtest published for this job"
        return None, f"no backtest of this job ends by {known_through}"


def read_manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST).read_text())
