"""What drives each LightGBM forecast: LightGBM's own TreeSHAP on exactly the feature rows the forecast was made
from, grouped into driver families named from the job, and turned into units.

The rows: mlforecast calls `before_predict_callback` with each horizon step's features right before the model
predicts them (`FeatureCapture` keeps them), so the contributions are of the rows the forecast used: no refit and
no second feature pipeline. Recursive lags that hold earlier predicted steps are in those rows as mlforecast built
them.

Units (docs/drivers.md says why this method): the model predicts r = base + sum of contributions in its raw space;
the forecast in units is T(g(r)), with g the objective's link (exp for tweedie and poisson) and T mlforecast's inverse
target transforms (standardised target: times the series' scale plus its mean; level ratio: times the series'
recent level). A family k's effect is T(g(base + phi_k)) - T(g(base)): what that family alone moves the forecast from
the model's average; `baseline` is T(g(base)); `interactions` is what the families do together beyond their sum
(zero for an identity link, the cross terms of a log link). Per row, baseline + effects + interactions equal the
forecast exactly, and the check against mlforecast's own forecast (`check_units`) guards the row order.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import polars as pl
from mlforecast import MLForecast
from mlforecast.grouped_array import GroupedArray
from mlforecast.target_transforms import _BaseGroupedArrayTargetTransform

from forecasting.job.schema import JobSpec

BASELINE = "baseline"
INTERACTIONS = "interactions"
RECENT_LEVEL = "recent level"
SEASON = "season and calendar"
PRICE = "price"
IDENTITY = "series identity"
OTHER = "other features"
LOG_LINK = {"tweedie", "poisson", "gamma"}
DATE_FEATURES = {"weekday", "month", "day", "week", "quarter", "year", "dayofweek", "dayofyear"}
PRICE_FEATURES = {"price", "price_change", "price_ratio"}
SERIES_CODE = "series_code"  # the static feature forecasting.models.lightgbm adds with `series_feature`
LAG = re.compile(r"lag\d+|rolling_.*|expanding_.*|exponentially_weighted_.*")


class FeatureCapture:
    """mlforecast's `before_predict_callback`: keeps each horizon step's feature rows (one per series, in the
    order of the series) and hands them on unchanged."""

    def __init__(self) -> None:
        self.steps: list[Any] = []

    def __call__(self, features: Any) -> Any:
        self.steps.append(features.clone() if isinstance(features, pl.DataFrame) else features.copy())
        return features

    def rows(self) -> pl.DataFrame:
        """The captured rows, series-major (series 1's steps, then series 2's ...): the layout of mlforecast's
        forecast frame."""
        steps = [s if isinstance(s, pl.DataFrame) else pl.from_pandas(s) for s in self.steps]
        stacked = pl.concat(steps)
        n = steps[0].height
        order = np.arange(len(steps) * n).reshape(len(steps), n).T.ravel()
        return stacked[order]


def family_of(feature: str, job: JobSpec) -> str:
    """The driver family a feature belongs to, named from the job (its events' values, its flags)."""
    spec = job.source.calendar_features
    flags = set(spec.flags) | set(spec.keyed_flags) if spec is not None else set()
    if feature == SERIES_CODE:
        return IDENTITY
    if feature in PRICE_FEATURES:
        return PRICE
    if LAG.fullmatch(feature):
        return RECENT_LEVEL
    if feature in DATE_FEATURES or feature in ("days_to_closed", "days_since_closed"):
        return SEASON
    if feature in flags:
        return feature
    name = re.sub(r"^days_(to|since)_", "", feature)
    if name == "any_event":
        return "event (any)"
    if "=" in name:
        return f"event {name.split('=', 1)[1]}"
    return OTHER


def estimators(model: Any) -> list[Any]:
    """The fitted LGBMRegressors behind a model: one, or one per seed of a SeedMean (whose forecast is their mean,
    so its drivers are the mean of theirs)."""
    return list(getattr(model, "estimators_", [model]))


TREESHAP = "treeshap"
PATHS = "paths"
# Rows x trees above which `auto` takes the path attributions: LightGBM's TreeSHAP cost about 16 us per row and tree
# on the m5-monthly SKU model (200 trees of up to 27 levels: 58 CPU s for 18,294 rows, more than its fit), the paths
# about 0.1 us (pred_leaf and one table look-up per tree); docs/drivers.md.
TREESHAP_BUDGET = 1_000_000


def method_for(setting: str, rows: int, trees: int) -> str:
    """The attribution a model's forecast gets: the job's `drivers_method`, `auto` by the budget above."""
    if setting != "auto":
        return setting
    return TREESHAP if rows * trees <= TREESHAP_BUDGET else PATHS


def contributions(estimator: Any, X: pl.DataFrame, method: str = TREESHAP) -> tuple[np.ndarray, np.ndarray]:
    """(contributions per feature with the base value last, raw score) of every row; each row's contributions sum
    to its raw score. TREESHAP: LightGBM's own `pred_contrib=True`. PATHS: `path_contributions`."""
    values, booster = X.to_numpy(), estimator.booster_
    raw = booster.predict(values, raw_score=True)
    if method == PATHS:
        return path_contributions(booster, values), raw
    return booster.predict(values, pred_contrib=True), raw


def _leaf_tables(tree: dict[str, Any], n_features: int) -> dict[int, np.ndarray]:
    """leaf index -> per-feature change of the node value along the path from the root (base value last)."""
    tables: dict[int, np.ndarray] = {}
    root = tree["tree_structure"]
    start = np.zeros(n_features + 1)
    start[-1] = root.get("internal_value", root.get("leaf_value", 0.0))
    stack = [(root, start)]
    while stack:
        node, path = stack.pop()
        if "leaf_index" in node or "split_feature" not in node:
            tables[int(node.get("leaf_index", 0))] = path
            continue
        for side in ("left_child", "right_child"):
            child = node[side]
            value = child.get("internal_value", child.get("leaf_value"))
            step = path.copy()
            step[node["split_feature"]] += value - node["internal_value"]
            stack.append((child, step))
    return tables


def path_contributions(booster: Any, values: np.ndarray) -> np.ndarray:
    """Per row and feature, the change of the node value where the row's path through each tree splits on that
    feature (Saabas' path attribution), from LightGBM's own leaf assignment (`pred_leaf=True`) and tree dump. Exact
    like TreeSHAP (a row's leaf value is its tree's root value plus the changes along its path) and linear in the
    trees' depth rather than quadratic; unlike TreeSHAP it credits a split's feature with the whole change of the
    node value on the row's own path."""
    leaves = booster.predict(values, pred_leaf=True).reshape(len(values), -1)
    n_features = booster.num_feature()
    out = np.zeros((len(values), n_features + 1))
    for t, tree in enumerate(booster.dump_model()["tree_info"]):
        tables = _leaf_tables(tree, n_features)
        table = np.zeros((max(tables) + 1, n_features + 1))
        for leaf, row in tables.items():
            table[leaf] = row
        out += table[leaves[:, t]]
    return out


def link(estimator: Any) -> Any:
    """The objective's inverse link from raw score to the model's prediction."""
    return np.exp if estimator.get_params()["objective"] in LOG_LINK else (lambda r: r)


def _invert(fcst: MLForecast, frame: pl.DataFrame) -> pl.DataFrame:
    """mlforecast's inverse target transforms over every value column of `frame` (unique_id, ds, values; the
    layout of its forecast frame), applied as MLForecast.predict applies them."""
    ts = fcst.ts
    if not ts.target_transforms:
        return frame
    values = [c for c in frame.columns if c not in (ts.id_col, ts.time_col)]
    per_series = frame.height // len(ts.uids)
    indptr = np.arange(0, per_series * (len(ts.uids) + 1), per_series)
    for tfm in ts.target_transforms[::-1]:
        if isinstance(tfm, _BaseGroupedArrayTargetTransform):
            dtype = ts.ga.data.dtype
            arrays = {c: GroupedArray(frame[c].to_numpy().astype(dtype), indptr) for c in values}
            frame = frame.with_columns(pl.Series(c, tfm.inverse_transform(ga).data) for c, ga in arrays.items())
        else:
            frame = tfm.inverse_transform(frame)
    return frame


def explain_forecast(
    fcst: MLForecast,
    name: str,
    capture: FeatureCapture,
    predicted: pl.DataFrame,
    job: JobSpec,
    method: str | None = None,
) -> pl.DataFrame:
    """Wide drivers of one fitted model's forecast (`predicted`: mlforecast's frame, same rows as captured):
    unique_id, ds, baseline, one column per family, interactions; in the model's units (before any trading-day
    factor). `method`: TREESHAP or PATHS (default: the job's `drivers_method`). Raises if the rebuilt forecast
    differs from mlforecast's (a row-order fault, never silent)."""
    X = capture.rows()
    features = list(X.columns)
    groups: dict[str, list[int]] = {}
    for i, feature in enumerate(features):
        groups.setdefault(family_of(feature, job), []).append(i)
    keys = predicted.select("unique_id", "ds")
    total: dict[str, np.ndarray] = {}
    members = estimators(fcst.models_[name])
    setting = method or job.drivers_method
    for estimator in members:
        contrib, raw = contributions(estimator, X, method_for(setting, X.height, estimator.booster_.num_trees()))
        g = link(estimator)
        base = contrib[:, -1]
        columns = {"__forecast": g(raw), BASELINE: g(base)}
        for family, idx in groups.items():
            columns[family] = g(base + contrib[:, idx].sum(axis=1))
        units = _invert(fcst, keys.with_columns(pl.Series(k, v) for k, v in columns.items()))
        baseline = units[BASELINE].to_numpy()
        effects = {f: units[f].to_numpy() - baseline for f in groups}
        parts = {"__forecast": units["__forecast"].to_numpy(), BASELINE: baseline} | effects
        parts[INTERACTIONS] = parts["__forecast"] - baseline - np.sum(list(effects.values()), axis=0)
        for key, value in parts.items():
            total[key] = total.get(key, 0) + value / len(members)
    out = keys.with_columns(pl.Series(k, v) for k, v in total.items())
    check_units(out["__forecast"], predicted[name], name)
    return out.drop("__forecast")


def check_units(rebuilt: pl.Series, forecast: pl.Series, name: str, rtol: float = 1e-6) -> None:
    """The forecast rebuilt from the contributions must be mlforecast's own, row by row."""
    a, b = rebuilt.to_numpy(), forecast.to_numpy()
    bad = ~np.isclose(a, b, rtol=rtol, atol=rtol)
    if bad.any():
        raise AssertionError(f"{name}: drivers rebuild {int(bad.sum())} forecasts differently from mlforecast's own")


def value_columns(wide: pl.DataFrame) -> list[str]:
    """The effect columns of a wide drivers frame (baseline, families, interactions)."""
    return [c for c in wide.columns if c not in ("unique_id", "ds")]
