"""Reading a job: a bundled one by name (data/jobs/<name>.yaml) or a YAML file by path, validated into a JobSpec,
with one error naming the file and the fields at fault."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from forecasting.job.common import JOB_NAME, project_root
from forecasting.job.errors import InputError
from forecasting.job.schema import JobSpec

DEFAULT_JOB = "m5-monthly"


class JobConfigError(InputError):
    """A job file or spec that does not validate; the message names the file and the fields at fault."""

    stage = "job"


def jobs_dir() -> Path:
    return project_root() / "data" / "jobs"


def available_jobs() -> list[str]:
    return sorted(p.stem for p in jobs_dir().glob("*.yaml"))


def load_job(name_or_path: str | Path | None = None, **overrides: object) -> JobSpec:
    """Read a bundled job by name, or a YAML file by path, and validate it (overrides win)."""
    name_or_path = name_or_path or DEFAULT_JOB
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        if not JOB_NAME.match(str(name_or_path)):
            raise JobConfigError(f"job name {str(name_or_path)!r} is not valid")
        path = jobs_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            raise JobConfigError(f"unknown job {str(name_or_path)!r}; bundled jobs: {', '.join(available_jobs())}")
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise JobConfigError(f"{path}: cannot read job file: {exc}") from exc
    if not isinstance(raw, dict):
        raise JobConfigError(f"{path}: a job file must be a mapping")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return parse_job(raw, origin=str(path))


def parse_job(raw: dict | JobSpec, origin: str = "job spec") -> JobSpec:
    if isinstance(raw, JobSpec):
        return raw
    try:
        return JobSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise JobConfigError(f"{origin}: invalid job: {problems}") from exc
