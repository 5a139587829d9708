"""Job specifications: a job is data (source, frequency, horizon, models, labour standard), validated here.

Bundled jobs live in ``data/jobs/<name>.yaml``; paths inside a job are relative to the project root unless absolute.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
DEFAULT_JOB = "m5-monthly"
Frequency = Literal["day", "week", "month", "quarter"]
POLARS_FREQ = {"day": "1d", "week": "1w", "month": "1mo", "quarter": "3mo"}


def project_root() -> Path:
    """The folder holding data/, sql/ and prefect.yaml (override with FORECASTING_HOME)."""
    env = os.environ.get("FORECASTING_HOME")
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent


class JobConfigError(ValueError):
    """A job file or spec that does not validate; the message names the file and the fields at fault."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableSource(Strict):
    """One input table: a parquet or CSV file (or glob), or a table inside a DuckDB database file."""

    path: str
    format: Literal["parquet", "csv", "duckdb"] = "parquet"
    table: str | None = None
    columns: dict[str, str] = Field(default_factory=dict, description="logical name -> column in the file")

    @model_validator(mode="after")
    def _check(self) -> TableSource:
        if self.format == "duckdb" and not self.table:
            raise ValueError("a duckdb source needs `table`")
        if self.table is not None and not IDENTIFIER.match(self.table):
            raise ValueError(f"table name {self.table!r} is not a plain identifier")
        for logical, column in self.columns.items():
            if not column or "\x00" in column:
                raise ValueError(f"column for {logical!r} is empty")
        return self

    def resolved_path(self) -> Path:
        path = Path(self.path)
        return path if path.is_absolute() else project_root() / path


class KeyedFlag(Strict):
    """A 0/1 calendar flag that differs per value of a hierarchy key (M5 SNAP days: one column per state)."""

    key: str
    columns: dict[str, str] = Field(description="key value -> calendar column, e.g. CA: snap_CA")


class CalendarFeatures(Strict):
    """Calendar columns known ahead (events, SNAP days) that LightGBM uses as features, counted per period (days
    with the event in a month; 0/1 per day)."""

    events: list[str] = Field(default_factory=list, description="columns naming events or event types")
    flags: list[str] = Field(default_factory=list, description="0/1 columns used as they are")
    keyed_flags: dict[str, KeyedFlag] = Field(default_factory=dict, description="feature name -> per-key columns")

    def columns(self) -> list[str]:
        keyed = [c for flag in self.keyed_flags.values() for c in flag.columns.values()]
        return [*self.events, *self.flags, *keyed]


class SourceSpec(Strict):
    """Where the sales history comes from, and which days it covers (to tell complete periods from partial ones)."""

    sales: TableSource
    prices: TableSource | None = None
    calendar: TableSource | None = None
    calendar_features: CalendarFeatures | None = None
    observed_from: date | None = Field(None, description="first day the sales data covers; default: earliest date")
    observed_to: date | None = Field(None, description="last day the sales data covers; default: latest date")

    @field_validator("sales")
    @classmethod
    def _sales_columns(cls, value: TableSource) -> TableSource:
        missing = {"date", "quantity"} - set(value.columns)
        if missing:
            raise ValueError(f"sales.columns must map {sorted(missing)} (and every hierarchy key)")
        return value

    @model_validator(mode="after")
    def _prices_need_calendar(self) -> SourceSpec:
        if self.prices is not None:
            need = {"week", "price"} - set(self.prices.columns)
            if need:
                raise ValueError(f"prices.columns must map {sorted(need)} (and the keys prices are set by)")
            if self.calendar is None or {"date", "week"} - set(self.calendar.columns):
                raise ValueError("prices keyed by week need a calendar with columns date and week")
        if self.calendar_features is not None and (self.calendar is None or "date" not in self.calendar.columns):
            raise ValueError("calendar_features need a calendar with a date column")
        if self.observed_from and self.observed_to and self.observed_from > self.observed_to:
            raise ValueError("observed_from is after observed_to")
        return self


class LightGBMSpec(Strict):
    n_estimators: int = Field(200, ge=1, le=5000)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(63, ge=2, le=4096)
    objective: Literal["tweedie", "poisson", "regression", "l1"] = "tweedie"
    lags: list[int] = Field(default_factory=lambda: [1, 2, 3, 6, 12])
    rolling_windows: list[int] = Field(default_factory=lambda: [3, 6, 12])
    rolling_lag: int = Field(
        1,
        ge=1,
        description="rolling means are taken over values this many periods back; with every lag and this at "
        "or beyond the horizon, no forecast feeds a feature (non-recursive, as the M5 daily job uses)",
    )
    scale_target: bool = Field(
        False, description="standardise each bottom series (LocalStandardScaler); aggregate series always are"
    )

    @field_validator("lags", "rolling_windows")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not value or any(v < 1 for v in value):
            raise ValueError("must be a non-empty list of positive integers")
        return sorted(set(value))


class HierarchySpec(Strict):
    """Which key columns identify a bottom series and which aggregation levels exist.

    `columns` are the key columns of a bottom series; each level lists the ones it groups by (total: none). A strict
    tree (total -> region -> warehouse -> sku) and a grouped structure (Australian tourism: (State / Region) x
    Purpose) are both written this way. `nested` names child -> parent keys that must be consistent in the data
    (a warehouse sits in one region)."""

    columns: list[str] = Field(
        default_factory=lambda: ["region", "warehouse", "sku"], description="key columns of a bottom series"
    )
    levels: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "total": [],
            "region": ["region"],
            "warehouse": ["region", "warehouse"],
            "sku": ["region", "warehouse", "sku"],
        }
    )
    nested: dict[str, str] = Field(default_factory=lambda: {"warehouse": "region"})

    @field_validator("levels")
    @classmethod
    def _top_to_bottom(cls, value: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        """Mapping order means nothing in YAML: order levels by how many keys they group by, and each level's keys
        as in `columns` (so ids read total/CA/CA_1/FOODS_1_001 whatever order the file uses)."""
        keys = info.data.get("columns") or []
        position = {k: i for i, k in enumerate(keys)}
        ordered = sorted(value.items(), key=lambda item: len(item[1]))
        return {name: sorted(cols, key=lambda c: position.get(c, len(keys))) for name, cols in ordered}

    @model_validator(mode="after")
    def _check(self) -> HierarchySpec:
        reserved = {"unique_id", "level", "ds", "y", "total", "date", "quantity", "week", "price"}
        for key in self.columns:
            if not IDENTIFIER.match(key) or key in reserved:
                raise ValueError(f"hierarchy key {key!r} must be a plain identifier other than {sorted(reserved)}")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("hierarchy keys repeat")
        if not self.levels:
            raise ValueError("hierarchy needs at least one level")
        seen: list[frozenset[str]] = []
        for name, columns in self.levels.items():
            if not JOB_NAME.match(name):
                raise ValueError(f"level name {name!r} may hold letters, digits, '.', '_' and '-' only")
            unknown = set(columns) - set(self.columns)
            if unknown:
                raise ValueError(f"level {name!r} uses {sorted(unknown)}, which are not hierarchy keys")
            if frozenset(columns) in seen:
                raise ValueError(f"level {name!r} groups by the same keys as another level")
            seen.append(frozenset(columns))
        if list(self.levels.values())[-1] != self.columns:
            raise ValueError("one level must group by all keys (the bottom series)")
        for child, parent in self.nested.items():
            if child not in self.columns or parent not in self.columns:
                raise ValueError(f"nested {child!r} -> {parent!r}: both must be hierarchy keys")
        return self

    @property
    def bottom(self) -> str:
        return list(self.levels)[-1]

    @property
    def identity(self) -> list[str]:
        """The keys that identify a bottom series: parents implied by `nested` are left out (sku, warehouse)."""
        implied = {parent for child, parent in self.nested.items() if child in self.columns}
        return [k for k in self.columns if k not in implied]

    @property
    def names(self) -> list[str]:
        return list(self.levels)


class ModelSpec(Strict):
    """Which models run where. Local statistical models are cheap on the few aggregate series, costly per SKU."""

    aggregate_models: list[Literal["AutoETS", "AutoTheta", "AutoARIMA", "SeasonalNaive", "Naive", "LightGBM"]] = Field(
        default_factory=lambda: ["AutoETS", "AutoTheta", "SeasonalNaive", "LightGBM"]
    )
    bottom_models: list[
        Literal["AutoETS", "AutoTheta", "AutoARIMA", "SeasonalNaive", "Naive", "CrostonSBA", "TSB", "IMAPA", "LightGBM"]
    ] = Field(default_factory=lambda: ["SeasonalNaive", "CrostonSBA", "LightGBM"])
    combinations: dict[str, list[str]] = Field(
        default_factory=dict,
        description="name -> models whose forecasts (and interval bounds) are averaged; available at every level "
        "where all its members run (forecast combination: fpp3 and M4 found simple means hard to beat)",
    )
    primary: dict[str, str] = Field(
        default_factory=lambda: {"total": "AutoETS", "region": "AutoETS", "warehouse": "AutoETS", "sku": "LightGBM"},
        description="level name -> the model behind Base there",
    )
    intermittent_model: str | None = Field(
        "CrostonSBA", description="model for bottom series whose average demand interval exceeds intermittent_adi"
    )
    choose_from_backtest: bool = Field(
        False,
        description="per level, use the base model with the lowest RMSSE in the job's latest backtest instead of "
        "`primary` (the job file's choice stays when there is no backtest)",
    )
    choice_metric: Literal["rmsse", "wrmsse", "mase"] = Field(
        "rmsse", description="backtest metric the per-level choice minimises (mean over series and windows)"
    )
    intermittent_adi: float = Field(1.32, gt=1.0, description="average demand interval above which a series is sparse")
    lightgbm: LightGBMSpec = Field(default_factory=LightGBMSpec)
    conformal_windows: int = Field(2, ge=2, le=10)

    @model_validator(mode="after")
    def _intermittent_is_run(self) -> ModelSpec:
        if self.intermittent_model is not None and self.intermittent_model not in self.bottom_models:
            raise ValueError(f"intermittent_model {self.intermittent_model!r} is not in bottom_models")
        known = set(self.aggregate_models) | set(self.bottom_models)
        for name, members in self.combinations.items():
            if not IDENTIFIER.match(name) or name in known or name == "Base":
                raise ValueError(f"combination name {name!r} must be a new plain identifier")
            if len(members) < 2 or set(members) - known:
                raise ValueError(f"combination {name!r} needs two or more of the models run: {sorted(known)}")
        return self

    def pool(self, level: str, bottom: str) -> list[str]:
        """The models run at `level`, and the combinations whose members all run there."""
        run = list(self.bottom_models if level == bottom else self.aggregate_models)
        return run + [name for name, members in self.combinations.items() if set(members) <= set(run)]


ReconcileMethod = Literal[
    "BottomUp", "MinTrace", "MinTrace_ols", "MinTrace_wls_struct", "MinTrace_wls_var", "MinTrace_mint_shrink"
]


class ReconcileSpec(Strict):
    """Reconciliation methods; `MinTrace` means MinTrace with `mintrace_method`, `MinTrace_<m>` names one outright
    (several MinTrace variants can run side by side, as the tourism benchmark does)."""

    methods: list[ReconcileMethod] = Field(default_factory=lambda: ["BottomUp", "MinTrace"])
    mintrace_method: Literal["ols", "wls_struct", "wls_var", "mint_shrink"] = Field(
        "wls_struct",
        description="wls_var and mint_shrink estimate error variances from the calibration errors (in-sample fits or "
        "backtest errors, see `calibration`); mint_shrink needs a dense n x n covariance (small hierarchies only)",
    )
    nonnegative: bool = True
    publish: ReconcileMethod = "MinTrace"
    calibration: Literal["insample", "backtest"] = Field(
        "insample",
        description="errors the reconciled intervals are calibrated on: in-sample fits, or the out-of-sample errors "
        "of the job's latest backtest (falls back to in-sample when there is none covering every series)",
    )

    def label(self, method: str) -> str:
        """The output name of a method: BottomUp or MinTrace_<variant>."""
        return f"MinTrace_{self.mintrace_method}" if method == "MinTrace" else method

    @model_validator(mode="after")
    def _publish_is_run(self) -> ReconcileSpec:
        labels = [self.label(m) for m in self.methods]
        if len(set(labels)) != len(labels):
            raise ValueError(f"methods name the same reconciliation twice: {labels}")
        if self.label(self.publish) not in labels:
            raise ValueError(f"publish method {self.publish!r} is not in methods")
        return self


class LabourStandard(Strict):
    """A first, single-process labour standard; the per-process model is a separate issue."""

    minutes_per_unit: float = Field(gt=0, le=600)
    pfd_allowance: float = Field(0.15, ge=0, le=1, description="personal, fatigue and delay allowance")
    productive_hours_per_fte: float = Field(gt=0, le=744, description="productive hours one FTE works per period")
    shrinkage: float = Field(0.12, ge=0, lt=1, description="absence, leave, training")


class JobSpec(Strict):
    name: str
    description: str = ""
    freq: Frequency
    horizon: int = Field(ge=1, le=366)
    season_length: int = Field(ge=1, le=366)
    source: SourceSpec
    incomplete_periods: Literal["drop", "prorate"] = "drop"
    zero_fill_gaps: bool = False
    min_history: int = Field(24, ge=2)
    levels: list[int] = Field(default_factory=lambda: [60, 80, 90, 95])
    models: ModelSpec = Field(default_factory=ModelSpec)
    reconciliation: ReconcileSpec = Field(default_factory=ReconcileSpec)
    hierarchy: HierarchySpec = Field(default_factory=HierarchySpec)
    staffing: LabourStandard | None = Field(None, description="labour standard for the `warehouse` level, if any")
    filters: dict[str, list[str]] = Field(
        default_factory=dict, description="hierarchy key -> only these values (a slice for tests and ad hoc runs)"
    )
    sku_filter: list[str] | None = Field(None, description="shorthand for filters: {sku: [...]}")
    warehouse_filter: list[str] | None = Field(None, description="shorthand for filters: {warehouse: [...]}")
    official_weights: str | None = Field(
        None,
        description="M5 weights_evaluation file (Level_id, Agg_Level_1, Agg_Level_2, weight): the organizers' WRMSSE "
        "weights; without it backtests weigh series by their sales in the last `horizon` periods before each cutoff",
    )
    seed: int = 0
    n_jobs: int = Field(2, ge=1, le=256)
    output_root: str = "data/outputs"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not JOB_NAME.match(value):
            raise ValueError("job name may hold letters, digits, '.', '_' and '-' only")
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
        for key in self.key_filters():
            if key not in keys:
                raise ValueError(f"filter on {key!r}, which is not a hierarchy key {keys}")
        for level, model in self.models.primary.items():
            if level not in self.hierarchy.levels:
                raise ValueError(f"models.primary names level {level!r}, which the hierarchy does not have")
            if model not in self.models.pool(level, self.hierarchy.bottom):
                raise ValueError(f"primary model {model!r} for {level!r} is not in the models run there")
        absent = [lv for lv in self.hierarchy.levels if lv not in self.models.primary]
        if absent:
            raise ValueError(f"models.primary has no model for level(s) {absent}")
        if self.staffing is not None and "warehouse" not in self.hierarchy.levels:
            raise ValueError("staffing needs a hierarchy level named 'warehouse'")
        return self

    def key_filters(self) -> dict[str, list[str]]:
        """Every filter, the shorthands included: hierarchy key -> values."""
        merged = dict(self.filters)
        for key, values in (("sku", self.sku_filter), ("warehouse", self.warehouse_filter)):
            if values:
                merged[key] = list(values)
        return merged

    def official_weights_path(self) -> Path:
        path = Path(self.official_weights or "")
        return path if path.is_absolute() else project_root() / path

    def output_dir(self) -> Path:
        path = Path(self.output_root)
        return (path if path.is_absolute() else project_root() / path) / self.name


def jobs_dir() -> Path:
    return project_root() / "data" / "jobs"


def available_jobs() -> list[str]:
    return sorted(p.stem for p in jobs_dir().glob("*.yaml"))


def load_job(name_or_path: str | Path | None = None, **overrides: object) -> JobSpec:
    """Read a bundled job by name, or a YAML file by path, and validate it (overrides win)."""
    name_or_path = name_or_path or DEFAULT_JOB
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        if not JOB_NAME.match(str(name_or_path)):
            raise JobConfigError(f"job name {str(name_or_path)!r} is not valid")
        path = jobs_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            raise JobConfigError(f"unknown job {str(name_or_path)!r}; bundled jobs: {', '.join(available_jobs())}")
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise JobConfigError(f"{path}: cannot read job file: {exc}") from exc
    if not isinstance(raw, dict):
        raise JobConfigError(f"{path}: a job file must be a mapping")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return parse_job(raw, origin=str(path))


def parse_job(raw: dict | JobSpec, origin: str = "job spec") -> JobSpec:
    if isinstance(raw, JobSpec):
        return raw
    try:
        return JobSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise JobConfigError(f"{origin}: invalid job: {problems}") from exc
