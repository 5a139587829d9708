"""Planners' SQL confined to the job's published outputs (forecasting/confined_sql.py, issue 31): each attack is
tried through the real CLI (`forecasting query`, `forecasting recipe`, `forecasting diff`) on the real published
outputs of slice runs, and must be refused with exit code 2 and one message naming what was refused, with every
file of the output folder byte for byte unchanged and nothing written anywhere else; every view still answers."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from forecasting.cli import app
from forecasting.outputs import confined_sql
from forecasting.outputs import scenarios as staffing_runs

VIEWS = {  # view -> the file it reads, relative to the job's output folder (None: no single file to compare with)
    "base_forecasts": "latest/base_forecasts.parquet",
    "reconciled_forecasts": "latest/reconciled_forecasts.parquet",
    "forecasts": None,
    "staffing": "latest/staffing.parquet",
    "manifest": None,
    "backtest_base": "backtests/latest/backtest_base.parquet",
    "backtest_reconciled": "backtests/latest/backtest_reconciled.parquet",
    "backtest_metrics": "backtests/latest/metrics.parquet",
    "backtest_series_metrics": "backtests/latest/series_metrics.parquet",
    "staffing_scenarios": None,
    "staffing_backtest": None,
}


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, where every link points, and every folder: what a write would change."""
    found = {}
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(parent) / name
            key = str(path.relative_to(folder))
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[key] = "folder"
            else:
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def published(planner_runs, tmp_path_factory):
    """A copy of the planner runs' output folder (two runs and a backtest, links kept) with a staffing what-if and a
    plan backtest published in it too, so that every view exists; a job file pointing at it; an empty folder beside
    it (`elsewhere`) that no statement may write into; and the checksums of everything in the temporary folder that
    holds all three."""
    job, *_ = planner_runs
    tmp = tmp_path_factory.mktemp("confined")
    job = job.model_copy(update={"output_root": str(tmp / "outputs")})
    shutil.copytree(planner_runs[0].output_dir(), job.output_dir(), symlinks=True)
    staffing_runs.what_if(job, None, "+15%", None)
    staffing_runs.staffing_backtest(job)
    job_file = tmp / "job.yaml"
    job_file.write_text(yaml.safe_dump(job.model_dump(mode="json")))
    (tmp / "elsewhere").mkdir()
    return job, job_file, tmp, checksums(tmp)


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_refused(result, *names: str) -> None:
    """Exit code 2, one error line, saying `refused` and naming what."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: refused"), result.output
    for name in names:
        assert name in lines[0], result.output


def assert_untouched(published) -> None:
    """Every file of the output folder (and of the folder around it) as it was: same bytes, links and folders."""
    _, _, tmp, before = published
    assert checksums(tmp) == before


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_still_answers(published, view):
    job, job_file, *_ = published
    out = cli("query", "--job", str(job_file), "--format", "json", f"SELECT count(*) AS n FROM {view}")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)[0]["n"]
    assert rows > 0
    if VIEWS[view] is not None:  # the same rows as the file read directly
        assert rows == pl.read_parquet(job.output_dir() / VIEWS[view]).height
    assert_untouched(published)


def test_views_over_many_files_keep_their_folder_columns(published):
    """staffing_scenarios and staffing_backtest take the run's as-of date and the backtest's name from the path of
    each file, which is now an outputs:// path."""
    job, job_file, *_ = published
    sql = (
        "SELECT (SELECT count(*) FROM staffing_scenarios WHERE run_as_of IS NULL) AS no_date,"
        " (SELECT min(run_as_of) FROM staffing_scenarios) AS run_as_of,"
        " (SELECT count(*) FROM staffing_backtest WHERE backtest IS NULL OR backtest = '') AS no_name"
    )
    out = cli("query", "--job", str(job_file), "--format", "json", sql)
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)[0]
    assert got["no_date"] == 0 and got["no_name"] == 0
    assert got["run_as_of"] == os.readlink(job.output_dir() / "latest")


def test_a_legitimate_query_joins_views_and_reads_the_outputs_by_path(published):
    job, job_file, *_ = published
    sql = (
        "SELECT f.warehouse, sum(f.mean) AS units, count(DISTINCT s.process) AS processes"
        " FROM forecasts AS f JOIN staffing AS s USING (warehouse, ds)"
        " WHERE f.level = 'warehouse' GROUP BY ALL ORDER BY f.warehouse"
    )
    out = cli("query", "--job", str(job_file), "--format", "csv", sql)
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0] == "warehouse,units,processes" and len(out.output.splitlines()) == 3
    # A run's files can be named through the mount as well (the recipes do so for the previous run).
    direct = "SELECT count(*) AS n FROM read_parquet('outputs://2016-02-29/staffing.parquet')"
    out = cli("query", "--job", str(job_file), "--format", "json", direct)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)[0]["n"] == pl.read_parquet(job.output_dir() / "2016-02-29/staffing.parquet").height
    assert_untouched(published)


READS = [
    ("SELECT * FROM read_csv('/etc/passwd', sep = ':')", "/etc/passwd"),
    ("SELECT * FROM read_text('/etc/passwd')", "/etc/passwd"),
    ("SELECT * FROM read_blob('/etc/passwd')", "/etc/passwd"),
    ("SELECT * FROM read_parquet('/etc/passwd')", "/etc/passwd"),
    ("SELECT * FROM glob('/etc/*')", "/etc/*"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "/etc/passwd"),
    ("SELECT * FROM read_text('outputs://../../../../../../etc/passwd')", "/etc/passwd"),
    ("SELECT * FROM read_text('outputs://latest/../../../../../../../etc/passwd')", "/etc/passwd"),
    ("SELECT * FROM read_parquet('https://example.com/x.parquet')", "https://example.com/x.parquet"),
    ("SELECT * FROM read_parquet('s3://bucket/x.parquet')", "s3://bucket/x.parquet"),
]


@pytest.mark.parametrize(("sql", "named"), READS)
def test_reading_outside_the_outputs_is_refused(published, sql, named):
    _, job_file, *_ = published
    assert_refused(cli("query", "--job", str(job_file), sql), "refused query", named)
    assert_untouched(published)


def test_the_outputs_own_files_by_their_real_path_are_refused(published):
    """Only the outputs:// mount is readable: the same files by their path on disk are not (a path could be
    written to; the mount cannot)."""
    job, job_file, *_ = published
    path = job.output_dir() / "latest" / "staffing.parquet"
    assert_refused(cli("query", "--job", str(job_file), f"SELECT * FROM read_parquet('{path}')"), str(path))
    assert_untouched(published)


def writes(job_dir: Path, elsewhere: Path) -> list[tuple[str, str]]:
    """(statement, what the refusal names): every way to write that DuckDB has, at a path outside the outputs, at
    the outputs' own path on disk and through the read-only mount."""
    staffing = job_dir / "latest" / "staffing.parquet"
    return [
        (f"COPY (SELECT 1 AS x) TO '{elsewhere}/x.csv'", "refused COPY"),
        (f"COPY (SELECT * FROM staffing LIMIT 1) TO '{staffing}' (FORMAT parquet)", "refused COPY"),
        ("COPY (SELECT * FROM staffing LIMIT 1) TO 'outputs://latest/staffing.parquet' (FORMAT parquet)", "read-only"),
        (f"EXPORT DATABASE '{elsewhere}/export'", "refused EXPORT DATABASE"),
        (f"EXPORT DATABASE '{job_dir}/export'", "refused EXPORT DATABASE"),
        ("EXPORT DATABASE 'outputs://export'", "read-only"),
        (f"ATTACH '{elsewhere}/new.duckdb' AS other", "refused ATTACH"),
        (f"ATTACH '{job_dir}/new.duckdb' AS other", "refused ATTACH"),
        ("ATTACH 'outputs://new.duckdb' AS other", "read-only"),
        ("SELECT 1 AS x; COPY (SELECT 1 AS x) TO 'outputs://latest/x.csv'", "refused query, COPY"),
    ]


def test_every_write_is_refused(published):
    job, job_file, tmp, _ = published
    for sql, named in writes(job.output_dir(), tmp / "elsewhere"):
        assert_refused(cli("query", "--job", str(job_file), sql), named)
        assert_untouched(published)


def test_a_table_function_that_writes_is_refused(published):
    """`enable_logging` is a table function, so `lock_configuration` does not stop it from sending DuckDB's log to
    a file; with no writable folder the write is refused, in the outputs or elsewhere. DuckDB 1.4.4 then aborts
    the process when the connection closes (its log flush throws in a destructor), so this runs the real CLI in a
    process of its own: refused, not exit code 0, and nothing written."""
    job, job_file, tmp, _ = published
    for folder in (job.output_dir(), tmp / "elsewhere", "outputs://logs"):
        sql = f"SELECT * FROM enable_logging(storage = 'file', storage_path = '{folder}'); SELECT 1 FROM staffing"
        command = [sys.executable, "-m", "forecasting.cli", "query", "--job", str(job_file), sql]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode != 0, result.stdout
        assert result.stderr.startswith("error: refused query"), result.stderr
        assert_untouched(published)


@pytest.mark.parametrize(
    "sql",
    [
        "INSTALL httpfs",
        "FORCE INSTALL json",
        "LOAD httpfs",
        "LOAD 'confined-sql-test.duckdb_extension'",
    ],
)
def test_installing_or_loading_an_extension_is_refused(published, sql):
    _, job_file, *_ = published
    assert_refused(cli("query", "--job", str(job_file), sql), "refused INSTALL / LOAD of an extension")
    assert_untouched(published)


def test_no_extension_is_installed_on_demand(published, tmp_path, monkeypatch):
    """With external access off, DuckDB 1.4.4 still creates ~/.duckdb/extensions/... and tries to download an
    extension a statement needs, unless autoinstall is off too: nothing may appear in the home folder."""
    _, job_file, *_ = published
    monkeypatch.setenv("HOME", str(tmp_path))
    out = cli("query", "--job", str(job_file), "CREATE SECRET (TYPE s3, KEY_ID 'a', SECRET 'b')")
    assert out.exit_code == 2 and "download" not in out.output, out.output
    assert list(tmp_path.iterdir()) == []
    assert_untouched(published)


@pytest.mark.parametrize(
    "sql",
    [
        "SET enable_external_access = true",
        "SET GLOBAL enable_external_access = true",
        "RESET enable_external_access",
        "SET allowed_directories = ['/']",
        "SET allowed_paths = ['/etc/passwd']",
        "SET lock_configuration = false",
        "SET memory_limit = '100GB'",
        "SET temp_directory = '/tmp'",
        "SET autoinstall_known_extensions = true",
        "PRAGMA threads = 1",
        "SET profiling_output = 'confined-sql-test.json'",
    ],
)
def test_changing_a_setting_is_refused(published, sql):
    _, job_file, *_ = published
    assert_refused(cli("query", "--job", str(job_file), sql), "refused SET of a setting", "locked")
    assert_untouched(published)


def test_a_query_past_the_time_limit_is_stopped(published):
    _, job_file, *_ = published
    slow = "SELECT count(*) FROM range(1000000000) AS a, range(1000) AS b WHERE a.range + b.range < 0"
    start = time.perf_counter()
    out = cli("query", "--job", str(job_file), "--timeout", "1", slow)
    assert time.perf_counter() - start < 20
    assert_refused(out, "refused query", "time limit of 1 s", "--timeout")
    assert_untouched(published)


def test_a_query_past_the_memory_limit_is_stopped_without_spilling(published):
    _, job_file, *_ = published
    big = "SELECT sum(range) FROM (SELECT range FROM range(50000000) ORDER BY range DESC)"
    out = cli("query", "--job", str(job_file), "--memory-limit", "64MB", big)
    assert_refused(out, "refused query", "memory limit of 64MB", "--memory-limit")
    assert_untouched(published)
    ok = cli("query", "--job", str(job_file), "--memory-limit", "64MB", "--format", "csv", "SELECT 1 AS x")
    assert ok.exit_code == 0 and ok.output == "x\n1\n", ok.output


def test_bad_limits_are_one_error(published):
    _, job_file, *_ = published
    out = cli("query", "--job", str(job_file), "--timeout", "0", "SELECT 1")
    assert out.exit_code == 2 and "--timeout" in out.output, out.output
    out = cli("query", "--job", str(job_file), "--memory-limit", "lots", "SELECT 1")
    assert out.exit_code == 2 and "--memory-limit 'lots'" in out.output, out.output


def test_recipe_parameters_cannot_break_out(published):
    """A parameter carrying `'; COPY ... --` is a bound value: a date that does not parse, a level that does not
    exist, a folder outside the outputs. Each is one error, and nothing is written."""
    _, job_file, tmp, _ = published
    injected = f"'; COPY (SELECT 1 AS x) TO '{tmp}/elsewhere/pwn.csv'; --"
    out = cli("recipe", "series_most_wrong", "--job", str(job_file), "--set", f"level=sku{injected}")
    assert out.exit_code == 2 and f"no level 'sku{injected}' in this backtest" in out.output, out.output
    out = cli("recipe", "next_month_demand_by_warehouse", "--job", str(job_file), "--set", f"month={injected}")
    assert out.exit_code == 2 and "Conversion Error" in out.output, out.output
    out = cli("recipe", "sku_forecast_moved_most", "--job", str(job_file), "--set", f"previous_run_dir={injected}")
    assert out.exit_code == 2 and "outside the job's published outputs" in out.output, out.output
    out = cli("recipe", "sku_forecast_moved_most", "--job", str(job_file), "--set", "previous_run_dir=/etc")
    assert out.exit_code == 2 and "outside the job's published outputs" in out.output, out.output
    assert_untouched(published)


def test_recipes_run_confined_and_within_the_time_limit(published):
    job, job_file, *_ = published
    previous = job.output_dir() / "2016-02-29"
    out = cli(
        "recipe", "sku_forecast_moved_most", "--job", str(job_file), "--set", f"previous_run_dir={previous}",
        "--set", "top=3", "--format", "csv",
    )  # fmt: skip
    assert out.exit_code == 0 and len(out.output.splitlines()) == 4, out.output
    out = cli("recipe", "series_most_wrong", "--job", str(job_file), "--memory-limit", "lots")
    assert out.exit_code == 2 and "--memory-limit 'lots'" in out.output, out.output
    assert_untouched(published)


def test_a_run_outside_the_outputs_is_refused(published, tmp_path):
    """`--run` names a published as-of date: a path leading out of the job's outputs to a folder that looks like a
    run (it has a manifest) is refused by query and recipe before anything is opened (not a date) and by diff (not
    published)."""
    job, job_file, *_ = published
    fake = tmp_path / "run"
    shutil.copytree(job.output_dir() / "latest", fake)
    sneaky = os.path.relpath(fake, job.output_dir())
    refused = f"--run {sneaky!r} is not an as-of date"
    out = cli("query", "--job", str(job_file), "--run", sneaky, "SELECT count(*) FROM staffing")
    assert out.exit_code == 2 and refused in out.output, out.output
    out = cli("recipe", "headcount_next_month_p80", "--job", str(job_file), "--run", sneaky)
    assert out.exit_code == 2 and refused in out.output, out.output
    out = cli("diff", "--job", str(job_file), "--run", sneaky, "--run", "2016-04-24")
    assert out.exit_code == 2 and f"no published run {sneaky}" in out.output, out.output
    assert_untouched(published)


def test_the_mount_reads_inside_its_folder_only(tmp_path):
    """A link inside the output folder that points out of it is refused, and the mount writes nothing, whatever
    DuckDB asks of it."""
    folder = tmp_path / "job"
    folder.mkdir()
    (tmp_path / "secret.csv").write_text("a\n1\n")
    (folder / "ok.csv").write_text("a\n2\n")
    (folder / "out").symlink_to(tmp_path / "secret.csv")
    con = confined_sql.connect(folder, confined_sql.Limits())
    assert confined_sql.run(con, "SELECT a FROM read_csv('outputs://ok.csv')", confined_sql.Limits())["a"][0] == 2
    with pytest.raises(confined_sql.QueryRefused, match="outside the job's published outputs"):
        confined_sql.run(con, "SELECT * FROM read_csv('outputs://out')", confined_sql.Limits())
    # DuckDB's replacement scan would read a Python frame by its name; with external access off it does not.
    secret = pl.DataFrame({"a": [3]})  # noqa: F841
    with pytest.raises(duckdb.CatalogException):
        confined_sql.run(con, "SELECT * FROM secret", confined_sql.Limits())
    fs = confined_sql.ReadOnlyOutputs(folder)
    for write in (fs.mkdir, fs.rm, fs.touch, lambda p: fs.open(p, "wb"), lambda p: fs.pipe_file(p, b"x")):
        with pytest.raises(PermissionError, match="read-only"):
            write("outputs://new")
    assert sorted(p.name for p in folder.iterdir()) == ["ok.csv", "out"]
