"""Touch only what the project made. A run reads, replaces and removes links, run folders and temp files in its
job's output folder, and nothing else: each is checked here before it is used.

- The output root may not be `/`, a system folder or the installed package, also once its links are resolved.
- A date link (`2017-12-31`) must point into the folder's own `.runs/`, and `latest` at a date link. A link that
  points anywhere else (an operator's restored run, say) or a file or folder of the user's where a link belongs is
  refused with an error naming the path, before anything is written or removed. The run that met it publishes
  nothing; the user moves the path away.
- Only names the project gives (run ids, staging folders, temp links) are ever removed, and only real folders
  inside `.runs/`, never through a link.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

from forecasting.job.common import output_root_problem
from forecasting.job.errors import InputError
from forecasting.job.schema import JobSpec

RUNS = ".runs"
LATEST = "latest"
AS_OF = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RUN_ID = re.compile(r"^\d{4}-\d{2}-\d{2}-[0-9a-f]{12}$")
STAGING = re.compile(r"^\.staging-\d{4}-\d{2}-\d{2}-[0-9a-f]{12}$")
TEMP_LINK = re.compile(r"^\.(latest|\d{4}-\d{2}-\d{2})\.[0-9a-f]{32}\.lnk$")
PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=-]*$")  # one path part the project names (as-of dates, labels)


class OutsideOutputsError(InputError):
    """A path the run would read, replace or remove is not the project's own: refused, nothing touched."""


def job_folder(job: JobSpec, subdir: str | None = None) -> Path:
    """The job's output folder (or its `subdir`, e.g. backtests, a real folder inside it), after checking where it
    really is."""
    folder = checked_folder(job.output_dir())
    if subdir is None:
        return folder
    inner = folder / subdir
    if inner.is_symlink() or (inner.exists() and not inner.is_dir()):
        raise _refuse(inner, "is a link or a file where the project keeps a folder")
    return inner


def checked_folder(folder: Path) -> Path:
    """`folder`, if it may hold outputs once its links are resolved and is not a file."""
    real = Path(os.path.realpath(folder))
    problem = output_root_problem(real)
    if problem:
        raise OutsideOutputsError(f"{folder} resolves to {real}, which is {problem}; outputs may not go there")
    if folder.exists() and not folder.is_dir():
        raise OutsideOutputsError(f"{folder} is a file, not the job's output folder; move it away")
    return folder


def as_of_name(text: str) -> str:
    """An as-of date as a link name, or an error: `--run` takes a date, never a path."""
    try:
        if AS_OF.match(text) and date.fromisoformat(text):
            return text
    except ValueError:
        pass
    raise InputError(f"--run {text!r} is not an as-of date (YYYY-MM-DD) of a published run")


def _refuse(path: Path, why: str) -> OutsideOutputsError:
    return OutsideOutputsError(f"{path} {why}; it was left as it is and nothing was published or removed")


def check_publishable(job: JobSpec, as_of: date) -> None:
    """Before a run fits anything: would its publish be refused by a path that is not the project's?"""
    job_dir = job_folder(job)
    run_of(job_dir, as_of.isoformat())
    latest_as_of(job_dir)
    if (job_dir / RUNS).is_symlink() or ((job_dir / RUNS).exists() and not (job_dir / RUNS).is_dir()):
        raise _refuse(job_dir / RUNS, "is not the project's run folder (a link or a file)")


def run_of(job_dir: Path, name: str) -> Path | None:
    """The run folder the date link `name` points to (resolved, inside `.runs/`), or None if there is no link.
    A user's file or folder at that name, or a link pointing anywhere else, is refused."""
    link = job_dir / name
    if not link.is_symlink():
        if link.exists():
            raise _refuse(link, "is a file or folder where the project keeps a link to a run")
        return None
    target = os.readlink(link)
    real = Path(os.path.realpath(link))
    runs = Path(os.path.realpath(job_dir)) / RUNS
    if real.parent != runs or not RUN_ID.match(real.name):
        raise _refuse(link, f"is a link to {target}, outside the job's {RUNS} folder")
    return real


def latest_as_of(job_dir: Path) -> str | None:
    """The as-of date `latest` points to, or None if there is none; anything else at `latest` is refused."""
    link = job_dir / LATEST
    if not link.is_symlink():
        if link.exists():
            raise _refuse(link, "is a file or folder where the project keeps the `latest` link")
        return None
    target = os.readlink(link)
    if not AS_OF.match(target):
        raise _refuse(link, f"is a link to {target}, not to a date link of this folder")
    return target


def runs_folder(job_dir: Path) -> Path:
    """`.runs/`, created if missing; a link or a file there is refused."""
    runs = job_dir / RUNS
    if runs.is_symlink() or (runs.exists() and not runs.is_dir()):
        raise _refuse(runs, "is not the project's run folder (a link or a file)")
    runs.mkdir(parents=True, exist_ok=True)
    return runs


def removable(runs: Path, path: Path) -> bool:
    """Whether the project made `path` in `runs` and may remove it: a real folder named as a run or a staging folder."""
    named = RUN_ID.match(path.name) or STAGING.match(path.name)
    return bool(named) and path.parent == runs and path.is_dir() and not path.is_symlink()


def output_file(job_dir: Path, *parts: str) -> Path:
    """`job_dir/part/.../file`, its folders created: each part a plain name, no existing part a link or a file."""
    bad = [p for p in parts if not PART.match(p)]
    if bad:
        raise OutsideOutputsError(f"{bad[0]!r} is not a plain file or folder name; nothing was written")
    folder = job_dir
    for part in parts[:-1]:
        folder = folder / part
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise _refuse(folder, "is a link or a file where the project keeps a folder")
        folder.mkdir(parents=True, exist_ok=True)
    target = folder / parts[-1]
    if target.is_symlink() or target.is_dir():
        raise _refuse(target, "is a link or a folder where the project writes a file")
    return target
