"""The job's time grains: the base grain (the job's own `freq`, forecast `horizon` periods ahead) and coarser grains
that nest exactly in it (a week is 7 days, a 4-week period 28), each with its own horizon and models. Every grain
is forecast, and the grains are reconciled across time where they all cover the same span and across the
hierarchy everywhere (forecasting.reconcile.temporal; docs/time-grains.md).

Calendar months are not a grain: a month has 28 to 31 days and does not nest in weeks. Inside the day horizon a
calendar month is served by the published days summed (they add up to the weeks and 4-week periods); beyond it the
4-week grain is the long-range budget grain (13 periods a year)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from forecasting.job.common import Strict

GRAIN_MODELS = ["AutoETS", "AutoTheta", "SeasonalNaive", "Naive"]


class CoarseGrain(Strict):
    """One grain above the base grain: `periods` base periods each, counted back from the forecast start so that
    the last history period ends on the as-of date."""

    name: str = Field(description="the grain's name in the outputs' `grain` column, e.g. week or 4-week")
    periods: int = Field(ge=2, le=366, description="base periods (days) in one period of this grain: 7 for a week")
    horizon: int = Field(ge=1, le=104, description="periods of this grain forecast ahead, e.g. 13 weeks")
    season_length: int = Field(
        1, ge=1, le=104, description="periods of this grain in a season (52 weeks, 13 four-week periods; 1: none)"
    )
    models: list[str] = Field(
        default_factory=lambda: ["AutoETS", "AutoTheta", "SeasonalNaive"],
        description="statistical models run at every level of this grain; the one with the lowest RMSSE over the "
        f"grain's rolling-origin windows is its Base per level. Any of {GRAIN_MODELS}",
    )

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in GRAIN_MODELS]
        if unknown or not value:
            raise ValueError(f"grain models {unknown or value} must be a non-empty subset of {GRAIN_MODELS}")
        return value


class GrainsSpec(Strict):
    """The grains of a job with more than one: the base grain (its periods are the job's `freq`, its horizon the
    job's `horizon`) and the coarser ones, each nesting exactly in the next."""

    base: str = Field("day", description="the base grain's name in the outputs' `grain` column")
    coarser: list[CoarseGrain] = Field(
        min_length=1, description="coarser grains, finest first; each one's periods a multiple of the one before"
    )
    windows: int = Field(
        4,
        ge=2,
        le=52,
        description="rolling origins per coarse grain, one horizon apart, on which each level's model is chosen "
        "and the reconciliation checked against Base (nothing worse than Base is published)",
    )

    @model_validator(mode="after")
    def _nest(self) -> GrainsSpec:
        names = [self.base, *(g.name for g in self.coarser)]
        if len(set(names)) != len(names):
            raise ValueError(f"grains: names {names} must differ")
        sizes = [1, *(g.periods for g in self.coarser)]
        for finer, coarser in zip(sizes, sizes[1:], strict=False):
            if coarser <= finer or coarser % finer:
                raise ValueError(
                    f"grains: {coarser} base periods do not nest exactly in {finer}; each grain's periods must be a "
                    "multiple of the finer grain's"
                )
        return self

    def names(self) -> list[str]:
        """Every grain's name, the base first."""
        return [self.base, *(g.name for g in self.coarser)]

    def problems(self, freq: str, horizon: int) -> list[str]:
        """Why the grains do not fit the job (base frequency, base horizon)."""
        out = []
        if freq != "day":
            out.append(f"grains need a daily job (freq: day), not {freq!r}")
        for grain in self.coarser:
            if horizon % grain.periods:
                out.append(
                    f"grains.{grain.name}: the day horizon {horizon} must be a whole number of {grain.name} periods "
                    f"({grain.periods} days) so that every grain covers the same first span"
                )
            if grain.horizon * grain.periods < horizon:
                out.append(f"grains.{grain.name}: a horizon of {grain.horizon} periods ends before the day horizon")
        return out
