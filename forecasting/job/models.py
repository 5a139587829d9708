"""The job's models: which run at which level, the LightGBM settings, combinations, trading days, closed days.

Model names are checked against the catalogue (forecasting.job.catalogue); what a model is and how it runs is
forecasting.models' business.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from forecasting.job.catalogue import model_names
from forecasting.job.common import IDENTIFIER, MONTH_DAY, Strict


class LevelRatioSpec(Strict):
    """Target y_t / mean(y_{t-shift-window+1} .. y_{t-shift}); keep shift >= horizon so the level is known."""

    shift: int = Field(28, ge=1, le=1000, description="periods back the level window ends")
    window: int = Field(28, ge=1, le=1000, description="periods the level is the mean of")


# The periods a trading-day adjustment applies to, and their mean length in days.
TRADING_DAY_PERIODS = {"month": 365.2425 / 12, "quarter": 365.2425 / 4}


class TradingDaysSpec(Strict):
    """Monthly / quarterly calendar adjustment (forecasting.data.trading_days): weights of Monday .. Sunday."""

    weekday_weights: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [1.0] * 7,
        min_length=7,
        max_length=7,
        description="relative sales of an open Monday .. Sunday (scaled to a mean of 1); all 1: days in the period",
    )
    bottom: bool = Field(True, description="adjust the bottom series too (false: only the aggregate levels' models)")


class LightGBMSpec(Strict):
    n_estimators: int = Field(200, ge=1, le=5000, description="boosting rounds (trees)")
    learning_rate: float = Field(0.05, gt=0, le=1, description="shrinkage of each tree")
    num_leaves: int = Field(63, ge=2, le=4096, description="leaves per tree")
    objective: Literal["tweedie", "poisson", "regression", "l1"] = Field(
        "tweedie", description="LightGBM's loss (tweedie and poisson suit counts with zeros)"
    )
    lags: list[int] = Field(
        default_factory=lambda: [1, 2, 3, 6, 12], description="periods back whose values are features"
    )
    rolling_windows: list[int] = Field(
        default_factory=lambda: [3, 6, 12], description="lengths of the rolling means used as features"
    )
    rolling_lag: int = Field(
        1,
        ge=1,
        description="rolling means are taken over values this many periods back; with every lag and this at "
        "or beyond the horizon, no forecast feeds a feature (non-recursive, as the M5 daily job uses)",
    )
    scale_target: bool = Field(
        False, description="standardise each bottom series (LocalStandardScaler); aggregate series always are"
    )
    level_ratio: LevelRatioSpec | None = Field(
        None,
        description="model y / (a recent level known at the origin) at every level instead of standardised or raw "
        "targets (forecasting.data.transforms.LevelRatio)",
    )
    colsample_bytree: float = Field(1.0, gt=0, le=1, description="share of features each tree may use")
    subsample: float = Field(1.0, gt=0, le=1, description="share of rows each tree sees (bagging every tree)")
    seeds: list[int] = Field(
        default_factory=list,
        description="average one LightGBM per seed (with subsample / colsample below 1 they differ); empty: one "
        "model with the job's seed",
    )
    series_feature: bool = Field(
        False, description="give the model each series' code as a static feature (per-series weekly shapes)"
    )
    event_distance: int = Field(
        0, ge=0, le=60, description="days to the next / since the last day of each event type, capped here (0: off)"
    )
    closed_day_distance: int = Field(
        0, ge=0, le=60, description="days to the next / since the last closed day, capped here (0: off)"
    )
    horizon_blocks: int | None = Field(
        None,
        ge=1,
        description="grouped direct horizons: one model per block of this many periods of the horizon, each with "
        "`lags`, `rolling_lag` and the level shift brought nearer by (horizon - the block's last period), so the "
        "first block sees the freshest history and no block sees past its origin; needs all three >= horizon",
    )
    half_life: int | None = Field(
        None,
        ge=1,
        description="weigh training rows by 0.5 ** (periods before the series' last one / half_life): recent "
        "behaviour counts more (None: equal weights)",
    )
    fixed_lags: list[int] = Field(
        default_factory=list,
        description="lags every horizon block keeps as they are (a year back: 364 days); used beside `lags`",
    )

    @field_validator("lags", "rolling_windows")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not value or any(v < 1 for v in value):
            raise ValueError("must be a non-empty list of positive integers")
        return sorted(set(value))

    @field_validator("fixed_lags")
    @classmethod
    def _positive_or_none(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError("must hold positive integers")
        return sorted(set(value))

    def horizon_problems(self, horizon: int) -> list[str]:
        """Why `horizon_blocks` cannot shift this model's lags for `horizon` (empty when it can or is off)."""
        if self.horizon_blocks is None:
            return []
        reaches = {"lags": min(self.lags), "rolling_lag": self.rolling_lag}
        reaches |= {"fixed_lags": min(self.fixed_lags)} if self.fixed_lags else {}
        reaches |= {"level_ratio.shift": self.level_ratio.shift} if self.level_ratio is not None else {}
        return [f"{name} {value} < horizon {horizon}" for name, value in reaches.items() if value < horizon]


STATISTICAL_MODELS = model_names("statistical")
INTERMITTENT_MODELS = model_names("intermittent")
(LIGHTGBM,) = model_names("lightgbm")
BASE = "Base"  # per series, the forecast that is reconciled (forecasting.models.base)
# The automatic combinations every level gets as candidates (forecasting.models.combinations).
MEAN, MEDIAN, WEIGHTED, TOP2 = "Mean", "Median", "Weighted", "Top2"
AUTO_COMBINATIONS = (MEAN, MEDIAN, WEIGHTED, TOP2)
FITTED_COMBINATIONS = (WEIGHTED, TOP2)  # their weights are fitted on earlier backtest windows
RESERVED = (BASE, *AUTO_COMBINATIONS)


class ModelSpec(Strict):
    """Which models run where. Local statistical models are cheap on the few aggregate series, costly per SKU."""

    aggregate_models: list[str] = Field(
        default_factory=lambda: ["AutoETS", "AutoTheta", "SeasonalNaive", "LightGBM"],
        description=f"any of {STATISTICAL_MODELS}, LightGBM and the names in lightgbm_variants",
    )
    bottom_models: list[str] = Field(
        default_factory=lambda: ["SeasonalNaive", "CrostonSBA", "LightGBM"],
        description=f"as aggregate_models, and the intermittent-demand models {INTERMITTENT_MODELS}",
    )
    combinations: dict[str, list[str]] = Field(
        default_factory=dict,
        description="name -> models whose forecasts (and interval bounds) are averaged; available at every level "
        "where all its members run (forecast combination: fpp3 and M4 found simple means hard to beat)",
    )
    automatic_combinations: bool = Field(
        True,
        description="offer at every level the Mean and Median of the models run there, a Weighted mean with "
        "weights fitted on earlier backtest windows only, and Top2, the mean of the two models best on those windows, "
        "as candidates for Base",
    )
    primary: dict[str, str] = Field(
        default_factory=dict,
        description="level name -> the model behind Base there until a backtest chooses (a level left out: Mean "
        "with automatic_combinations, else the first model run there)",
    )
    intermittent_model: str | None = Field(
        "CrostonSBA", description="model for bottom series whose average demand interval exceeds intermittent_adi"
    )
    choose_from_backtest: bool = Field(
        True,
        description="per level, take Base from the job's latest backtest (forecasting.evaluate.plan: the candidate "
        "clearly better than the Mean over its windows, else the Mean) instead of `primary` (the job file's choice "
        "stays when there is no backtest)",
    )
    choice_metric: Literal["rmsse", "wrmsse", "mase"] = Field(
        "rmsse", description="backtest metric the per-level choice minimises (mean over series and windows)"
    )
    intermittent_adi: float = Field(1.32, gt=1.0, description="average demand interval above which a series is sparse")
    lightgbm: LightGBMSpec = Field(
        default_factory=LightGBMSpec, description="the global LightGBM's settings (mlforecast; forecasting.models)"
    )
    lightgbm_variants: dict[str, dict[str, object]] = Field(
        default_factory=dict,
        description="name -> settings that differ from `lightgbm`: more global LightGBMs (e.g. with horizon_blocks) "
        "that run, are backtested and can be chosen or combined like any other model",
    )
    conformal_windows: int = Field(
        2,
        ge=2,
        le=10,
        description="windows of `horizon` periods the conformal intervals of LightGBM and the intermittent models are "
        "calibrated on: a series needs that many periods beyond the longest lag",
    )
    trading_days: TradingDaysSpec | None = Field(
        None,
        description="fit every model on sales per weekday-weighted open day of the period and scale forecasts back "
        "(month and quarter jobs; forecasting.data.trading_days)",
    )
    closed_days: list[str] = Field(
        default_factory=list,
        description="MM-DD days the business is closed every year (M5: 12-25): in a daily job their history is "
        "imputed from the same weekday one and two seasons earlier for training and their forecasts are 0; in a "
        "coarser job they only count as days without trading (models.trading_days)",
    )

    @field_validator("closed_days")
    @classmethod
    def _month_day(cls, value: list[str]) -> list[str]:
        for day in value:
            if not MONTH_DAY.match(day):
                raise ValueError(f"closed day {day!r} is not MM-DD")
        return sorted(set(value))

    @model_validator(mode="after")
    def _intermittent_is_run(self) -> ModelSpec:
        for name, settings in self.lightgbm_variants.items():
            if not IDENTIFIER.match(name) or name in (*STATISTICAL_MODELS, *INTERMITTENT_MODELS, LIGHTGBM, *RESERVED):
                raise ValueError(f"lightgbm variant name {name!r} must be a new plain identifier")
            LightGBMSpec.model_validate(self.lightgbm.model_dump() | settings)
        known_aggregate = {*STATISTICAL_MODELS, *self.lightgbm_names}
        unknown = [m for m in self.aggregate_models if m not in known_aggregate]
        unknown += [m for m in self.bottom_models if m not in known_aggregate | set(INTERMITTENT_MODELS)]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}: not statistical, intermittent, LightGBM or a variant")
        if self.intermittent_model is not None and self.intermittent_model not in self.bottom_models:
            raise ValueError(f"intermittent_model {self.intermittent_model!r} is not in bottom_models")
        known = set(self.aggregate_models) | set(self.bottom_models)
        for name, members in self.combinations.items():
            if not IDENTIFIER.match(name) or name in known or name in RESERVED:
                raise ValueError(f"combination name {name!r} must be a new plain identifier")
            if len(members) < 2 or set(members) - known:
                raise ValueError(f"combination {name!r} needs two or more of the models run: {sorted(known)}")
        return self

    @property
    def lightgbm_names(self) -> list[str]:
        return [LIGHTGBM, *self.lightgbm_variants]

    def lightgbm_spec(self, name: str) -> LightGBMSpec:
        """The settings of the LightGBM called `name`: `lightgbm`, with a variant's own settings over it."""
        if name == LIGHTGBM:
            return self.lightgbm
        return LightGBMSpec.model_validate(self.lightgbm.model_dump() | self.lightgbm_variants[name])

    def run_at(self, level: str, bottom: str) -> list[str]:
        """The models run at `level` (no combinations)."""
        return list(self.bottom_models if level == bottom else self.aggregate_models)

    def pool(self, level: str, bottom: str) -> list[str]:
        """The candidates for Base at `level`: the models run there, the combinations whose members all run there
        and, with automatic_combinations, Mean and Weighted (two models or more), Median and Top2 (three or more)."""
        run = self.run_at(level, bottom)
        named = [name for name, members in self.combinations.items() if set(members) <= set(run)]
        automatic = []
        if self.automatic_combinations and len(run) >= 2:
            automatic = [MEAN, *([MEDIAN] if len(run) >= 3 else []), WEIGHTED, *([TOP2] if len(run) >= 3 else [])]
        return run + named + automatic

    def default_primary(self, level: str, bottom: str) -> str:
        """Base at `level` before any backtest: the job file's `primary`, else the Mean of the models run there
        (the diverse choice), else the one model run there."""
        if level in self.primary:
            return self.primary[level]
        pool = self.pool(level, bottom)
        return MEAN if MEAN in pool else pool[0]
