"""The job-file reference, generated from the pydantic models themselves: every field with its type, default and
meaning (`docs/job-reference.md`, checked against the models by tests/job/test_reference.py), and the JSON Schema
that `forecasting jobs schema` prints. Regenerate the page with `python -m forecasting.job.reference`."""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from forecasting.job.schema import JobSpec

HEADER = """# Job file reference

Generated from the job schema (`forecasting/job/`) by `python -m forecasting.job.reference`; a test fails when
this page and the models disagree. `forecasting jobs schema` prints the same models as JSON Schema. A job file is
YAML; no value is coerced (`horizon: "3"` is refused), unknown fields are refused, and relative paths are under the
project home (`FORECASTING_HOME`, else the source checkout). `forecasting init DATA_FILE` writes a commented job file
for a data file.

Where the outputs go: `--output DIR` on any command, else `output_root`, else `data/outputs` under the project home
(or `$XDG_DATA_HOME/forecasting/outputs` when the project home lies inside an installation); never inside the
installed package. `FORECASTING_HOME` names the project home: the folder holding `data/` (bundled data and jobs),
`sql/` (the queries, views and recipes) and `prefect.yaml`.
"""


PIPE = "\\|"  # a | inside a Markdown table cell


def json_schema() -> dict:
    """The job file's JSON Schema (pydantic's, of JobSpec)."""
    return JobSpec.model_json_schema()


def _type(annotation: object) -> str:
    """A readable type: list[str], int | None, 'day' | 'week', a model's name."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return f" {PIPE} ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return f" {PIPE} ".join(_type(a) for a in args)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin in (list, dict, tuple):
        return f"{origin.__name__}[{', '.join(_type(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: object) -> str:
    if getattr(field, "default_factory", None) is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(its defaults)"
    return f"`{json.dumps(value, default=str)}`"


def _models(annotation: object) -> list[type[BaseModel]]:
    """The models a field's type refers to, to document them in turn."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(field path, type, default, meaning) for every field of `model` and the models inside it."""
    out = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        meaning = " ".join((field.description or "").split())
        inner = _models(field.annotation)
        if not meaning and inner:
            meaning = " ".join((inner[0].__doc__ or "").split())
        out.append((path, _type(field.annotation), _default(field), meaning or "-"))
        for sub in inner:
            if sub is model:
                continue
            nested = "dict" in _type(field.annotation).split("[")[0]
            out += rows(sub, f"{path}.<name>." if nested else f"{path}.")
    return out


def markdown() -> str:
    """The reference page."""
    lines = [HEADER, "| field | type | default | meaning |", "|---|---|---|---|"]
    for path, kind, default, meaning in rows(JobSpec):
        cell = meaning.replace("|", PIPE)
        lines.append(f"| `{path}` | {kind} | {default.replace('|', PIPE)} | {cell} |")
    return "\n".join(lines) + "\n"


def reference_path() -> Path:
    return Path(__file__).resolve().parents[2] / "docs" / "job-reference.md"


if __name__ == "__main__":
    text = markdown()
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        sys.exit(0 if reference_path().read_text() == text else 1)
    reference_path().write_text(text)
    print(f"written: {reference_path()}")
