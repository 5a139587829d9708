"""The same sales-history query over parquet, CSV and a table in a DuckDB database file gives the same rows."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from support import M5_MONTHLY, slice_job

from forecasting.data import sources as io
from forecasting.job.schema import JobSpec

AS_OF = date(2016, 4, 24)


def _history(job: JobSpec) -> pl.DataFrame:
    con, _ = io.connect_sources(job)
    try:
        return io.read_history(con, job, AS_OF, io.coverage(con, job))
    finally:
        con.close()


def _with_sales(job: JobSpec, **sales) -> JobSpec:
    data = job.model_dump()
    data["source"]["sales"] = data["source"]["sales"] | sales
    return JobSpec.model_validate(data)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    return slice_job(tmp_path_factory.mktemp("io"))


def test_history_is_one_row_per_series_and_month(job):
    history = _history(job)
    assert history.select("sku", "warehouse", "ds").is_duplicated().sum() == 0
    assert set(history["warehouse"]) == {"CA_1", "TX_1"}
    assert history.height == 2 * 40 * 64  # 64 months Jan-2011 .. Apr-2016, partial ones flagged, not yet dropped
    first = history.filter(pl.col("ds") == date(2011, 1, 1)).row(0, named=True)
    last = history.filter(pl.col("ds") == date(2016, 4, 1)).row(0, named=True)
    assert (first["days_observed"], first["days_in_period"]) == (3, 31)
    assert (last["days_observed"], last["days_in_period"]) == (24, 30)


def test_history_matches_a_direct_sum_of_the_file(job):
    history = _history(job)
    direct = duckdb.execute(
        "SELECT sum(sales) FROM read_parquet(?) WHERE store_id IN ('CA_1', 'TX_1') AND list_contains(?, item_id)",
        [str(M5_MONTHLY), job.sku_filter],
    ).fetchone()[0]
    assert history["y"].sum() == direct


def test_parquet_csv_and_duckdb_table_agree(job, tmp_path):
    rows = duckdb.execute(
        "SELECT * FROM read_parquet(?) WHERE store_id IN ('CA_1', 'TX_1') AND list_contains(?, item_id)",
        [str(M5_MONTHLY), job.sku_filter],
    ).pl()
    csv_path = tmp_path / "sales.csv"
    db_path = tmp_path / "sales.duckdb"
    rows.write_csv(csv_path)
    with duckdb.connect(str(db_path)) as con:
        con.register("rows", rows)
        con.execute("CREATE TABLE monthly_sales AS SELECT * FROM rows")
    expected = _history(job)
    from_csv = _history(_with_sales(job, path=str(csv_path), format="csv"))
    from_db = _history(_with_sales(job, path=str(db_path), format="duckdb", table="monthly_sales"))
    assert_frame_equal(from_csv, expected)
    assert_frame_equal(from_db, expected)


def test_filter_values_are_bound_not_formatted(job):
    hostile = job.model_copy(update={"sku_filter": ["x') OR 1=1 --", "FOODS_1_001"]})
    history = _history(hostile)
    assert set(history["sku"]) <= {"FOODS_1_001"}


def test_prices_cover_the_forecast_horizon(job):
    con, _ = io.connect_sources(job)
    prices = io.read_prices(con, job)
    assert prices["ds"].max() >= date(2016, 6, 1)
    assert prices["price"].min() > 0
