"""What each stage of the nightly job hands to the next, and the stage log (rows, series, seconds, peak RSS)
that the manifest, the CLI table and the Prefect run log show."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from forecasting import hierarchy as hier
from forecasting import outputs


@dataclass
class Loaded:
    history: pl.DataFrame  # per period, before the incomplete-period policy
    prices: pl.DataFrame | None
    calendar: pl.DataFrame | None  # known-ahead calendar features per period (events, SNAP), if the job has them
    source_label: str
    as_of: date


@dataclass
class Validated:
    history: pl.DataFrame  # hierarchy keys, ds, y: complete periods, checked
    periods: hier.PeriodReport


@dataclass
class BaseForecasts:
    forecasts: pl.DataFrame  # wide: unique_id, ds, every model (+ intervals), Base
    fitted: pl.DataFrame  # wide in-sample: unique_id, ds, y, every model, Base
    choice: pl.DataFrame  # unique_id, model (the model behind Base)
    choice_source: str  # why those models: the job file or a backtest
    calibration: pl.DataFrame  # unique_id, ds, y, Base: errors the reconciled intervals are calibrated on
    calibration_source: str
    # The backtest the run reads for all four (outputs.usable_backtest): model and reconciliation choice,
    # calibration, staffing errors.
    backtest: outputs.FoundBacktest


@dataclass
class StageTimer:
    """Per stage: rows and series it produced, seconds, and peak RSS (of this process and of its worker
    processes). The rows go to the manifest (`timings`) and, in the flow, to the Prefect run log."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def measure(self, stage: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        self.record(stage, time.perf_counter() - start, **stage_size(result))
        return result

    def record(self, stage: str, seconds: float, rows: int | None = None, series: int | None = None) -> None:
        self.rows.append(
            {"stage": stage, "rows": rows, "series": series, "seconds": round(seconds, 2), **peak_rss_mb()}
        )


def stage_size(result: Any) -> dict[str, int | None]:
    """Rows and series in a stage's output. Series are counted by unique_id, or else by the text (key) columns."""

    def of(frame: pl.DataFrame) -> dict[str, int | None]:
        if "unique_id" in frame.columns:
            series = frame["unique_id"].n_unique()
        else:
            keys = frame.select(pl.col(pl.String, pl.Categorical))
            series = keys.n_unique() if keys.width and frame.height else None
        return {"rows": frame.height, "series": series}

    if isinstance(result, Loaded | Validated):
        return of(result.history)
    if isinstance(result, hier.Hierarchy):
        return {"rows": result.Y_df.height, "series": result.members.height}
    if isinstance(result, BaseForecasts):
        return of(result.forecasts)
    if isinstance(result, pl.DataFrame):
        return of(result)
    if isinstance(result, dict) and all(isinstance(v, pl.DataFrame | outputs.TableParts) for v in result.values()):
        return {"rows": sum(v.height for v in result.values()), "series": None}
    return {"rows": None, "series": None}


def peak_rss_mb() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_rss_mb": round(own, 1), "peak_rss_children_mb": round(children, 1)}
