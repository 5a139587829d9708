"""What a run resolves once, at the top, and hands down with the job: the backtest it reads, and the plan chosen
from that backtest.

A run reads one published backtest for everything it takes from one (Base per level, combination weights, the
reconciliation published per level, interval factors, reconciled-interval calibration, staffing errors). The
pipeline finds it (forecasting.outputs.runs.usable_backtest) and passes it down; no stage looks for one itself, so
all of them provably read the same folder. The plan is chosen in forecasting.evaluate.plan; here it is plain data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

# The backtest a run reads: its folder, or None and why there is none (for the run summary).
FoundBacktest = tuple[Path | None, str]


@dataclass
class Plan:
    """What a run publishes: chosen from a backtest's windows (forecasting.evaluate.plan), or the job file's."""

    base: dict[str, str]  # level -> the candidate behind Base
    # The fitted combinations (Weighted, Top2): name -> level -> model -> weight.
    weights: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    method: str = ""  # the reconciliation published
    fallback: dict[str, str] = field(default_factory=dict)  # level -> Base or BottomUp, published instead
    # level (or "<level> (new)": its new series) -> "80" -> factor
    interval_scale: dict[str, dict[str, float]] = field(default_factory=dict)
    base_wape: dict[str, float] = field(default_factory=dict)  # level -> Base's sum |error| / sum actual there
    launch: dict[str, str] = field(default_factory=dict)  # level -> the launch model serving its new series
    windows: list[str] = field(default_factory=list)  # the cutoffs it was chosen from
    reasons: list[str] = field(default_factory=list)

    @property
    def coherent(self) -> bool:
        return not self.fallback

    def published_at(self, level: str) -> str:
        """The method (or Base) whose rows are published at `level`."""
        return self.fallback.get(level, self.method)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
