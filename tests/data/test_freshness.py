"""Fresh data or a clear refusal (issue 34, 3): the gate compares the data's real last day with the as-of date and with
`observed_to`. Real tourism data that stops in 2016 Q4 while the job says 2017-12-31 is refused, or with
`source.allow_stale` forecast as of its last day, with the warning in the summary, the manifest and the report; and
no run is published whose horizon starts before its as-of date."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from support import TOURISM, checksums, cli, job_yaml, one_error_line, tourism_slice

from forecasting.data.freshness import StaleDataError, check_forecast_start, period_before, period_start
from forecasting.outputs.report import build_report
from forecasting.outputs.runs import read_manifest
from forecasting.pipeline import history, run_job


def _ending(tmp: Path, last_quarter: date, **source) -> tuple:
    """The job on Tasmania's real rows up to `last_quarter`; its observed_to stays 2017-12-31."""
    path = tmp / "short.parquet"
    pl.read_parquet(TOURISM).filter(pl.col("Quarter") <= last_quarter).write_parquet(path)
    job = tourism_slice(
        tmp, source={"sales": tourism_slice(tmp).source.sales.model_dump() | {"path": str(path)}} | source
    )
    return job, path


def test_data_that_stopped_a_year_early_is_refused_in_one_line_and_nothing_changes(tmp_path):
    good = run_job(tourism_slice(tmp_path))  # the last good run, 2017-12-31
    job, path = _ending(tmp_path, date(2016, 10, 1))
    before = checksums(job.output_dir())
    with pytest.raises(StaleDataError) as caught:
        run_job(job)
    assert str(caught.value) == (
        f"{path} [column Quarter]: the data ends 2016-12-31 (its last row is dated 2016-10-01), more than one quarter "
        "before the as-of date 2017-12-31: stale data is refused; bring the data up to date, or set "
        "source.allow_stale: true to forecast from it as of 2016-12-31"
    )
    code, _, err = cli("run", "--job", str(job_yaml(job, tmp_path / "job.yaml")))
    assert code == 2 and one_error_line(err).startswith(f"error: load: {path} [column Quarter]: the data ends")
    assert checksums(job.output_dir()) == before and good.run_dir.exists()


def test_allowed_stale_data_is_forecast_as_of_its_last_day_and_every_reader_is_warned(tmp_path):
    job, _ = _ending(tmp_path, date(2016, 10, 1), allow_stale=True)
    result = run_job(job)
    assert result.as_of == date(2016, 12, 31) and result.run_dir.parent.name == "tourism"
    assert result.summary["forecast_start"] == "2017-01-01"  # after its as-of date, never before
    warning = "stale data: the data ends 2016-12-31 (its last row is dated 2016-10-01), more than one quarter before"
    assert any(w.startswith(warning) for w in result.summary["warnings"])
    manifest = read_manifest(result.run_dir)
    assert manifest["warnings"] == manifest["summary"]["warnings"] == result.summary["warnings"]
    assert "as of 2016-12-31" in " ".join(manifest["warnings"])
    page = build_report(job, result.run_dir, history)
    assert "Data: stale data: the data ends 2016-12-31" in page


def test_a_quarter_missing_is_forecast_as_of_the_data_with_a_warning(tmp_path):
    """Less than a period late is not refused, but the run is dated by its data: its first forecast quarter is the
    one after its as-of date, not one already past."""
    job, _ = _ending(tmp_path, date(2017, 7, 1))
    result = run_job(job)
    assert result.as_of == date(2017, 9, 30) and result.summary["forecast_start"] == "2017-10-01"
    assert (
        "before the as-of date 2017-12-31: the run is forecast and published as of 2017-09-30"
        in (result.summary["warnings"][0])
    )


def test_nothing_is_published_whose_horizon_starts_before_its_as_of_date():
    check_forecast_start(tourism_slice(Path("/unused")), date(2017, 12, 31), date(2018, 1, 1))
    with pytest.raises(StaleDataError, match="the forecast starts 2017-10-01, before 2018-01-01"):
        check_forecast_start(tourism_slice(Path("/unused")), date(2017, 12, 31), date(2017, 10, 1))


@pytest.mark.parametrize(
    ("day", "freq", "start", "before"),
    [
        (date(2016, 3, 31), "month", date(2016, 3, 1), date(2016, 2, 29)),
        (date(2017, 12, 31), "quarter", date(2017, 10, 1), date(2017, 9, 30)),
        (date(2016, 5, 22), "week", date(2016, 5, 16), date(2016, 5, 15)),
        (date(2016, 5, 22), "day", date(2016, 5, 22), date(2016, 5, 21)),
    ],
)
def test_period_arithmetic(day, freq, start, before):
    assert period_start(day, freq) == start and period_before(day, freq) == before
