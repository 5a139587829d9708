"""The planners' SQL recipes (sql/recipes) and the run comparison (forecasting diff), each checked against an
independent polars computation over the real outputs of slice runs (two monthly runs with different as-of dates and
a backtest; one daily run)."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl
import pytest
import yaml
from support import daily_job, rmsse_by_hand
from typer.testing import CliRunner

from forecasting.cli import app
from forecasting.data.sources import sql_text
from forecasting.outputs import recipes
from forecasting.outputs.diff import diff_runs, previous_as_of, resolve_pair
from forecasting.outputs.views import open_views
from forecasting.pipeline import run_job


def published(run_dir, level: str) -> pl.DataFrame:
    frame = pl.read_parquet(run_dir / "reconciled_forecasts.parquet")
    return frame.filter(pl.col("published") & (pl.col("level") == level))


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    """m5-daily-warehouse on two stores with SeasonalNaive only (about a second): a daily staffing plan."""
    job = daily_job(tmp_path_factory.mktemp("daily"), ["SeasonalNaive"], "SeasonalNaive")
    job = job.model_copy(update={"warehouse_filter": ["CA_1", "TX_1"]})
    return job, run_job(job, date(2016, 3, 2))  # a Wednesday: next week starts Monday 2016-03-07


def test_every_recipe_is_tested():
    assert recipes.available() == [
        "demand_by_level",
        "drivers_by_level",
        "forecast_error_by_level",
        "headcount_next_month_p80",
        "headcount_next_week_p80",
        "next_month_demand_by_warehouse",
        "series_drivers",
        "series_forecast_moved_most",
        "series_most_driven_by",
        "series_most_wrong",
        "sku_at_risk",  # tests/inventory/test_daily_sku_job.py
        "sku_forecast_moved_most",
    ]


def test_demand_by_level_runs_on_any_level(planner_runs):
    """The published forecast summed over the horizon per series, largest first (default: the level after the top)."""
    job, _, after = planner_runs
    got = recipes.run_recipe(job, "demand_by_level")
    expected = published(after.run_dir, "region").group_by("unique_id").agg(pl.col("mean").sum().round(1))
    assert set(got["level"]) == {"region"} and got.height == expected.height
    assert dict(got.select("unique_id", "demand").rows()) == pytest.approx(dict(expected.rows()), abs=0.06)
    skus = recipes.run_recipe(job, "demand_by_level", {"level": "sku", "top": "3"})
    top = published(after.run_dir, "sku").group_by("unique_id").agg(pl.col("mean").sum()).sort("mean").tail(3)
    assert skus["demand"].to_list() == pytest.approx(top["mean"].round(1).reverse().to_list(), abs=0.06)
    with pytest.raises(duckdb.Error, match="no level 'aisle' in this run; its levels: total, region"):
        recipes.run_recipe(job, "demand_by_level", {"level": "aisle"})


def test_series_forecast_moved_most_matches_the_sku_recipe_at_the_bottom(planner_runs):
    job, *_ = planner_runs
    generic = recipes.run_recipe(job, "series_forecast_moved_most", {"top": "5"})
    skus = recipes.run_recipe(job, "sku_forecast_moved_most", {"top": "5"})
    assert set(generic["level"]) == {"sku"} and generic["change"].to_list() == skus["change"].to_list()
    assert [uid.split("/")[-1] for uid in generic["unique_id"]] == skus["sku"].to_list()


def test_a_recipe_says_which_keys_it_needs(planner_runs):
    job, *_ = planner_runs
    tourism_like = job.model_copy(update={"staffing": None})
    assert recipes.missing_needs(job, "headcount_next_month_p80") is None
    assert "staffing plan" in recipes.missing_needs(tourism_like, "headcount_next_month_p80")
    with pytest.raises(ValueError, match="recipe 'headcount_next_month_p80' needs a staffing plan"):
        recipes.run_recipe(tourism_like, "headcount_next_month_p80")


def test_next_month_demand_by_warehouse(planner_runs):
    job, _, after = planner_runs
    got = recipes.run_recipe(job, "next_month_demand_by_warehouse")
    expected = published(after.run_dir, "warehouse").filter(pl.col("ds") == date(2016, 5, 1)).sort("warehouse")
    assert got["month"].to_list() == [date(2016, 5, 1)] * 2  # as of 2016-04-24: next month is May
    assert got["warehouse"].to_list() == expected["warehouse"].to_list() == ["CA_1", "TX_1"]
    for column in ("lo_95", "lo_80", "hi_80", "hi_95"):
        assert got[column].to_list() == pytest.approx(expected[column].round(0).to_list(), abs=0.5)
    assert got["demand"].to_list() == pytest.approx(expected["mean"].round(0).to_list(), abs=0.5)
    june = recipes.run_recipe(job, "next_month_demand_by_warehouse", {"month": "2016-06-17"})
    assert june["month"].to_list() == [date(2016, 6, 1)] * 2 and june["demand"].to_list() != got["demand"].to_list()


def test_next_month_demand_in_the_duckdb_shell_way(planner_runs):
    """What the README tells planners to type: SET VARIABLE, views.sql, then the recipe file as it is."""
    job, _, after = planner_runs
    con = duckdb.connect()
    con.execute("SET VARIABLE run_dir = ?", [str(after.run_dir)])
    for statement in sql_text("views").split(";"):
        if statement.strip() and not all(line.strip().startswith("--") for line in statement.strip().splitlines()):
            con.execute(statement)
    con.execute("SET VARIABLE month = '2016-05-01'")
    text = (recipes.recipes_dir() / "next_month_demand_by_warehouse.sql").read_text()
    assert con.sql(text).pl().equals(recipes.run_recipe(job, "next_month_demand_by_warehouse"))


def test_skus_whose_forecast_moved_most(planner_runs):
    job, before, after = planner_runs
    assert previous_as_of(job) == "2016-02-29"
    got = recipes.run_recipe(job, "sku_forecast_moved_most", {"top": "5"})
    old, new = published(before.run_dir, "sku"), published(after.run_dir, "sku")
    joined = new.join(old.select("unique_id", "ds", pl.col("mean").alias("old")), on=["unique_id", "ds"])
    assert sorted(joined["ds"].unique().to_list()) == [date(2016, 4, 1), date(2016, 5, 1)]  # the common periods
    moved = (
        joined.group_by("warehouse", "sku")
        .agg((pl.col("mean").sum() - pl.col("old").sum()).alias("change"), pl.len().alias("periods"))
        .sort(pl.col("change").abs(), descending=True)
        .head(5)
    )
    assert got.height == 5
    assert got.select("warehouse", "sku").rows() == moved.select("warehouse", "sku").rows()
    assert got["change"].to_list() == pytest.approx(moved["change"].round(1).to_list(), abs=0.06)
    assert got["periods"].to_list() == [2] * 5
    assert recipes.run_recipe(job, "sku_forecast_moved_most").height == 20  # default top


def test_recipe_values_are_bound_not_formatted(planner_runs):
    job, *_ = planner_runs
    with pytest.raises(duckdb.ConversionException):
        recipes.run_recipe(job, "sku_forecast_moved_most", {"top": "5; DROP VIEW forecasts"})
    with pytest.raises(ValueError, match="has no parameter top = 1; --; it takes: previous_run_dir, top"):
        recipes.run_recipe(job, "sku_forecast_moved_most", {"top = 1; --": "5"})
    with pytest.raises(ValueError, match="has no parameter monht; it takes: month"):  # a misspelling, refused
        recipes.run_recipe(job, "next_month_demand_by_warehouse", {"monht": "2016-05-01"})
    with pytest.raises(FileNotFoundError, match="compares with the previous run"):
        recipes.run_recipe(job, "sku_forecast_moved_most", as_of="2016-02-29")  # nothing published before it


def test_headcount_next_month_p80(planner_runs):
    job, _, after = planner_runs
    got = recipes.run_recipe(job, "headcount_next_month_p80")
    staffing = pl.read_parquet(after.run_dir / "staffing.parquet")
    for quantile, frame in (
        ("p80", got),
        ("p95", recipes.run_recipe(job, "headcount_next_month_p80", {"quantile": "p95"})),
    ):
        expected = (
            staffing.filter((pl.col("quantile") == quantile) & (pl.col("ds") == date(2016, 5, 1)))
            .group_by("warehouse")
            .agg(pl.col("headcount").sum(), pl.len().alias("processes"))
            .sort("warehouse")
        )
        assert frame.select("warehouse", "headcount", "processes").rows() == expected.rows()


def test_headcount_next_week_p80_for_the_daily_job(daily):
    job, result = daily
    got = recipes.run_recipe(job, "headcount_next_week_p80")
    monday = date(2016, 3, 7)
    staffing = pl.read_parquet(result.run_dir / "staffing.parquet")
    per_day = (
        staffing.filter((pl.col("quantile") == "p80") & pl.col("ds").is_between(monday, monday + timedelta(days=6)))
        .group_by("warehouse", "ds")
        .agg(pl.col("headcount").sum(), pl.col("fte").sum())
    )
    expected = (
        per_day.group_by("warehouse")
        .agg(pl.col("headcount").max(), pl.col("fte").mean(), pl.len().alias("days"))
        .sort("warehouse")
    )
    assert got["week_start"].to_list() == [monday, monday]
    assert got["days"].to_list() == expected["days"].to_list() == [7, 7]
    assert got["headcount_peak_day"].to_list() == expected["headcount"].to_list()
    assert got["mean_fte"].to_list() == pytest.approx(expected["fte"].round(1).to_list(), abs=0.051)
    later = recipes.run_recipe(job, "headcount_next_week_p80", {"week_start": "2016-03-14"})
    assert later["week_start"].to_list() == [date(2016, 3, 14)] * 2


def test_next_month_demand_sums_the_days_for_a_daily_job(daily):
    job, result = daily
    # as of 2016-03-02 the 28-day horizon ends 2016-03-30: "next month" (April) has no forecast yet
    assert recipes.run_recipe(job, "next_month_demand_by_warehouse").height == 0
    got = recipes.run_recipe(job, "next_month_demand_by_warehouse", {"month": "2016-03-01"})
    days = published(result.run_dir, "warehouse").filter(pl.col("ds") < date(2016, 4, 1))
    expected = days.group_by("warehouse").agg(pl.col("mean").sum(), pl.col("hi_95").sum(), pl.len()).sort("warehouse")
    assert got["periods"].to_list() == expected["len"].to_list() == [28, 28]
    assert got["demand"].to_list() == pytest.approx(expected["mean"].round(0).to_list(), abs=0.5)
    assert got["hi_95"].to_list() == pytest.approx(expected["hi_95"].round(0).to_list(), abs=0.5)


def test_forecast_error_by_level(planner_runs):
    job, *_ = planner_runs
    got = recipes.run_recipe(job, "forecast_error_by_level")
    folder = job.output_dir() / "backtests" / "latest"
    rec = pl.read_parquet(folder / "backtest_reconciled.parquet")
    for level in ("total", "region", "warehouse", "sku"):
        part = rec.filter((pl.col("level") == level) & (pl.col("method") == "MinTrace_wls_struct"))
        wape = (part["y"] - part["mean"]).abs().sum() / part["y"].abs().sum()
        row = got.filter((pl.col("level") == level) & (pl.col("model") == "MinTrace_wls_struct"))
        assert row["wape"].item() == pytest.approx(wape, abs=5e-4)
        assert row["windows"].item() == 2
    base = pl.read_parquet(folder / "backtest_base.parquet").filter(pl.col("model") == "LightGBM")
    assert set(got.filter(pl.col("kind") == "base")["model"]) == set(
        pl.read_parquet(folder / "backtest_base.parquet")["model"]
    )
    assert (
        got.filter((pl.col("model") == "LightGBM") & (pl.col("level") == "sku"))["series"].item()
        == base.filter(pl.col("level") == "sku")["unique_id"].n_unique()
    )
    one = recipes.run_recipe(job, "forecast_error_by_level", {"cutoff": str(rec["cutoff"].min())})
    assert set(one["windows"]) == {1}


def test_diff_lists_the_largest_changes(planner_runs):
    job, before, after = planner_runs
    a, b = resolve_pair(job, [])
    assert (a, b) == (before.run_dir.resolve(), after.run_dir.resolve())
    assert resolve_pair(job, ["2016-04-24"]) == (a, b)
    assert resolve_pair(job, ["2016-04-24", "2016-02-29"]) == (b, a)
    result = diff_runs(job, a, b, top=3)
    assert any("2 common periods" in note for note in result.notes)
    old, new = published(before.run_dir, "sku"), published(after.run_dir, "sku")
    change = (
        new.join(old.select("unique_id", "ds", pl.col("mean").alias("old")), on=["unique_id", "ds"])
        .group_by("unique_id")
        .agg((pl.col("mean").sum() - pl.col("old").sum()).alias("change"))
        .sort(pl.col("change").abs(), descending=True)
        .head(3)
    )
    sku = result.forecasts.filter(pl.col("level") == "sku")
    assert sku["unique_id"].to_list() == change["unique_id"].to_list()
    assert sku["change"].to_list() == pytest.approx(change["change"].to_list())
    assert result.forecasts["level"].unique(maintain_order=True).to_list() == ["total", "region", "warehouse", "sku"]
    staff_a, staff_b = (pl.read_parquet(r.run_dir / "staffing.parquet") for r in (before, after))
    on = ["warehouse", "process", "ds", "quantile"]
    fte = staff_b.join(staff_a, on=on, suffix="_a").select((pl.col("fte") - pl.col("fte_a")).abs().max()).item()
    assert result.staffing.height == 3 and result.staffing["fte_change"].abs().max() == pytest.approx(fte)
    with pytest.raises(ValueError, match="at most two"):
        resolve_pair(job, ["2016-02-29", "2016-04-24", "2016-04-24"])
    with pytest.raises(FileNotFoundError, match="no published run before"):
        resolve_pair(job, ["2016-02-29"])


def test_cli_diff_and_recipe(planner_runs, tmp_path):
    job, *_ = planner_runs
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(job.model_dump(mode="json")))
    out = CliRunner().invoke(app, ["diff", "--job", str(job_file), "--run", "2016-02-29", "--run", "2016-04-24"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("from 2016-02-29-") and "largest staffing changes" in out.output
    out = CliRunner().invoke(
        app, ["recipe", "headcount_next_month_p80", "--job", str(job_file), "--set", "quantile=p95", "--format", "csv"]
    )
    assert out.exit_code == 0, out.output
    assert (
        out.output.splitlines()[0].startswith("region,warehouse,month,headcount") and len(out.output.splitlines()) == 3
    )
    bad = CliRunner().invoke(app, ["recipe", "nope", "--job", str(job_file)])
    assert bad.exit_code == 2 and "no recipe 'nope'" in bad.output


def test_series_most_wrong(planner_runs):
    """The published forecast's per-series RMSSE over the backtest's nested windows, worst first, recomputed from
    the stored rows."""
    from forecasting.pipeline import aggregate, load, validate

    job, *_ = planner_runs
    got = recipes.run_recipe(job, "series_most_wrong")
    folder = job.output_dir() / "backtests" / "latest"
    rec = pl.read_parquet(folder / "backtest_reconciled.parquet").filter(pl.col("published"))
    cutoffs = sorted(rec["cutoff"].unique().to_list())
    nested = cutoffs[-job.backtest.scored_windows(len(cutoffs)) :]
    rec = rec.filter(pl.col("cutoff").is_in(nested))
    assert got["level"].to_list() == ["warehouse"] * 2 and set(got["method"]) == {"nested"}
    assert got["windows"].to_list() == [len(nested)] * 2
    assert got["rmsse"].to_list() == sorted(got["rmsse"], reverse=True)
    history = aggregate(validate(load(job), job), job).Y_df
    for row in got.iter_rows(named=True):
        rows = rec.filter(pl.col("unique_id") == row["unique_id"])
        own = history.filter(pl.col("unique_id") == row["unique_id"])
        assert row["rmsse"] == pytest.approx(rmsse_by_hand(rows, own), abs=5e-4)
        assert row["bias"] == pytest.approx((rows["mean"].sum() - rows["y"].sum()) / rows["y"].sum(), abs=5e-4)
    skus = recipes.run_recipe(job, "series_most_wrong", {"level": "sku", "top": "5"})
    table = pl.read_parquet(folder / "series_metrics.parquet").filter(
        (pl.col("level") == "sku") & (pl.col("kind") == "published") & (pl.col("model") == "nested")
    )
    worst = table.sort(pl.col("rmsse"), pl.col("unique_id"), descending=[True, False], nulls_last=True).head(5)
    assert skus["unique_id"].to_list() == worst["unique_id"].to_list() and skus["sku"].null_count() == 0
    unknown = "no level 'store' in this backtest; its levels: region, sku, total, warehouse"
    with pytest.raises(duckdb.InvalidInputException, match=unknown):
        recipes.run_recipe(job, "series_most_wrong", {"level": "store"})


def test_a_backtest_without_per_series_metrics_still_opens_and_the_recipe_says_why(planner_runs, tmp_path):
    """A backtest published before series_metrics.parquet existed: its other views open, the recipe that needs the
    per-series view fails with one message naming it and the command to run."""
    import shutil

    job, *_ = planner_runs
    old = job.model_copy(update={"output_root": str(tmp_path / "outputs")})
    shutil.copytree(job.output_dir(), old.output_dir(), symlinks=True)  # relative links: into the copy
    (old.output_dir() / "backtests" / "latest" / "series_metrics.parquet").unlink()
    con = open_views(old)
    assert con.sql("SELECT count(*) FROM backtest_metrics").fetchone()[0] > 0
    views = {row[0] for row in con.sql("SELECT view_name FROM duckdb_views()").fetchall()}
    assert "backtest_reconciled" in views and "backtest_series_metrics" not in views
    says = "reads backtest_series_metrics, which job 'm5-monthly' has not published: run `forecasting backtest"
    with pytest.raises(FileNotFoundError, match=says):
        recipes.run_recipe(old, "series_most_wrong")
