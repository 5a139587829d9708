"""Labour standards files (checks with clear errors), calibration on the real garment records, and staffing
from published outputs without refitting (what-if, the plan's backtest), through the library and the CLI."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from forecasting.cli import app
from forecasting.job.common import project_root
from forecasting.job.staffing import Scenario
from forecasting.outputs import scenarios as staffing_runs
from forecasting.pipeline import load, validate
from forecasting.staffing import calibration
from forecasting.staffing.standards import REQUIRED_PROCESSES, StandardsError, load_standards, standards_for

TEMPLATE = project_root() / "data" / "labour" / "m5-warehouse-template.csv"
GARMENT = project_root() / "data" / "garment" / "garments_worker_productivity.parquet"
runner = CliRunner()


def _edited(tmp_path: Path, line: int, column: str, value: str) -> Path:
    """The bundled template with one cell changed (line numbers as in the file, header = 1)."""
    frame = pl.read_csv(TEMPLATE, infer_schema=False)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == line - 2).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )
    path = tmp_path / "standards.csv"
    frame.write_csv(path)
    return path


@pytest.mark.parametrize(
    ("line", "column", "value", "expected"),
    [
        (4, "units_per_hour", "-120", "column units_per_hour must be > 0 and <= 100000 in 1 row(s): line 4: */picking"),
        (3, "shrinkage", "1.0", "column shrinkage must be >= 0 and < 1 in 1 row(s): line 3: */putaway"),
        (3, "shrinkage", "nan", "column shrinkage must be >= 0 and < 1 in 1 row(s): line 3: */putaway"),
        (2, "min_crew", "two", "column min_crew is not an integer in 1 row(s): line 2: */receiving"),
        (5, "process", "picking", "column warehouse, process repeats a warehouse x process pair in 2 row(s)"),
    ],
)
def test_invalid_values_name_file_column_and_line(tmp_path, line, column, value, expected):
    path = _edited(tmp_path, line, column, value)
    with pytest.raises(StandardsError) as err:
        load_standards(path)
    assert str(err.value).startswith(str(path)) and expected in str(err.value)


def test_unknown_warehouse_and_missing_process(tmp_path):
    standards = load_standards(TEMPLATE)
    stores = ["CA_1", "CA_2"]
    with pytest.raises(StandardsError, match=r"column warehouse names warehouse\(s\) not in the forecast: CA_3"):
        standards_for(standards, stores, TEMPLATE)
    assert standards_for(standards, stores, TEMPLATE, strict=False).height == 2 * len(REQUIRED_PROCESSES)
    no_returns = tmp_path / "no-returns.csv"
    pl.read_csv(TEMPLATE).filter(pl.col("process") != "returns").write_csv(no_returns)
    with pytest.raises(
        StandardsError, match=r"column process is missing for 3 warehouse x process pair\(s\): CA_1/returns"
    ):
        standards_for(load_standards(no_returns), ["CA_1", "CA_2", "CA_3"], no_returns)
    missing_column = tmp_path / "no-cv.csv"
    pl.read_csv(TEMPLATE).drop("productivity_cv").write_csv(missing_column)
    with pytest.raises(StandardsError, match="missing column.s. productivity_cv"):
        load_standards(missing_column)


def test_override_rows_replace_the_default_for_that_warehouse_only():
    resolved = standards_for(load_standards(TEMPLATE), ["CA_1", "CA_3"], TEMPLATE, strict=False)
    shifts = dict(resolved.filter(pl.col("process") == "picking").select("warehouse", "shifts_per_day").iter_rows())
    assert shifts == {"CA_1": 2, "CA_3": 3}


def test_bad_standards_fail_in_validate_before_any_fitting(tmp_path):
    from support import slice_job

    bad = _edited(tmp_path, 3, "shrinkage", "1.5")
    job = slice_job(tmp_path)
    job = job.model_copy(update={"staffing": job.staffing.model_copy(update={"standards": str(bad)})})
    loaded = load(job)
    with pytest.raises(StandardsError, match="shrinkage"):
        validate(loaded, job)
    assert not (tmp_path / "outputs").exists()


def test_calibration_on_the_garment_records(tmp_path):
    records = calibration.read_records(GARMENT, calibration.GARMENT_COLUMNS)
    site_days = calibration.calibrate(records, "day")
    assert site_days["observations"].to_list() == [59, 59]  # 59 working days, per department
    by_process = dict(site_days.select("process", "productivity_cv").iter_rows())
    assert 0.02 < by_process["sweing"] < by_process["finishing"] < 0.3
    team_days = calibration.calibrate(records, "day", by="team")
    assert (team_days["productivity_cv"] > site_days["productivity_cv"]).all()  # teams vary more than the site
    # SMV 3.9 min / unit at about 77 % efficiency in finishing: about 12 units per labour hour
    uph = dict(site_days.select("process", "units_per_hour").iter_rows())
    assert 10 < uph["finishing"] < 14 and 1.5 < uph["sweing"] < 2.5
    with pytest.raises(StandardsError, match="too few month observations"):
        calibration.calibrate(records, "month")
    out = tmp_path / "standards.csv"
    calibration.write_standards(calibration.standards_from_calibration(team_days, TEMPLATE), out)
    written = load_standards(out)
    assert written.height == load_standards(TEMPLATE).height
    assert written["productivity_cv"].unique().to_list() == [pytest.approx(team_days["pooled_cv"][0], abs=1e-4)]


def test_calibration_refuses_bad_records(tmp_path):
    bad = tmp_path / "records.csv"
    pl.read_parquet(GARMENT).with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(-1.0).otherwise(pl.col("smv")).alias("smv")
    ).write_csv(bad)
    result = runner.invoke(app, ["calibrate-labour", str(bad), "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert "column smv is missing or not positive in 1 row(s), e.g. line(s) 6" in result.output
    assert not (tmp_path / "x.csv").exists()


def test_what_if_without_refitting(slice_run):
    job, result = slice_run
    path, table = staffing_runs.what_if(job, None, "+15%", None)
    assert path.exists() and path.parent.name == result.as_of.isoformat()
    assert (table["volume_scenario"] - 1.15 * table["volume"]).abs().max() < 1e-6 * table["volume"].max()
    assert (table["headcount_scenario"] >= table["headcount"]).all()
    assert (table["fte_scenario"] > table["fte"]).all()  # 40 SKUs: the minimum crews hold headcount flat
    baseline = pl.read_parquet(result.run_dir / "staffing.parquet")
    keys = ["warehouse", "process", "ds", "quantile"]
    same = table.join(baseline, on=keys).filter(pl.col("headcount") != pl.col("headcount_right"))
    assert same.height == 0  # the recomputed baseline equals the nightly plan: same inputs, same seed


def test_named_event_and_cli(slice_run):
    job, _ = slice_run
    job = job.model_copy(
        update={
            "staffing": job.staffing.model_copy(
                update={"scenarios": {"promo": Scenario(uplift=0.5, warehouses=["TX_1"])}}
            )
        }
    )
    _, table = staffing_runs.what_if(job, None, None, "promo")
    moved = table.filter(pl.col("volume_scenario") > pl.col("volume") * 1.0001)
    assert set(moved["warehouse"]) == {"TX_1"}
    with pytest.raises(ValueError, match="--event 'nope': not in the job's staffing.scenarios"):
        staffing_runs.what_if(job, None, None, "nope")
    with pytest.raises(ValueError, match="expected a change such as"):
        staffing_runs.parse_volume_change("lots")


def test_staff_command(slice_run, tmp_path):
    import yaml

    job, _ = slice_run
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(job.model_dump(mode="json")))
    result = runner.invoke(app, ["staff", "--job", str(job_file), "--volume-change", "+15%"])
    assert result.exit_code == 0, result.output
    assert "what-if volume+15pct" in result.output and "written:" in result.output
    result = runner.invoke(app, ["staff", "--job", str(job_file), "--volume-change", "-120%"])
    assert result.exit_code == 2 and "cannot fall by 100 %" in result.output


def test_plan_from_the_published_backtest_errors(planner_runs):
    """demand_uncertainty: backtest draws demand from the published backtest's warehouse errors (periods before the
    forecast only); the plan backtest reports both ways, the backtest-error way without its first window."""
    from forecasting.outputs.runs import usable_backtest
    from forecasting.staffing.plans import backtest_log_errors, demand_source, plan_for_job, published_warehouse

    job, _, after = planner_runs
    job = job.model_copy(update={"staffing": job.staffing.model_copy(update={"demand_uncertainty": "backtest"})})
    forecast = published_warehouse(pl.read_parquet(after.run_dir / "reconciled_forecasts.parquet"))
    errors = backtest_log_errors(job, forecast["ds"].min(), usable_backtest(job, forecast["ds"].min()))
    assert errors is not None and errors.height > 0 and set(errors["warehouse"]) == set(forecast["warehouse"])
    assert demand_source(job, usable_backtest(job)).startswith("errors of backtest")
    from_errors = plan_for_job(forecast, job, usable_backtest(job))
    reconciled = plan_for_job(
        forecast,
        job.model_copy(update={"staffing": job.staffing.model_copy(update={"demand_uncertainty": "reconciled"})}),
        usable_backtest(job),
    )
    assert from_errors.height == reconciled.height and not from_errors["labour_hours"].equals(
        reconciled["labour_hours"]
    )
    _, shortfall, summary = staffing_runs.staffing_backtest(job)
    windows = shortfall.group_by("demand_uncertainty").agg(pl.col("cutoff").n_unique()).sort("demand_uncertainty")
    assert windows.rows() == [("backtest", 1), ("reconciled", 2)]
    assert set(summary["quantile"]) == {"p50", "p80", "p95"}
