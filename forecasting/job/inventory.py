"""The job's inventory settings: the lead times (per SKU, per category or any other hierarchy key), the cycle
service levels the reorder points are set for, and how the lead-time demand is drawn from the daily forecast."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from forecasting.job.common import Strict

ServiceLevel = Annotated[float, Field(gt=0.5, lt=1.0)]


class InventorySpec(Strict):
    """Reorder point and safety stock per bottom series (forecasting.inventory): the `service_levels` quantiles of
    the demand over the series' lead time, drawn as sample paths from the published forecast's own quantiles."""

    service_levels: list[ServiceLevel] = Field(
        default_factory=lambda: [0.9, 0.95],
        description="cycle service levels (probability that the lead-time demand stays within the reorder point)",
    )
    lead_time: int = Field(7, ge=1, le=366, description="periods between an order and its arrival (default for all)")
    lead_times: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="hierarchy key -> value -> lead time, e.g. {category: {FOODS: 5}, sku: {FOODS_3_090: 3}}; "
        "a key nearer the bottom (sku) wins over one above it (category)",
    )
    samples: int = Field(2000, ge=200, le=100_000, description="sample paths per series")
    day_correlation: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="correlation of the Gaussian copula joining the days of a path: 0 independent days, 1 the sum "
        "of the daily quantiles; the policy backtest (benchmarks/daily_sku.py) shows what it achieves",
    )
    level: str | None = Field(None, description="the hierarchy level the quantities are for (default: the bottom)")

    @field_validator("service_levels")
    @classmethod
    def _sorted(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("needs at least one service level")
        return sorted(set(value))

    @field_validator("lead_times")
    @classmethod
    def _positive(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for key, table in value.items():
            bad = {v: lt for v, lt in table.items() if not 1 <= lt <= 366}
            if bad:
                raise ValueError(f"lead_times.{key}: lead times must be 1..366 periods, got {bad}")
        return value

    def longest(self) -> int:
        return max([self.lead_time, *(lt for table in self.lead_times.values() for lt in table.values())])
