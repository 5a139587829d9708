"""What the data stages hand to the next: the loaded history (with prices and calendar features) and the checked
history of complete periods."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from forecasting.data.hierarchy import PeriodReport


@dataclass
class Loaded:
    history: pl.DataFrame  # per period, before the incomplete-period policy
    prices: pl.DataFrame | None
    calendar: pl.DataFrame | None  # known-ahead calendar features per period (events, SNAP), if the job has them
    source_label: str
    as_of: date
    warnings: list[str] = field(default_factory=list)  # what the summary, manifest and report must say (stale data)
    order_lines: dict | None = None  # order lines: what each rule removed (forecasting.data.order_lines.prepare)


@dataclass
class Validated:
    history: pl.DataFrame  # hierarchy keys, ds, y: complete periods, checked
    periods: PeriodReport
    warnings: list[str] = field(default_factory=list)
    order_lines: dict | None = None
