"""Order lines as a source (source.order_lines) on the real Online Retail II lines: the sum into weeks, each rule's
counts and the price feature, checked against independent DuckDB queries over the same file; bad lines as one error
naming file, column and rows; the time zone the weeks are cut in."""

from __future__ import annotations

import json
from datetime import date, timedelta

import duckdb
import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from forecasting import pipeline
from forecasting.cli import app
from forecasting.data import features, order_lines, sources
from forecasting.data.hierarchy import complete_periods
from forecasting.data.quality import DataQualityError
from forecasting.job.common import project_root
from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec

FILE = project_root() / "data" / "online-retail" / "online_retail_2009_2010.parquet"

# The bundled job's rules, written independently: the same meaning in other SQL (LIKE, anchored regexp_matches,
# starts_with), each line attributed to the first rule that matches it, as the job's summary counts them.
RULES = """
CASE
    WHEN NOT regexp_matches(stock_code, '[0-9]') THEN 0
    WHEN regexp_matches(stock_code, '^C[0-9]+$') THEN 1
    WHEN regexp_matches(stock_code, '^ADJUST[0-9]*$') THEN 2
    WHEN regexp_matches(stock_code, '^TEST[0-9]+$') THEN 3
    WHEN starts_with(stock_code, 'gift_') THEN 4
    WHEN invoice LIKE 'C%' THEN 5
    WHEN quantity <= 0 THEN 6
END
"""


def independent(query: str, **params) -> pl.DataFrame:
    with duckdb.connect() as con:
        con.execute("SET VARIABLE lines_file = ?", [str(FILE)])
        con.execute("CREATE VIEW lines AS SELECT * FROM read_parquet(getvariable('lines_file'))")
        return con.execute(query, params).pl()


def with_lines(job: JobSpec, **changes) -> JobSpec:
    data = job.model_dump()
    data["source"]["order_lines"] = data["source"]["order_lines"] | changes
    return JobSpec.model_validate(data)


def prepared(job: JobSpec) -> tuple[duckdb.DuckDBPyConnection, dict]:
    con, labels = sources.connect_sources(job)
    return con, order_lines.prepare(con, job, labels["raw_sales"])


def weekly_by_country(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.execute(
        "SELECT country, ds_raw AS week, sum(quantity) AS units FROM raw_sales GROUP BY ALL ORDER BY ALL"
    ).pl()


@pytest.fixture(scope="module")
def job() -> JobSpec:
    return load_job("online-retail")


@pytest.fixture(scope="module")
def loaded(job):
    return pipeline.load(job)


def test_demand_weeks_per_country_equal_an_independent_query(job, loaded):
    expected = independent(
        f"SELECT country, CAST(date_trunc('week', invoice_date) AS DATE) AS week, CAST(sum(quantity) AS DOUBLE) AS "
        f"units FROM lines WHERE ({RULES}) IS NULL GROUP BY ALL ORDER BY ALL"
    )
    history = (
        loaded.history.with_columns(pl.col("country").cast(pl.String))
        .group_by("country", pl.col("ds").alias("week"))
        .agg(pl.col("y").sum().alias("units"))
        .sort("country", "week")
    )
    assert expected.height > 500 and expected["country"].n_unique() == 40
    assert_frame_equal(history, expected, check_dtypes=False)
    # every line counted is in a positive week sum: demand counts no return
    assert (history["units"] > 0).all()


def test_each_rule_counts_the_lines_and_units_it_removed(loaded):
    counts = independent(
        f"SELECT {RULES} AS rule, count(*) AS n, CAST(sum(quantity) AS DOUBLE) AS q FROM lines GROUP BY 1 ORDER BY 1"
    )
    by_rule = {r: (n, q) for r, n, q in counts.rows()}
    summary = loaded.order_lines
    removed = summary["removed"]
    assert [r["rule"] for r in removed] == [
        "not a product: stock_code matches '[^0-9]*'",
        "not a product: stock_code matches 'C[0-9]+'",
        "not a product: stock_code matches 'ADJUST[0-9]*'",
        "not a product: stock_code matches 'TEST[0-9]+'",
        "not a product: stock_code matches 'gift_.*'",
        "cancelled or excluded order: invoice matches '^C'",
        "return or cancellation: quantity not above 0 (returns: demand)",
    ]
    assert [(r["rows"], r["quantity"]) for r in removed] == [by_rule[i] for i in range(7)]
    assert summary["lines"] == sum(n for n, _ in by_rule.values())
    assert summary["lines_counted"] == by_rule[None][0]
    assert summary["quantity_counted"] == by_rule[None][1]
    # the file's own figures (SOURCE.md): 12,326 negative lines, every one removed by some rule under demand
    negative = independent("SELECT count(*) AS n FROM lines WHERE quantity < 0").item()
    assert negative == 12_326
    assert independent(f"SELECT count(*) AS n FROM lines WHERE quantity < 0 AND ({RULES}) IS NULL").item() == 0


def test_net_subtracts_returns_from_each_series_first_sale_and_floors_weeks_at_zero(job):
    net = with_lines(job, returns="net", exclude_orders_matching=None)
    con, summary = prepared(net)
    try:
        got = weekly_by_country(con)
    finally:
        con.close()
    products = RULES.replace("WHEN invoice LIKE 'C%' THEN 5", "").replace("WHEN quantity <= 0 THEN 6", "")
    weeks = f"""
        WITH w AS (
            SELECT country, stock_code, CAST(date_trunc('week', invoice_date) AS DATE) AS week,
                   sum(quantity) AS units, max(quantity) > 0 AS sold, count(*) AS n
            FROM lines WHERE ({products}) IS NULL GROUP BY ALL
        ),
        f AS (SELECT *, min(week) FILTER (WHERE sold) OVER (PARTITION BY country, stock_code) AS first FROM w)
    """
    expected = independent(
        weeks + "SELECT country, week, CAST(sum(greatest(units, 0)) AS DOUBLE) AS units FROM f "
        "WHERE week >= first GROUP BY ALL ORDER BY ALL"
    )
    assert_frame_equal(got, expected, check_dtypes=False)
    before, floored = independent(
        weeks + "SELECT struct_pack(n := sum(n) FILTER (WHERE first IS NULL OR week < first), "
        "q := CAST(sum(units) FILTER (WHERE first IS NULL OR week < first) AS DOUBLE)), "
        "struct_pack(n := count(*) FILTER (WHERE week >= first AND units < 0), "
        "q := CAST(sum(units) FILTER (WHERE week >= first AND units < 0) AS DOUBLE)) FROM f"
    ).row(0)
    rules = {r["rule"]: r for r in summary["removed"]}
    first = rules["returns before the series' first sale (returns: net)"]
    floor = rules["periods whose returns exceed their sales, counted as 0 (returns: net)"]
    assert (first["rows"], first["quantity"]) == (before["n"], before["q"]) and first["rows"] > 0
    assert (floor["rows"], floor["quantity"], floor["rows_are"]) == (floored["n"], floored["q"], "periods")
    assert floor["rows"] > 0
    assert "return or cancellation: quantity not above 0 (returns: demand)" not in rules
    removed_lines = sum(r["rows"] for r in summary["removed"] if r["rows_are"] == "lines")
    read = independent("SELECT count(*) AS n FROM lines").item()
    assert summary["lines"] == removed_lines + summary["lines_counted"] == read
    assert summary["quantity_counted"] == pytest.approx(expected["units"].sum(), rel=1e-12)


def test_without_rules_every_positive_line_counts(job):
    bare = with_lines(job, exclude_orders_matching=None, not_products={})
    con, summary = prepared(bare)
    try:
        total = con.execute("SELECT sum(quantity) FROM raw_sales").fetchone()[0]
    finally:
        con.close()
    positive = independent("SELECT CAST(sum(quantity) AS DOUBLE) AS q FROM lines WHERE quantity > 0").item()
    assert total == positive == summary["quantity_counted"]
    assert [r["rule"] for r in summary["removed"]] == ["return or cancellation: quantity not above 0 (returns: demand)"]


def test_weeks_are_cut_in_the_stated_time_zone(job, tmp_path):
    """The lines' timestamps as instants (UTC) in a parquet file; the job counts its days in Auckland (UTC+13 in
    December): a line after 11:00 UTC on a Sunday falls in the next week."""
    zoned = tmp_path / "zoned.parquet"
    (pl.read_parquet(FILE).with_columns(pl.col("invoice_date").dt.replace_time_zone("UTC")).write_parquet(zoned))
    data = job.model_dump()
    data["source"]["sales"]["path"] = str(zoned)
    data["source"]["timezone"] = "Pacific/Auckland"
    data["source"]["order_lines"] |= {"not_products": {}, "exclude_orders_matching": None}
    con, _ = prepared(JobSpec.model_validate(data))
    try:
        got = weekly_by_country(con)
    finally:
        con.close()
    local = pl.read_parquet(FILE).filter(pl.col("quantity") > 0)
    local = local.with_columns(
        pl.col("invoice_date").dt.replace_time_zone("UTC").dt.convert_time_zone("Pacific/Auckland").dt.date()
    )
    expected = (
        local.group_by("country", pl.col("invoice_date").dt.truncate("1w").alias("week"))
        .agg(pl.col("quantity").sum().cast(pl.Float64).alias("units"))
        .sort("country", "week")
    )
    assert_frame_equal(got, expected, check_dtypes=False)
    naive = independent(
        "SELECT country, CAST(date_trunc('week', invoice_date) AS DATE) AS week, CAST(sum(quantity) AS DOUBLE) AS "
        "units FROM lines WHERE quantity > 0 GROUP BY ALL ORDER BY ALL"
    )
    assert not got.equals(naive)  # the zone moved lines into other weeks


def test_price_is_the_weeks_quantity_weighted_average_carried_to_the_horizon(job, loaded):
    expected = independent(
        f"SELECT country, stock_code AS sku, CAST(date_trunc('week', invoice_date) AS DATE) AS ds, "
        f"sum(quantity * price) / sum(quantity) AS price FROM lines WHERE ({RULES}) IS NULL AND price > 0 "
        "GROUP BY ALL ORDER BY ALL"
    )
    prices = loaded.prices
    got = prices.join(expected.select("country", "sku", "ds"), on=["country", "sku", "ds"], how="semi")
    assert_frame_equal(got.sort("country", "sku", "ds"), expected, check_dtypes=False, rtol=1e-12)
    # one row per week from each series' first sale to 13 weeks past the data's last week, none before
    first = loaded.history.group_by("country", "sku").agg(pl.col("ds").min().alias("first"))
    spans = prices.group_by("country", "sku").agg(
        pl.col("ds").min().alias("from"), pl.col("ds").max().alias("to"), pl.len().alias("n")
    )
    last = loaded.history["ds"].max()
    spans = spans.join(first.with_columns(pl.col("country", "sku").cast(pl.String)), on=["country", "sku"])
    assert (spans["from"] == spans["first"]).all()
    assert (spans["to"] == last + timedelta(weeks=job.horizon)).all()
    assert (spans["n"] == (spans["to"] - spans["from"]).dt.total_days() // 7 + 1).all()
    # the LightGBM feature carries the last average forward: no week after the first sale is without a price
    members = spans.select(pl.concat_str("country", "sku", separator="/").alias("unique_id"), "country", "sku")
    feature = features.price_features(prices, members)
    never = independent(
        f"SELECT country, stock_code FROM lines WHERE ({RULES}) IS NULL GROUP BY ALL HAVING max(price) <= 0"
    )
    unpriced = feature.group_by("unique_id").agg(pl.col("price").null_count().alias("nulls"), pl.len().alias("n"))
    assert unpriced.filter(pl.col("nulls") > 0).height == never.height  # a series sold only at price 0
    assert (unpriced.filter(pl.col("nulls") > 0)["nulls"] == unpriced.filter(pl.col("nulls") > 0)["n"]).all()
    assert feature.height == prices.height


def test_no_week_before_a_series_first_sale_and_empty_weeks_are_zero(job, tmp_path):
    """Validated through the gate on UK series of a few products: every week from the first sale to the last
    complete week, a week with no line as 0, the units as the lines hold them."""
    skus = ["85123A", "21232", "22423", "84879", "85099B", "22625", "22492"]  # the last two first sold in May 2010
    data = job.model_dump() | {
        "filters": {"country": ["United Kingdom"], "sku": skus},
        "models": {"aggregate_models": ["Naive"], "bottom_models": ["Naive"], "intermittent_model": None},
        "min_history": 2,
    }
    small = JobSpec.model_validate(data)
    validated = pipeline.validate(pipeline.load(small), small)
    history = validated.history.with_columns(pl.col("sku").cast(pl.String)).sort("sku", "ds")
    weeks = independent(
        f"SELECT stock_code AS sku, CAST(date_trunc('week', invoice_date) AS DATE) AS ds, "
        f"CAST(sum(quantity) AS DOUBLE) AS y FROM lines WHERE ({RULES}) IS NULL AND country = 'United Kingdom' "
        "AND list_contains($skus, stock_code) GROUP BY ALL",
        skus=skus,
    )
    kept_to = validated.periods.kept_to
    for sku in skus:
        rows = history.filter(pl.col("sku") == sku)
        sold = weeks.filter(pl.col("sku") == sku)
        first = max(sold["ds"].min(), validated.periods.kept_from)
        assert rows["ds"].to_list() == pl.date_range(first, kept_to, "1w", eager=True).to_list()
        joined = rows.join(sold, on=["sku", "ds"], how="left").with_columns(pl.col("y_right").fill_null(0.0))
        assert (joined["y"] == joined["y_right"]).all()
    assert (history["y"] == 0).sum() > 0  # weeks with no line are there, as zeros
    launched = history.filter(pl.col("sku").is_in(["22625", "22492"])).group_by("sku").agg(pl.col("ds").min())
    assert (launched["ds"] >= date(2010, 5, 3)).all()  # not padded back to the start of the data


def test_a_missing_timestamp_column_is_one_error_naming_file_and_column(job):
    data = job.model_dump()
    data["source"]["sales"]["columns"]["date"] = "order_date"
    with pytest.raises(sources.SourceError) as error:
        pipeline.load(JobSpec.model_validate(data))
    message = str(error.value)
    assert str(FILE) in message and "date -> 'order_date'" in message and "invoice_date" in message


def test_a_quantity_that_is_not_a_number_is_one_error_naming_file_column_and_rows(job, tmp_path):
    lines = pl.read_parquet(FILE).head(3000).with_columns(pl.col("quantity").cast(pl.String))
    broken = lines.with_columns(
        pl.when(pl.int_range(pl.len()).is_in([10, 500, 2000]))
        .then(pl.lit("twelve"))
        .otherwise("quantity")
        .alias("quantity")
    )
    path = tmp_path / "lines.csv"
    broken.write_csv(path)
    data = job.model_dump()
    data["source"]["sales"] |= {"path": str(path), "format": "csv"}
    with pytest.raises(DataQualityError) as error:
        pipeline.load(JobSpec.model_validate(data))
    [problem] = error.value.problems
    assert (problem.file, problem.column, problem.count) == (str(path), "quantity", 3)
    assert problem.what == "values that are not numbers"
    assert {row[3] for row in problem.examples} == {"twelve"}
    assert str(path) in str(error.value) and "[column quantity]" in str(error.value)


def test_coverage_is_read_from_the_lines_days(job, loaded):
    con, labels = sources.connect_sources(job)
    try:
        order_lines.prepare(con, job, labels["raw_sales"])
        covered = sources.coverage(con, job)
    finally:
        con.close()
    assert (covered.first_row, covered.data_end) == (date(2009, 12, 1), date(2010, 12, 9))
    assert loaded.as_of == date(2010, 12, 9)
    # the weeks holding the first and the last line hold 6 and 4 days of data: dropped, not taken as whole weeks
    _, periods = complete_periods(loaded.history, job)
    assert periods.dropped == ["2009-11-30 (6/7 days)", "2010-12-06 (4/7 days)"]


def test_m5_monthly_in_order_shape_keeps_each_series_from_its_first_sale():
    """The m5-monthly-orders job's SQL source (run confined) against an independent query over the bundled file."""
    job = load_job("m5-monthly-orders")
    m5 = project_root() / "data" / "m5" / "m5_monthly_sales.parquet"
    con, _ = sources.connect_sources(job)
    try:
        got = con.execute(
            "SELECT warehouse, sku, min(day) AS first, count(*) AS n, sum(quantity) AS units, "
            "arg_min(quantity, day) AS first_units FROM raw_sales GROUP BY ALL ORDER BY ALL"
        ).pl()
    finally:
        con.close()
    with duckdb.connect() as plain:
        plain.execute("SET VARIABLE m5 = ?", [str(m5)])
        expected = plain.execute(
            "WITH s AS (SELECT store_id, item_id, month, sales, min(month) FILTER (WHERE sales > 0) "
            "OVER (PARTITION BY store_id, item_id) AS first FROM read_parquet(getvariable('m5'))) "
            "SELECT store_id AS warehouse, item_id AS sku, min(month) AS first, count(*) AS n, sum(sales) AS units, "
            "arg_min(sales, month) AS first_units FROM s WHERE month >= first GROUP BY ALL ORDER BY ALL"
        ).pl()
        padded = plain.execute("SELECT count(*), sum(sales) FROM read_parquet(getvariable('m5'))").fetchone()
    assert_frame_equal(got, expected, check_dtypes=False)
    assert got.height == 30_490 and (got["first_units"] > 0).all()  # every series starts with a sale
    assert got["units"].sum() == padded[1] and got["n"].sum() < padded[0]  # only zeros were dropped
    # most series were padded with zeros before their first sale: those months are gone
    assert got.filter(pl.col("first") > date(2011, 1, 1)).height > 20_000


def test_a_run_counts_each_rule_in_its_summary_and_manifest(job, tmp_path):
    """UK series of eight products through the whole run (the CLI): the summary printed and the manifest count
    what each rule removed, as the load does; the bottom LightGBM runs with the weekly price."""
    skus = ["85123A", "21232", "22423", "84879", "85099B", "21212", "20725", "84991"]
    models = {"aggregate_models": ["Naive", "AutoETS"], "bottom_models": ["Naive", "LightGBM"]}
    models |= {"intermittent_model": None, "lightgbm": {"lags": [1, 2, 4], "rolling_windows": [4], "n_estimators": 50}}
    data = job.model_dump(mode="json") | {
        "filters": {"country": ["United Kingdom"], "sku": skus},
        "horizon": 4,
        "models": models,
        "min_history": 2,
        "n_jobs": 1,
        "output_root": str(tmp_path / "outputs"),
    }
    path = tmp_path / "uk.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["run", "--job", str(path)])
    assert result.exit_code == 0, result.output
    small = JobSpec.model_validate(data)
    counted = pipeline.load(small).order_lines
    manifest = json.loads((small.output_dir() / "latest" / "manifest.json").read_text())
    assert manifest["summary"]["order_lines"] == counted
    assert counted["lines"] == sum(r["rows"] for r in counted["removed"]) + counted["lines_counted"]
    assert "LightGBM" in manifest["summary"]["models_run"]
    for rule in counted["removed"]:
        assert f"  {rule['rule']}: {rule['rows']:,} lines, {rule['quantity']:,.0f} units" in result.output
    published = pl.read_parquet(small.output_dir() / "latest" / "reconciled_forecasts.parquet")
    assert published.filter(pl.col("level") == "country_sku")["sku"].n_unique() == len(skus)
    result = CliRunner().invoke(app, ["report", "--job", str(path)])
    assert result.exit_code == 0, result.output
    page = (small.output_dir() / "latest" / "report.html").read_text()
    assert f"{counted['lines']:,} read, {counted['lines_counted']:,} counted" in page


def test_a_timestamp_column_of_the_wrong_type_is_one_error_naming_file_and_column(job):
    data = job.model_dump()
    data["source"]["sales"]["columns"]["date"] = "customer_id"
    with pytest.raises(DataQualityError) as error:
        pipeline.load(JobSpec.model_validate(data))
    [problem] = error.value.problems
    assert (problem.file, problem.column, problem.count) == (str(FILE), "customer_id", 525_461)
    assert problem.what == "column type BIGINT, expected a date or timestamp" and len(problem.examples) == 5
