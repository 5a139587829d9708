"""The job's staffing settings: the labour-standards file, the Monte Carlo draws, the demand uncertainty and the
named what-if scenarios."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from forecasting.job.catalogue import STAFFING_RULES
from forecasting.job.common import Day, Strict

# The staffing rules of the catalogue: where the plan's demand draws come from.
DemandRule = Literal[tuple(STAFFING_RULES)]  # type: ignore[valid-type]


class Scenario(Strict):
    """A named what-if: demand in [start, end] (all periods when unset) at selected warehouses (all when unset)
    scaled by 1 + uplift, e.g. a promotion or an event."""

    uplift: float = Field(gt=-1, le=100, description="0.15 = +15 % volume")
    start: Day | None = Field(None, description="first day scaled (default: the first period)")
    end: Day | None = Field(None, description="last day scaled (default: the last period)")
    warehouses: list[str] | None = Field(None, description="warehouses scaled (default: all)")

    @model_validator(mode="after")
    def _ordered(self) -> Scenario:
        if self.start and self.end and self.start > self.end:
            raise ValueError("scenario start is after its end")
        return self


class StaffingSpec(Strict):
    """How a job turns the reconciled warehouse forecast into a staffing plan."""

    standards: str = Field(description="labour-standards file (CSV or parquet), relative to the project root")
    samples: int = Field(4000, ge=200, le=200_000, description="Monte Carlo draws per warehouse x period")
    scenarios: dict[str, Scenario] = Field(default_factory=dict, description="named what-ifs: --event NAME")
    demand_uncertainty: DemandRule = Field(
        "reconciled",
        description="draw demand from the reconciled quantiles, or as mean x exp(error) from the latest backtest's "
        "warehouse errors (log actual / mean), which carry its real spread and bias",
    )
