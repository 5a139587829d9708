from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import pytest
from support import slice_job
from typer.testing import CliRunner

from forecasting.cli import app
from forecasting.job.loading import load_job

runner = CliRunner()


def _job_file(tmp_path, **update) -> str:
    import yaml

    job = slice_job(tmp_path, **update)
    path = tmp_path / "slice-job.yaml"
    path.write_text(yaml.safe_dump(job.model_dump(mode="json")))
    return str(path)


def test_run_then_query(tmp_path):
    job_file = _job_file(tmp_path, n_items=30)
    result = runner.invoke(app, ["run", "--job", job_file, "--as-of", "2016-03-31"])
    assert result.exit_code == 0, result.output
    assert "series per level: total 1, region 2, warehouse 2, sku 60" in result.output
    assert "outputs:" in result.output
    query = "SELECT warehouse, count(*) AS n FROM reconciled_forecasts WHERE warehouse = 'CA_1' GROUP BY 1"
    result = runner.invoke(app, ["query", "--job", job_file, "--format", "json", query])
    assert result.exit_code == 0, result.output
    # 30 SKUs + the warehouse itself, 3 months, every method of the job file (12); as of 2016-03-31 March is
    # complete, so Apr-Jun
    methods = len(load_job(job_file).reconciliation.methods)
    assert methods == 12 and json.loads(result.output) == [{"warehouse": "CA_1", "n": (30 + 1) * 3 * methods}]
    result = runner.invoke(app, ["query", "--job", job_file, "--format", "csv", "SELECT min(ds) FROM forecasts"])
    assert result.output.strip().splitlines()[-1] == "2016-04-01"


def test_run_rejects_bad_input_with_one_message_and_exit_2(tmp_path):
    rows = duckdb.execute(
        "SELECT * REPLACE (CASE WHEN month = DATE '2013-03-01' THEN -1 ELSE sales END AS sales) "
        "FROM read_parquet('data/m5/m5_monthly_sales.parquet') WHERE store_id = 'CA_1' AND item_id < 'FOODS_1_004'"
    ).pl()
    rows.write_parquet(tmp_path / "bad.parquet")
    import yaml

    job = yaml.safe_load(open(_job_file(tmp_path)))
    job["source"]["sales"]["path"] = str(tmp_path / "bad.parquet")
    job["warehouse_filter"] = job["sku_filter"] = None
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(job))
    result = runner.invoke(app, ["run", "--job", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2
    assert "negative sales" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "outputs").exists()


def test_bad_as_of_and_unknown_job(tmp_path):
    assert "not a date" in runner.invoke(app, ["run", "--as-of", "yesterday"]).output
    assert "unknown job" in runner.invoke(app, ["run", "--job", "nope"]).output


def test_an_as_of_date_after_the_data_is_refused_and_nothing_is_written(tmp_path):
    """The slice's data ends 2016-04-24: a later as-of date would forecast from 2016-04-25 and be published as the
    latest run under a date the data does not reach."""
    job_file = _job_file(tmp_path)
    for command in ("run", "backtest"):
        result = runner.invoke(app, [command, "--job", job_file, "--as-of", "2030-01-01"])
        assert result.exit_code == 2, result.output
        assert "the as-of date 2030-01-01 is after the last day the sales data covers (2016-04-24)" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "outputs").exists()


def test_console_script_is_installed():
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "forecasting"), "jobs"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "m5-monthly" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["query", "--format", "xml", "SELECT 1"],
        ["recipe", "next_month_demand_by_warehouse", "--format", "xml"],
        ["report", "--top", "-1"],
        ["diff", "--top", "0"],
        ["backtest", "--windows", "0"],
        ["backtest", "--step", "-1"],
        ["backtest", "--horizon", "-2"],
        ["run", "--wait", "-1"],
    ],
)
def test_unknown_or_negative_command_line_values_are_refused(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    says = "must be at least 1" if args[0] == "backtest" else "Invalid value for"  # backtest: before any read
    assert says in result.output, result.output


def test_a_misspelled_recipe_parameter_is_refused_not_ignored():
    result = runner.invoke(app, ["recipe", "next_month_demand_by_warehouse", "--set", "monht=2016-05-01"])
    assert result.exit_code == 2
    assert "recipe 'next_month_demand_by_warehouse' has no parameter monht; it takes: month" in result.output
