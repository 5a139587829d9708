"""hierarchicalforecast's frames in and out: the tags as arrays, and its wide output (Base/<method>,
Base/<method>-lo-80, ...) as one long frame per method."""

from __future__ import annotations

import numpy as np
import polars as pl

from forecasting.data.hierarchy import Hierarchy
from forecasting.job.schema import JobSpec
from forecasting.models.base import BASE


def wide_to_methods(wide: pl.DataFrame, labels: list[str], job: JobSpec) -> list[pl.DataFrame]:
    """The engine's wide output (Base/<method>, Base/<method>-lo-80, ...) -> one long frame per method."""
    mean_columns = [c for c in wide.columns if c.startswith(f"{BASE}/") and "-lo-" not in c and "-hi-" not in c]
    frames = []
    for label, column in zip(labels, mean_columns, strict=True):
        rename = {column: "mean"} | {
            f"{column}-{side}-{lv}": f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")
        }
        part = wide.select("unique_id", "ds", *rename).rename(rename).with_columns(pl.lit(label).alias("method"))
        frames.append(part)
    return frames


def tag_arrays(hierarchy: Hierarchy) -> dict[str, np.ndarray]:
    """The hierarchy's level -> ids, as the arrays hierarchicalforecast's reconcile() indexes with."""
    return {level: np.asarray(ids) for level, ids in hierarchy.tags.items()}
