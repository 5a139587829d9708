"""The stage log: per stage of a run, the rows and series it produced, its seconds and the peak RSS, which the
manifest, the CLI table and the Prefect run log show; and for a failed run, the stage it stopped in and the log
file holding its traceback."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from forecasting.job.errors import one_line


@dataclass
class StageTimer:
    """Per stage: rows and series it produced, seconds, and peak RSS (of this process and of its worker
    processes). The rows go to the manifest (`timings`) and, in the flow, to the Prefect run log."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def measure(self, stage: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        with in_stage(stage):
            result = fn(*args, **kwargs)
        self.record(stage, time.perf_counter() - start, **stage_size(result))
        return result

    def record(self, stage: str, seconds: float, rows: int | None = None, series: int | None = None) -> None:
        self.rows.append(
            {"stage": stage, "rows": rows, "series": series, "seconds": round(seconds, 2), **peak_rss_mb()}
        )


@contextmanager
def in_stage(stage: str) -> Iterator[None]:
    """Name the stage on any error raised inside the block (the first, innermost stage wins): the CLI's one line
    and the internal-error log say where a run stopped."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, "stage", None) is None:
            try:
                exc.stage = stage  # type: ignore[attr-defined]
            except AttributeError:  # an exception type without a __dict__
                pass
        raise


LOG_DIR_ENV = "FORECASTING_LOG_DIR"  # where a failure's traceback goes (default: <tmp>/forecasting-logs)


def log_dir() -> Path:
    return Path(os.environ.get(LOG_DIR_ENV) or Path(tempfile.gettempdir()) / "forecasting-logs")


def save_traceback(exc: BaseException) -> str:
    """Write the traceback of a failure to a new log file (the CLI says one line and points here); say where, or
    why it could not."""
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S}Z-{os.getpid()}.log"
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / name
        log.write_text(" ".join(sys.argv) + "\n\n" + "".join(traceback.format_exception(exc)))
    except OSError as problem:
        return f"the traceback could not be saved ({one_line(str(problem))})"
    return f"the traceback is in {log}"


def stage_size(result: Any) -> dict[str, int | None]:
    """Rows and series in a stage's output. Series are counted by unique_id, or else by the text (key) columns."""
    # Imported here: the CLI imports this module for save_traceback, and these pull in the modelling libraries
    # (seconds of start-up for `forecasting query`, `--help` and the other commands that fit nothing).
    from forecasting.data.hierarchy import Hierarchy
    from forecasting.data.stages import Loaded, Validated
    from forecasting.models.base import BaseForecasts
    from forecasting.outputs.atomic import TableParts

    def of(frame: pl.DataFrame) -> dict[str, int | None]:
        if "unique_id" in frame.columns:
            series = frame["unique_id"].n_unique()
        else:
            keys = frame.select(pl.col(pl.String, pl.Categorical))
            series = keys.n_unique() if keys.width and frame.height else None
        return {"rows": frame.height, "series": series}

    if isinstance(result, Loaded | Validated):
        return of(result.history)
    if isinstance(result, Hierarchy):
        return {"rows": result.Y_df.height, "series": result.members.height}
    if isinstance(result, BaseForecasts):
        return of(result.forecasts)
    if isinstance(result, pl.DataFrame):
        return of(result)
    if isinstance(result, dict) and all(isinstance(v, pl.DataFrame | TableParts) for v in result.values()):
        return {"rows": sum(v.height for v in result.values()), "series": None}
    return {"rows": None, "series": None}


def peak_rss_mb() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_rss_mb": round(own, 1), "peak_rss_children_mb": round(children, 1)}
