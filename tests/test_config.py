from __future__ import annotations

import pytest

from forecasting.config import JobConfigError, available_jobs, load_job, parse_job


def test_bundled_job_validates():
    job = load_job()
    assert job.name == "m5-monthly"
    assert job.freq == "month" and job.horizon == 3
    assert {80, 95} <= set(job.levels)
    assert "m5-monthly" in available_jobs()


def test_unknown_job_names_the_bundled_ones():
    with pytest.raises(JobConfigError, match="m5-monthly"):
        load_job("no-such-job")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"horizon": 0}, "horizon"),
        ({"freq": "hourly"}, "freq"),
        ({"name": "bad name; DROP TABLE x"}, "name"),
        ({"unknown_key": 1}, "unknown_key"),
        ({"staffing": {"minutes_per_unit": -1, "productive_hours_per_fte": 150}}, "staffing.minutes_per_unit"),
        ({"staffing": {"minutes_per_unit": 1, "productive_hours_per_fte": 150, "shrinkage": 1.0}}, "shrinkage"),
    ],
)
def test_invalid_specs_name_the_field(change, field):
    raw = load_job().model_dump(mode="json") | change
    with pytest.raises(JobConfigError, match=field.replace(".", r"\.")):
        parse_job(raw)


def test_sales_source_must_map_every_column():
    raw = load_job().model_dump(mode="json")
    del raw["source"]["sales"]["columns"]["region"]
    with pytest.raises(JobConfigError, match="region"):
        parse_job(raw)


def test_primary_model_must_be_run_at_its_level():
    raw = load_job().model_dump(mode="json")
    raw["models"]["primary"]["sku"] = "AutoETS"
    with pytest.raises(JobConfigError, match="primary model 'AutoETS'"):
        parse_job(raw)
