"""The registry: every model, reconciliation method and staffing rule a job may name, in one place.

A job file names these; the schema checks the names here, and the stage that runs them finds the code through
`builder` ("module:function", imported by that stage's registry: forecasting.models.registry,
forecasting.reconcile.methods, forecasting.staffing.rules). So adding one is its own module (or function) plus one
entry here, and the contract tests (tests/*/test_*_contract.py) run the same checks over every entry. The schema
imports no stage: the catalogue holds names and paths, not code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ModelFamily = Literal["statistical", "intermittent", "lightgbm"]


@dataclass(frozen=True)
class ModelEntry:
    """A base model. statistical and intermittent models are statsforecast models built per job (`builder(job)`);
    the lightgbm family is mlforecast's global LightGBM, of which a job may define named variants.

    `min_periods` (+ the job's season length with `plus_season`): the fewest periods a series needs for the model
    to forecast it with intervals and in-sample fits, as statsforecast 2.0 measured on series of every length up to
    30 (shorter raises inside the library); intermittent and LightGBM models need their calibration windows too."""

    family: ModelFamily
    builder: str
    summary: str
    min_periods: int = 1
    plus_season: bool = False


MODELS: dict[str, ModelEntry] = {
    "AutoETS": ModelEntry("statistical", "forecasting.models.statistical:auto_ets", "exponential smoothing, ETS", 7),
    "AutoTheta": ModelEntry("statistical", "forecasting.models.statistical:auto_theta", "theta method", 4),
    "AutoARIMA": ModelEntry("statistical", "forecasting.models.statistical:auto_arima", "seasonal ARIMA"),
    "SeasonalNaive": ModelEntry(
        "statistical", "forecasting.models.statistical:seasonal_naive", "the value one season back", 1, True
    ),
    "Naive": ModelEntry("statistical", "forecasting.models.statistical:naive", "the last value", 2),
    "CrostonSBA": ModelEntry(
        "intermittent", "forecasting.models.intermittent:croston_sba", "Croston, Syntetos-Boylan approximation"
    ),
    "TSB": ModelEntry("intermittent", "forecasting.models.intermittent:tsb", "Teunter-Syntetos-Babai"),
    "ADIDA": ModelEntry("intermittent", "forecasting.models.intermittent:adida", "aggregate-disaggregate (ADIDA)"),
    "IMAPA": ModelEntry("intermittent", "forecasting.models.intermittent:imapa", "intermittent multiple aggregation"),
    "LightGBM": ModelEntry("lightgbm", "forecasting.models.engines:lightgbm_forecast", "global gradient boosting"),
}


def model_names(family: ModelFamily) -> tuple[str, ...]:
    return tuple(name for name, entry in MODELS.items() if entry.family == family)


@dataclass(frozen=True)
class ReconcilerEntry:
    """A reconciliation method family. MinTrace takes a variant (`MinTrace_<variant>`); MiddleOut an upper method
    and optionally a level (`MiddleOut_<upper>[@<level>]`)."""

    builder: str
    summary: str


RECONCILERS: dict[str, ReconcilerEntry] = {
    "BottomUp": ReconcilerEntry("forecasting.reconcile.methods:bottom_up", "sum of the bottom series"),
    "MinTrace": ReconcilerEntry("forecasting.reconcile.methods:min_trace", "minimum-trace projection"),
    "MiddleOut": ReconcilerEntry(
        "forecasting.reconcile.middle_out:middle_out", "upper levels reconciled, lower split by proportions"
    ),
}


@dataclass(frozen=True)
class StaffingRuleEntry:
    """Where a staffing plan's demand draws come from (`staffing.demand_uncertainty`)."""

    builder: str
    summary: str


STAFFING_RULES: dict[str, StaffingRuleEntry] = {
    "reconciled": StaffingRuleEntry(
        "forecasting.staffing.rules:from_reconciled_quantiles", "draws from the reconciled quantiles"
    ),
    "backtest": StaffingRuleEntry(
        "forecasting.staffing.rules:from_backtest_errors", "mean x exp(error) from the backtest's own errors"
    ),
}
