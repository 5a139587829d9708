"""The job schema: a job is data (sources, frequency, horizon, hierarchy, models, reconciliation, backtest, labour
standards), validated here. Paths inside a job are relative to the project root unless absolute."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from forecasting.job.catalogue import MODELS
from forecasting.job.common import (
    JOB_NAME,
    Strict,
    default_output_root,
    output_root_problem,
    project_root,
)
from forecasting.job.engine import EngineSpec
from forecasting.job.grains import GrainsSpec
from forecasting.job.hierarchy import HierarchySpec
from forecasting.job.inventory import InventorySpec
from forecasting.job.models import TRADING_DAY_PERIODS, ModelSpec
from forecasting.job.reconciliation import MIDDLE_OUT, ReconcileSpec, middle_out_parts
from forecasting.job.sources import CalendarFeatures, KeyedFlag, SourceSpec, TableSource
from forecasting.job.staffing import StaffingSpec

__all__ = ["CalendarFeatures", "KeyedFlag", "SourceSpec", "TableSource", "JobSpec", "BacktestSpec"]

Frequency = Literal["day", "week", "month", "quarter"]
POLARS_FREQ = {"day": "1d", "week": "1w", "month": "1mo", "quarter": "3mo"}
# pandas aliases for the libraries that need them (statsforecast on pandas / Fugue); periods are dated by their start.
PANDAS_FREQ = {"day": "D", "week": "W-MON", "month": "MS", "quarter": "QS"}


class BacktestSpec(Strict):
    """The backtest the nightly run reads (model choice, reconciled intervals, staffing bands): what `forecasting
    backtest` and the scheduled backtest flow run unless told otherwise. More windows give the intervals more
    independent errors to calibrate on: each window's errors share its level error."""

    windows: int = Field(3, ge=1, description="rolling origins")
    step: int | None = Field(None, ge=1, description="periods between origins (default: the horizon)")
    nested_windows: int | None = Field(
        None,
        ge=1,
        description="the most recent windows whose published forecast is scored nested (each published with the "
        "plan chosen from the windows before it); the earlier ones only choose. Default: half the windows",
    )

    def scored_windows(self, available: int) -> int:
        """How many of the `available` windows the nested score covers."""
        return min(available, self.nested_windows or max(1, available // 2))


class JobSpec(Strict):
    name: str = Field(description="the job's name: its output folder, and --job NAME for a bundled job")
    description: str = Field("", description="one line for `forecasting jobs` and the report")
    freq: Frequency = Field(description="the period forecast: rows are summed into days, weeks, months or quarters")
    horizon: int = Field(ge=1, le=366, description="periods forecast ahead")
    season_length: int = Field(ge=1, le=366, description="periods in a season (12 for months, 52 weeks, 7 days)")
    source: SourceSpec = Field(description="where the sales history comes from")
    incomplete_periods: Literal["drop", "prorate"] = Field(
        "drop", description="a period the data covers only in part: left out, or scaled up to a whole one"
    )
    zero_fill_gaps: bool = Field(
        False,
        description="a missing period inside a series counts as 0 sales (default: the gate refuses it; with "
        "source.order_lines always true: a period with no line sold nothing)",
    )
    min_history: int = Field(
        24,
        ge=2,
        description="bottom series with fewer complete periods (or fewer than the bottom models need) are new: "
        "forecast by the launch models (forecasting.models.young), never refused",
    )
    levels: list[int] = Field(
        default_factory=lambda: [60, 80, 90, 95],
        description="prediction-interval levels in percent (80 and 95 are always added)",
    )
    models: ModelSpec = Field(default_factory=ModelSpec)
    reconciliation: ReconcileSpec = Field(default_factory=ReconcileSpec)
    backtest: BacktestSpec = Field(default_factory=BacktestSpec)
    hierarchy: HierarchySpec = Field(
        None,
        validate_default=False,
        description="the keys and levels (forecasting.job.hierarchy); default: the keys mapped in "
        "source.sales.columns (all but date and quantity), with HierarchySpec's default levels",
    )
    staffing: StaffingSpec | None = Field(
        None, description="labour standards for a level named `warehouse`; none: the job has no staffing plan"
    )
    grains: GrainsSpec | None = Field(
        None,
        description="coarser time grains forecast beside the days and reconciled with them across time and the "
        "hierarchy (docs/time-grains.md); none: the job's own grain only",
    )
    inventory: InventorySpec | None = Field(
        None, description="reorder points and safety stocks per bottom series (forecasting.inventory); none: no table"
    )
    filters: dict[str, list[str]] = Field(
        default_factory=dict, description="hierarchy key -> only these values (a slice for tests and ad hoc runs)"
    )
    sku_filter: list[str] | None = Field(None, description="shorthand for filters: {sku: [...]} (a key named sku)")
    warehouse_filter: list[str] | None = Field(
        None, description="shorthand for filters: {warehouse: [...]} (a key named warehouse)"
    )
    official_weights: str | None = Field(
        None,
        description="M5 weights_evaluation file (Level_id, Agg_Level_1, Agg_Level_2, weight): the organizers' WRMSSE "
        "weights; without it backtests weigh series by their sales in the last `horizon` periods before each cutoff",
    )
    drivers: bool = Field(
        True,
        description="explain every forecast: driver families in units in drivers.parquet, the report and diff "
        "(docs/drivers.md)",
    )
    drivers_method: Literal["auto", "treeshap", "paths"] = Field(
        "auto",
        description="how LightGBM forecasts are split: LightGBM's TreeSHAP, the path attributions (exact too, far "
        "cheaper on deep trees), or auto: TreeSHAP up to 1M rows x trees per model, paths beyond (docs/drivers.md)",
    )
    seed: int = Field(0, description="random seed of LightGBM and the Monte Carlo draws (same inputs, same outputs)")
    n_jobs: int = Field(2, ge=1, le=256, description="worker processes of the statistical models")
    engine: EngineSpec = Field(
        default_factory=EngineSpec, description="local, or a Dask cluster (forecasting.models.engines)"
    )
    output_root: str | None = Field(
        None,
        description="folder the job's outputs go under (<output_root>/<name>/); relative to the project home. "
        "Default: data/outputs under the project home (FORECASTING_HOME, else the source checkout), or "
        "$XDG_DATA_HOME/forecasting/outputs when that would lie inside an installation. `--output` on a command "
        "wins over both. Never the file system's root, a system folder or an installed package",
    )

    @model_validator(mode="before")
    @classmethod
    def _order_lines_fill_gaps(cls, data: Any) -> Any:
        """Order lines have no row for a period without sales: such a period is 0 from the series' first sale on."""
        source = data.get("source") if isinstance(data, dict) else None
        if isinstance(source, dict) and source.get("order_lines") is not None and "zero_fill_gaps" not in data:
            data = data | {"zero_fill_gaps": True}
        return data

    @model_validator(mode="before")
    @classmethod
    def _default_hierarchy(cls, data: Any) -> Any:
        """No default names a level of one data set: a job without `hierarchy` groups by the keys it maps."""
        if isinstance(data, dict) and data.get("hierarchy") is None:
            sales = (data.get("source") or {}).get("sales") if isinstance(data.get("source"), dict) else None
            columns = sales.get("columns") if isinstance(sales, dict) else None
            if isinstance(columns, dict):
                keys = [k for k in columns if k not in ("date", "quantity")]
                data = data | {"hierarchy": {"columns": keys}}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not JOB_NAME.match(value):
            raise ValueError("job name may hold letters, digits, '.', '_' and '-' only")
        return value

    @field_validator("output_root")
    @classmethod
    def _output_root(cls, value: str | None) -> str | None:
        if value is None:
            return value
        path = Path(value)
        problem = output_root_problem(path if path.is_absolute() else project_root() / path)
        if problem:
            raise ValueError(f"output_root {value!r} is {problem}; choose a folder of your own for the outputs")
        return value

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: list[int]) -> list[int]:
        if any(not 0 < v < 100 for v in value):
            raise ValueError("interval levels must be between 0 and 100")
        required = {80, 95}
        return sorted(set(value) | required)

    @model_validator(mode="after")
    def _fits_hierarchy(self) -> JobSpec:
        keys = self.hierarchy.columns
        if not keys:
            raise ValueError("hierarchy.columns: a job needs at least one key column (e.g. the item or the store)")
        missing = [k for k in keys if k not in self.source.sales.columns]
        if missing:
            raise ValueError(f"source.sales.columns must map the hierarchy keys {missing}")
        if self.source.prices is not None:
            price_keys = set(self.source.prices.columns) - {"week", "price"}
            if not price_keys or price_keys - set(keys):
                raise ValueError(f"source.prices.columns: keys other than week and price must be hierarchy keys {keys}")
        features = self.source.calendar_features
        for name, flag in (features.keyed_flags if features else {}).items():
            if flag.key not in keys:
                raise ValueError(f"calendar_features.keyed_flags.{name}: key {flag.key!r} is not a hierarchy key")
        if (lines := self.source.order_lines) is not None:
            problems = lines.problems(keys, self.source.prices is not None, self.zero_fill_gaps)
            if problems:
                raise ValueError("; ".join(problems))
        for key in self.key_filters():
            if key not in keys:
                raise ValueError(f"filter on {key!r}, which is not a hierarchy key {keys}")
        for level, model in self.models.primary.items():
            if level not in self.hierarchy.levels:
                raise ValueError(f"models.primary names level {level!r}, which the hierarchy does not have")
            if model not in self.models.pool(level, self.hierarchy.bottom):
                raise ValueError(f"primary model {model!r} for {level!r} is not in the models run there")
        for name in self.models.lightgbm_names:
            problems = self.models.lightgbm_spec(name).horizon_problems(self.horizon)
            if problems:
                raise ValueError(f"{name}: horizon_blocks needs every lag at or beyond the horizon: {problems}")
        if self.models.trading_days is not None and self.freq not in TRADING_DAY_PERIODS:
            raise ValueError(
                f"models.trading_days adjusts {' and '.join(TRADING_DAY_PERIODS)} jobs, not freq {self.freq!r}"
            )
        middle = self.reconciliation.middle_level
        if middle is not None and middle not in list(self.hierarchy.levels)[:-1]:
            raise ValueError(f"reconciliation.middle_level {middle!r} is not a level above the bottom of the hierarchy")
        self._check_middle_out()
        if self.staffing is not None and "warehouse" not in self.hierarchy.levels:
            raise ValueError("staffing needs a hierarchy level named 'warehouse'")
        self._check_inventory()
        if self.grains is not None and (problems := self.grains.problems(self.freq, self.horizon)):
            raise ValueError("; ".join(problems))
        return self

    def _check_inventory(self) -> None:
        spec = self.inventory
        if spec is None:
            return
        if spec.level is not None and spec.level not in self.hierarchy.levels:
            raise ValueError(f"inventory.level {spec.level!r} is not a level of the hierarchy")
        unknown = [k for k in spec.lead_times if k not in self.hierarchy.columns]
        if unknown:
            raise ValueError(f"inventory.lead_times: {unknown} are not hierarchy keys {self.hierarchy.columns}")
        if spec.longest() > self.horizon:
            raise ValueError(f"inventory: a lead time of {spec.longest()} periods is beyond the horizon {self.horizon}")

    def _check_middle_out(self) -> None:
        """Middle-out splits each level from the one above it, so it needs a tree; and two methods that would
        compute the same reconciliation under two names are refused (at the top level every upper method is the
        total's Base itself)."""
        spec = self.reconciliation
        labels = [spec.label(m) for m in spec.methods if spec.label(m).startswith(MIDDLE_OUT)]
        if not labels:
            return
        levels = self.hierarchy.levels
        names = list(levels)
        crossed = [(a, b) for a, b in pairwise(names) if not set(levels[a]) <= set(levels[b])]
        if crossed:
            a, b = crossed[0]
            raise ValueError(
                f"reconciliation method {labels[0]!r}: middle-out needs a tree, but levels {a!r} and {b!r} group by "
                "crossed keys (a grouped structure); use BottomUp or MinTrace"
            )
        same: dict[tuple[str, str], str] = {}
        for label in labels:
            upper = middle_out_parts(label)[0]
            level = spec.middle_level_of(label, names)
            if level not in names[:-1]:
                raise ValueError(
                    f"reconciliation method {label!r}: {level!r} is not a level above the bottom of the hierarchy "
                    f"(one of {', '.join(names[:-1])})"
                )
            key = ("top-down" if level == names[0] else upper, level)
            if key in same:
                raise ValueError(f"reconciliation methods {same[key]!r} and {label!r} are the same reconciliation")
            same[key] = label

    @property
    def closed_periods(self) -> list[str]:
        """Closed days that are whole periods (imputed in the history, forecast as 0): a daily job's. In coarser
        jobs a period's `ds` is its first day, so a closed day there only counts as a day without trading."""
        return self.models.closed_days if self.freq == "day" else []

    def primary_models(self) -> dict[str, str]:
        """Level -> the model behind Base before any backtest chooses (ModelSpec.default_primary)."""
        bottom = self.hierarchy.bottom
        return {level: self.models.default_primary(level, bottom) for level in self.hierarchy.names}

    def lightgbm_history(self) -> tuple[int, int]:
        """(longest lag, calibration periods) of the LightGBMs: a series must be longer than their sum to have a
        training row with every lag before mlforecast's conformal windows."""
        spec = self.models.lightgbm
        return max(spec.lags + spec.fixed_lags), self.horizon * self.models.conformal_windows

    def minimum_history(self, name: str) -> int:
        """The fewest periods a series needs for model `name` (a catalogue model, a LightGBM variant or a
        combination) to forecast it with intervals: a LightGBM its longest lag before mlforecast's conformal windows,
        an intermittent model those windows, a statistical model what the catalogue says (SeasonalNaive: a season)."""
        if name in self.models.combinations:
            return max(self.minimum_history(member) for member in self.models.combinations[name])
        calibration = self.horizon * self.models.conformal_windows
        if name in self.models.lightgbm_names:
            spec = self.models.lightgbm_spec(name)
            return max(spec.lags + spec.fixed_lags) + calibration + 1
        entry = MODELS[name]
        if entry.family == "intermittent":
            return calibration + 1
        return entry.min_periods + (self.season_length if entry.plus_season else 0)

    def key_filters(self) -> dict[str, list[str]]:
        """Every filter, the shorthands included: hierarchy key -> values."""
        merged = dict(self.filters)
        for key, values in (("sku", self.sku_filter), ("warehouse", self.warehouse_filter)):
            if values:
                merged[key] = list(values)
        return merged

    def staffing_standards_path(self) -> Path | None:
        """The labour-standards file (relative paths are under the project root), if the job staffs."""
        if self.staffing is None:
            return None
        path = Path(self.staffing.standards)
        return path if path.is_absolute() else project_root() / path

    def official_weights_path(self) -> Path:
        path = Path(self.official_weights or "")
        return path if path.is_absolute() else project_root() / path

    def output_dir(self) -> Path:
        if self.output_root is None:
            return default_output_root() / self.name
        path = Path(self.output_root)
        return (path if path.is_absolute() else project_root() / path) / self.name
