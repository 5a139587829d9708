"""New series in order-shaped data (issue 35): real M5 monthly rows from each series' first sale on, with SKUs
newly listed in a store and a store whose SKUs are all new, through the whole nightly run and its readers."""

from __future__ import annotations

import json
import warnings
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from support import M5_MONTHLY, assert_coherent, first_items

from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec
from forecasting.models import young
from forecasting.pipeline import backtest_job, load_hierarchy, run_job

# SKUs whose first sale in CA_1 / TX_1 came in 2014-2015: new at the 2016-01 origin (shorter than 25 months).
LAUNCHED = ["HOUSEHOLD_1_512", "FOODS_3_530", "HOUSEHOLD_1_242", "FOODS_3_350", "HOUSEHOLD_1_441", "FOODS_2_379"]
AS_OF = date(2016, 1, 1)  # history to 2015-12
NEW_STORE_FROM = date(2015, 10, 1)  # CA_2's rows start here: a store whose SKUs are all new (3 months)


def order_rows(tmp: Path) -> Path:
    """Real rows of CA_1, TX_1 (30 established SKUs and the launched ones) and CA_2 from 2015-10, each series' rows
    before its first sale removed, as an order system gives them."""
    items = first_items("CA_1", 30) + LAUNCHED
    path = tmp / "orders.parquet"
    rows = duckdb.execute(
        "SELECT * FROM read_parquet(?) WHERE list_contains(?, item_id) "
        "AND (store_id IN ('CA_1', 'TX_1') OR (store_id = 'CA_2' AND month >= ?)) "
        "QUALIFY month >= min(month) FILTER (WHERE sales > 0) OVER (PARTITION BY item_id, store_id) "
        "ORDER BY store_id, item_id, month",
        [str(M5_MONTHLY), items, NEW_STORE_FROM],
    ).pl()
    rows.write_parquet(path)
    return path


def order_job(tmp: Path, **update: object) -> JobSpec:
    job = load_job("m5-monthly")
    data = job.model_dump()
    data["source"]["sales"]["path"] = str(order_rows(tmp))
    # A slice of the stores (the bundled labour standards name all ten).
    data |= {"zero_fill_gaps": True, "output_root": str(tmp / "outputs"), "n_jobs": 1} | update
    data["warehouse_filter"] = ["CA_1", "CA_2", "TX_1"]
    return JobSpec.model_validate(data)


@pytest.fixture(scope="module")
def new_series_run(tmp_path_factory):
    job = order_job(tmp_path_factory.mktemp("orders"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return job, run_job(job, AS_OF)


def test_every_series_with_a_sale_is_forecast_and_counted(new_series_run):
    job, result = new_series_run
    history = pl.read_parquet(job.source.sales.path).filter(pl.col("month") < date(2016, 1, 1))
    sold = history.filter(pl.col("sales") > 0).select("store_id", "item_id").unique()
    published = pl.read_parquet(result.run_dir / "reconciled_forecasts.parquet").filter(pl.col("published"))
    sku = published.filter(pl.col("level") == "sku")
    assert sku.select("warehouse", "sku").unique().height == sold.height  # every series that sold
    assert sku["mean"].is_finite().all() and (sku["mean"] >= 0).all()
    # Each row carries its series' history length: the months from its first sale (Jan-2011 is a partial month).
    months = history.filter(pl.col("month") >= date(2011, 2, 1)).group_by("store_id", "item_id").len()
    lengths = sku.select("warehouse", "sku", "history_periods").unique()
    joined = lengths.join(months, left_on=["warehouse", "sku"], right_on=["store_id", "item_id"])
    assert joined.height == sold.height and (joined["history_periods"] == joined["len"]).all()
    # New = shorter than the 25 periods the bottom LightGBM needs; counted in the summary and the manifest.
    new = lengths.filter(pl.col("history_periods") < 25)
    summary = result.summary["new_series"]
    assert summary["per_level"]["sku"] == new.height > 0 and summary["shorter_than_periods"] == 25
    assert sum(summary["served_by"].values()) == summary["count"] == sum(summary["per_level"].values())
    assert set(sku.filter(pl.col("history_periods") < 25)["model"].unique()) <= set(young.YOUNG_MODELS)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["summary"]["new_series"] == summary


def test_a_store_whose_skus_are_all_new_is_forecast_reconciled_and_staffed(new_series_run):
    job, result = new_series_run
    reconciled = pl.read_parquet(result.run_dir / "reconciled_forecasts.parquet")
    published = reconciled.filter(pl.col("published"))
    ca2 = published.filter(pl.col("warehouse") == "CA_2")
    assert set(ca2["level"].unique()) == {"warehouse", "sku"}
    ages = ca2.filter(pl.col("level") == "sku")["history_periods"]
    assert ages.max() == 3 and ages.min() >= 1  # opened in Oct-2015; some SKUs first sold later
    for method in reconciled.filter(pl.col("method") != "Base")["method"].unique():
        assert_coherent(reconciled.filter(pl.col("method") == method))
    staffing = pl.read_parquet(result.run_dir / "staffing.parquet")
    assert "CA_2" in staffing["warehouse"].to_list()


def test_new_series_intervals_are_ordered_around_the_mean(new_series_run):
    _, result = new_series_run
    rows = pl.read_parquet(result.run_dir / "reconciled_forecasts.parquet").filter(
        pl.col("published") & (pl.col("history_periods") < 25)
    )
    assert rows.height
    assert (rows["lo_95"] <= rows["lo_80"]).all() and (rows["lo_80"] <= rows["mean"] + 1e-9).all()
    assert (rows["mean"] <= rows["hi_80"] + 1e-9).all() and (rows["hi_80"] <= rows["hi_95"]).all()


def test_readers_run_with_new_series(new_series_run):
    """The report (which counts the new series), the recipes and the what-if staffing read a run with new series."""
    from forecasting import pipeline
    from forecasting.outputs import recipes, report, scenarios

    job, result = new_series_run
    page = report.build_report(job, result.run_dir, pipeline.history, top=3)
    assert "CA_2" in page and f"{result.summary['new_series']['count']} new series" in page
    for name in recipes.available():
        if recipes.missing_needs(job, name) is None and not recipes.parameters(name):
            assert recipes.run_recipe(job, name) is not None
    _, table = scenarios.what_if(job, None, None, "summer-promo")
    assert "CA_2" in table["warehouse"].to_list()


def test_launch_curve_and_flat_on_real_launches(tmp_path):
    """The curve learns from launches of the same store; a series whose age no launch reached is served by Flat."""
    job = order_job(tmp_path)
    _, hierarchy = load_hierarchy(job, AS_OF)
    routes = young.route(hierarchy, job)
    assert routes.need == 25 and routes.young.height
    Y_bottom = hierarchy.Y_df.filter(pl.col("unique_id").is_in(hierarchy.ids("sku")))
    launched = young.launch_forecast(Y_bottom, routes.young, young.parent_groups(hierarchy), job, routes.need - 1)
    served = young.served_by(launched.forecasts, routes.young)
    assert served.height == routes.young.height
    fc = launched.forecasts
    assert fc.filter(pl.col(young.FLAT).is_null()).is_empty()
    one = pl.DataFrame({"unique_id": ["x"], "ds": [date(2015, 12, 1)], "y": [4.0]})
    alone = young.launch_forecast(
        one,
        pl.DataFrame({"unique_id": ["x"], "model": [young.LAUNCH]}),
        pl.DataFrame({"unique_id": ["x"], "group": ["g"]}),
        job,
        24,
    )
    assert young.served_by(alone.forecasts, pl.DataFrame({"unique_id": ["x"], "model": [young.LAUNCH]}))[
        "model"
    ].to_list() == [young.FLAT]
    assert alone.forecasts[young.FLAT].to_list() == [4.0, 4.0, 4.0]


def test_history_shorter_than_a_season_is_forecast_with_one_line_per_model(tmp_path):
    """Nine months of data and a 12-month season: SeasonalNaive (and the LightGBMs) are not offered, said once each;
    every series is forecast."""
    job = order_job(tmp_path)
    data = job.model_dump()
    rows = pl.read_parquet(job.source.sales.path).filter(pl.col("month") >= date(2015, 4, 1))
    rows.write_parquet(tmp_path / "short.parquet")
    data["source"]["sales"]["path"] = str(tmp_path / "short.parquet")
    short = JobSpec.model_validate(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_job(short, AS_OF)
    notes = result.summary["models_not_offered"]
    assert any(n.startswith("SeasonalNaive not offered at the aggregate level") for n in notes)
    assert len(notes) == len(set(notes)) <= 8
    published = pl.read_parquet(result.run_dir / "reconciled_forecasts.parquet").filter(pl.col("published"))
    sold = rows.filter(pl.col("month") < AS_OF).select("store_id", "item_id").unique()
    assert published.filter(pl.col("level") == "sku")["unique_id"].n_unique() == sold.height


@pytest.mark.slow
def test_backtest_with_new_series_reports_them_apart(new_series_run):
    job, _ = new_series_run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder, result = backtest_job(job, AS_OF, 2)
    split = pl.read_parquet(folder / "new_series_metrics.parquet")
    assert set(split["series_group"]) == {"new", "established"}
    assert split.filter(pl.col("series_group") == "new")["series"].min() > 0
    assert split["coverage_80"].is_between(0, 1).all()
    # Each window's launch model, chosen from the launch models' scores in the windows before it only.
    from forecasting.evaluate import plan as plans

    window_plans = json.loads((folder / "manifest.json").read_text())["window_plans"]
    scored = pl.read_parquet(folder / "window_metrics.parquet").filter(pl.col("kind") == "base")
    for plan in window_plans:
        earlier = [date.fromisoformat(c) for c in plan["windows"]]
        assert plan["launch"] == plans.choose_launch(scored, earlier, job)[0]
