from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from forecasting.config import LabourStandard
from forecasting.staffing import staffing_plan

STANDARD = LabourStandard(minutes_per_unit=1.2, pfd_allowance=0.15, productive_hours_per_fte=150, shrinkage=0.12)


def _forecast(volumes: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "region": ["CA"] * len(volumes),
            "warehouse": ["CA_1"] * len(volumes),
            "ds": [date(2016, 4 + i, 1) for i in range(len(volumes))],
            "mean": volumes,
            "hi_60": [v * 1.1 for v in volumes],
            "hi_90": [v * 1.3 for v in volumes],
        }
    )


def test_formula_by_hand():
    plan = staffing_plan(_forecast([100_000.0]), STANDARD)
    p50 = plan.filter(pl.col("quantile") == "p50").row(0, named=True)
    hours = 100_000 * 1.2 / 60 * 1.15
    assert p50["labour_hours"] == pytest.approx(hours)
    assert p50["fte"] == pytest.approx(hours / 150 / 0.88)
    assert p50["headcount"] == 18  # 17.42 FTE rounded up


def test_monotone_in_volume_and_quantile():
    plan = staffing_plan(_forecast([10_000.0, 50_000.0, 200_000.0]), STANDARD)
    for quantile in ("p50", "p80", "p95"):
        heads = plan.filter(pl.col("quantile") == quantile).sort("ds")["headcount"].to_list()
        assert heads == sorted(heads)
    wide = plan.pivot(on="quantile", index="ds", values="headcount")
    assert ((wide["p50"] <= wide["p80"]) & (wide["p80"] <= wide["p95"])).all()


def test_exact_fte_is_not_rounded_up_by_float_noise():
    volume = 150 * 0.88 * 60 / 1.2 / 1.15 * 10  # exactly 10 FTE
    plan = staffing_plan(_forecast([volume]), STANDARD)
    assert plan.filter(pl.col("quantile") == "p50")["headcount"].item() == 10
