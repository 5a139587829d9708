"""The bundled daily jobs with their time grains, run whole (slow): every published day, week and 4-week forecast
adds up across time and across the hierarchy to 1e-6 relative wherever the run flags it coherent; the views and the
staffing table carry the `grain` column."""

from __future__ import annotations

import pytest

from forecasting import pipeline
from forecasting.evaluate.grains import gap_across_hierarchy, gap_across_time
from forecasting.job.loading import load_job
from forecasting.outputs.views import open_views

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["m5-daily-warehouse", "m5-daily-sku"])
def test_bundled_daily_job_grains_are_coherent(name, tmp_path):
    import polars as pl

    job = load_job(name, output_root=str(tmp_path))
    result = pipeline.run_job(job)
    table = pl.read_parquet(result.run_dir / "grain_forecasts.parquet")
    _, hierarchy = pipeline.load_hierarchy(job.model_copy(update={"grains": None}))
    assert gap_across_time(table, job.grains) < 1e-6
    assert gap_across_hierarchy(table, hierarchy.members) < 1e-6
    con = open_views(job)
    grains = {r[0] for r in con.execute("SELECT DISTINCT grain FROM grain_forecasts").fetchall()}
    assert grains == {"day", "week", "4-week"}
    horizons = dict(con.execute("SELECT grain, count(DISTINCT ds) FROM grain_forecasts GROUP BY grain").fetchall())
    assert horizons == {"day": 28, "week": 13, "4-week": 6}
    if job.staffing is not None:
        staffed = {r[0] for r in con.execute("SELECT DISTINCT grain FROM staffing").fetchall()}
        assert staffed == {"day", "week"}
