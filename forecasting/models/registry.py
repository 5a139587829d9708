"""The models of the catalogue (forecasting.job.catalogue.MODELS), found by name: each entry's builder, its family,
and the shortest history it can forecast. The contract tests (tests/models/test_model_contract.py) run the same
checks over every entry."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from forecasting.job.catalogue import MODELS, ModelFamily
from forecasting.job.schema import JobSpec

LOCAL_FAMILIES: tuple[ModelFamily, ...] = ("statistical", "intermittent")  # statsforecast models, fitted per series


def builder(name: str) -> Callable[..., Any]:
    """The function registered for a catalogue model: for local families `builder(job) -> statsforecast model`."""
    module, _, function = MODELS[name].builder.partition(":")
    return getattr(import_module(module), function)


def family(name: str, job: JobSpec | None = None) -> ModelFamily:
    """A model's family; a job's LightGBM variants are LightGBMs."""
    if job is not None and name in job.models.lightgbm_variants:
        return "lightgbm"
    return MODELS[name].family


def is_local(name: str) -> bool:
    """Whether `name` is a statsforecast model fitted per series (not a LightGBM, a variant or a combination)."""
    return name in MODELS and MODELS[name].family in LOCAL_FAMILIES


def local_models(job: JobSpec, names: list[str]) -> list[object]:
    """statsforecast model instances for the job, one per name, in order."""
    return [builder(name)(job) for name in names]


def minimum_history(name: str, job: JobSpec) -> int:
    """The fewest periods a series needs for the model to forecast it with intervals, beside the job's own
    `min_history` (the job schema's rule, which the data-quality gate applies before anything is fitted)."""
    return job.minimum_history(name)
