"""`forecasting init`'s stage: profile a data file, draft its job, run the draft through the same load and gate as
a run (forecasting.pipeline), write the job file. Split from pipeline.py, which keeps the nightly stages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecasting.job.errors import InputError, one_line
from forecasting.pipeline import load, validate
from forecasting.stage_log import in_stage


@dataclass
class Onboarded:
    """What `forecasting init` found and wrote: the profile, the drafted job and the gate's verdict on it."""

    profile: Any
    draft: Any
    gate: str


def onboard(
    data_file: str,
    target: Path,
    name: str | None = None,
    file_format: str | None = None,
    table: str | None = None,
    date_column: str | None = None,
    quantity: str | None = None,
    freq: str | None = None,
    horizon: int | None = None,
    output: str | None = None,
) -> Onboarded:
    """Profile a data file, draft its job (forecasting.data.scaffold), run the draft through the load and the
    data-quality gate exactly as a run would, and write the job file atomically. A draft the gate refuses is still
    written (to be edited) and the refusal raised as one error."""
    from forecasting.data import profile, scaffold
    from forecasting.outputs.atomic import write_text_atomic

    found = profile.profile(profile.source_for(data_file, file_format, table), date_column, quantity, freq)
    root = Path(output).resolve() if output else target.resolve().parent / "outputs"
    draft = scaffold.draft(found, name or scaffold.job_name(data_file), str(root), horizon)
    problem = None
    try:
        with in_stage("gate"):
            loaded = load(draft.spec)
            validated = validate(loaded, draft.spec)
        history = validated.history
        gate = (
            f"passed: {history.select(draft.spec.hierarchy.columns).n_unique()} series, {validated.periods.kept_from}"
        )
        gate += f" .. {validated.periods.kept_to}, as of {loaded.as_of}"
    except InputError as exc:
        problem, gate = exc, f"refused: {one_line(str(exc))}"
    write_text_atomic(draft.text, target)
    if problem is not None:
        raise InputError(f"{target} written, but the data-quality gate refuses it: {one_line(str(problem))}")
    return Onboarded(found, draft, gate)
