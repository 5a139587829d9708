"""Fuzzing with hypothesis: whatever a job file or a labour-standards file holds, reading it gives a valid spec or
one validation error (JobConfigError, StandardsError), never a raw traceback from deeper down."""

from __future__ import annotations

import copy
import string
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecasting.job.loading import JobConfigError, jobs_dir, load_job, parse_job
from forecasting.job.schema import JobSpec
from forecasting.staffing.standards import COLUMNS, StandardsError, load_standards

BUNDLED = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(jobs_dir().glob("*.yaml"))}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", "*", "month", "day", "CA_1", "../../etc/passwd", "x'; DROP TABLE t; --", "1e309", "-1"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


def paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a nested dict / list."""
    found = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            found += paths(value, (*prefix, i))
    return found


@st.composite
def mutated_jobs(draw: st.DrawFn) -> dict:
    """A bundled job with one to three random edits: a value replaced, a key removed, an unknown key added."""
    job = copy.deepcopy(BUNDLED[draw(st.sampled_from(sorted(BUNDLED)))])
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(job)))
        parent = job
        for step in where[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace" or isinstance(parent, list):
            parent[where[-1]] = draw(values)
        elif action == "remove":
            del parent[where[-1]]
        else:
            parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
    return job


def parses_or_says_why(raw: Any) -> None:
    try:
        spec = parse_job(raw, origin="fuzz")
    except JobConfigError as exc:
        assert str(exc).startswith("fuzz: invalid job:"), exc
        return
    assert isinstance(spec, JobSpec)
    spec.key_filters(), spec.output_dir()  # a spec that validates is usable


@FUZZ
@given(mutated_jobs())
def test_mutated_job_specs_validate_or_fail_clearly(raw):
    parses_or_says_why(raw)


@FUZZ
@given(values)
def test_arbitrary_job_values_fail_clearly(raw):
    if isinstance(raw, dict):
        parses_or_says_why(raw)
    else:
        try:
            parse_job(raw, origin="fuzz")  # type: ignore[arg-type]
        except JobConfigError:
            pass


@FUZZ
@given(st.text(max_size=300) | mutated_jobs().map(lambda job: yaml.safe_dump(job, allow_unicode=True)))
def test_job_files_load_or_fail_clearly(tmp_path_factory, text):
    path = Path(tmp_path_factory.mktemp("jobs")) / "job.yaml"
    path.write_text(text)
    try:
        load_job(path)
    except JobConfigError as exc:
        assert str(path) in str(exc)


cells = st.text(alphabet=string.printable, max_size=8) | st.sampled_from(
    ["", "*", "0", "1.5", "-2", "nan", "inf", "1e9"]
)


@st.composite
def standards_files(draw: st.DrawFn) -> str:
    """A CSV with the standards' columns (some dropped, renamed or repeated) and rows of random cells."""
    columns = list(COLUMNS)
    if draw(st.booleans()):
        columns = draw(st.permutations(columns))[: draw(st.integers(0, len(columns)))]
    if draw(st.booleans()):
        columns = [*columns, draw(st.sampled_from([*COLUMNS, "extra"]))]
    rows = draw(st.lists(st.lists(cells, min_size=len(columns), max_size=len(columns)), max_size=6))
    lines = [",".join(columns), *(",".join(row) for row in rows)]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n,,,\n"]))


@FUZZ
@given((standards_files() | st.text(max_size=200)).map(str.encode) | st.binary(max_size=200))
def test_labour_standards_files_load_or_fail_clearly(tmp_path_factory, content):
    path = Path(tmp_path_factory.mktemp("standards")) / "standards.csv"
    path.write_bytes(content)
    try:
        frame = load_standards(path)
    except StandardsError as exc:
        assert str(path) in str(exc)
        return
    assert isinstance(frame, pl.DataFrame) and set(COLUMNS) <= set(frame.columns)


def numeric_paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a number or a boolean in a nested dict / list."""
    if isinstance(tree, bool | int | float):
        return [prefix]
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
    return [found for key, value in items for found in numeric_paths(value, (*prefix, key))]


@st.composite
def coerced_jobs(draw: st.DrawFn) -> tuple[dict, tuple, Any]:
    """A bundled job with one number or boolean replaced by a value of another type that lax parsing would take."""
    job = copy.deepcopy(BUNDLED[draw(st.sampled_from(sorted(BUNDLED)))])
    where = draw(st.sampled_from(numeric_paths(job)))
    parent = job
    for step in where[:-1]:
        parent = parent[step]
    old = parent[where[-1]]
    if isinstance(old, bool):
        new = draw(st.sampled_from([0, 1, "true", "yes", "1"]))
    elif isinstance(old, int):
        new = draw(st.sampled_from([True, False, str(old), float(old) + 0.5]))
    else:
        new = draw(st.sampled_from([True, str(old), float("nan")]))
    parent[where[-1]] = new
    return job, where, new


@FUZZ
@given(coerced_jobs())
def test_a_number_or_boolean_of_the_wrong_type_is_refused_never_coerced(case):
    """`horizon: true` used to become 1: strict mode takes no bool for a number, no text for either."""
    raw, where, new = case
    if where[:2] == ("models", "lightgbm_variants"):
        return  # free-form settings, checked when the variant is built
    try:
        parse_job(raw, origin="fuzz")
    except JobConfigError as exc:
        assert ".".join(str(p) for p in where) in str(exc), (where, new, exc)
        return
    raise AssertionError(f"{where} = {new!r} was accepted")
