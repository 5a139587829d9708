"""What a run resolves once, at the top, and hands down with the job: the backtest it reads.

A run reads one published backtest for four things (model choice, reconciliation choice, interval calibration,
staffing errors). The pipeline finds it (forecasting.outputs.runs.usable_backtest) and passes it down; no stage
looks for one itself, so all four provably read the same folder.
"""

from __future__ import annotations

from pathlib import Path

# The backtest a run reads: its folder, or None and why there is none (for the run summary).
FoundBacktest = tuple[Path | None, str]
