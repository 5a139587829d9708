"""The rest of the data-quality gate's cases (test_quality has the others): missing and unknown warehouse or region,
wrong column types, text that is not a number, and hostile text in SQL filter parameters. Each is one error naming
the file, the column and example rows, and the run writes nothing."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
from test_quality import ITEMS, assert_rejected, job_on

from forecasting.data.quality import DataQualityError
from forecasting.data.sources import SourceError
from forecasting.job.schema import JobSpec

HOSTILE = "CA_1'); DROP TABLE sales; --"


def test_missing_warehouse(clean_rows, tmp_path):
    rows = clean_rows.with_columns(
        pl.when(pl.col("month") == date(2013, 3, 1)).then(None).otherwise(pl.col("store_id")).alias("store_id")
    )
    assert_rejected(
        job_on(rows, tmp_path), DataQualityError, "sales.parquet", "[column store_id]: null values (3 rows)", ITEMS[0]
    )


def test_unknown_region_in_a_filter(clean_rows, tmp_path):
    job = job_on(clean_rows, tmp_path, filters={"region": ["CA", "ZZ"]})
    assert_rejected(job, DataQualityError, "sales.parquet", "[column state_id]", "region filter", "'ZZ'")


def test_quantity_as_text_that_is_not_a_number(clean_rows, tmp_path):
    rows = clean_rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 4)
        .then(pl.lit("twelve"))
        .otherwise(pl.col("sales").cast(pl.String))
        .alias("sales")
    )
    assert_rejected(
        job_on(rows, tmp_path), DataQualityError, "[column sales]: values that are not numbers (1 rows)", "'twelve'"
    )


def test_boolean_quantity_column(clean_rows, tmp_path):
    rows = clean_rows.with_columns((pl.col("sales") > 0).alias("sales"))
    assert_rejected(
        job_on(rows, tmp_path),
        DataQualityError,
        "sales.parquet",
        "[column sales]: column type BOOLEAN, expected a number",
    )


def test_integer_date_column(clean_rows, tmp_path):
    rows = clean_rows.with_columns(pl.col("month").dt.strftime("%Y%m%d").cast(pl.Int64).alias("month"))
    message = assert_rejected(
        job_on(rows, tmp_path), DataQualityError, "[column month]: column type BIGINT, expected a date", "20110101"
    )
    assert "values that are not dates" not in message  # one problem per fault, not one per row


def test_hostile_filter_value_is_data_not_sql(clean_rows, tmp_path):
    """The filter value is bound as a parameter: it matches nothing, is named in the error, and the database file
    it would have attacked is unchanged."""
    db = tmp_path / "sales.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE sales AS SELECT * FROM clean_rows")
    job = job_on(clean_rows, tmp_path, warehouse_filter=[HOSTILE])
    data = job.model_dump()
    data["source"]["sales"] |= {"path": str(db), "format": "duckdb", "table": "sales"}
    job = JobSpec.model_validate(data)
    assert_rejected(job, DataQualityError, "sales.duckdb:sales", "[column store_id]", "warehouse filter", repr(HOSTILE))
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sales").fetchone()[0] == clean_rows.height


def test_hostile_column_name_is_checked_not_run(clean_rows, tmp_path):
    job = job_on(clean_rows, tmp_path)
    data = job.model_dump()
    data["source"]["sales"]["columns"]["quantity"] = 'sales" FROM x; DROP TABLE sales; --'
    assert_rejected(
        JobSpec.model_validate(data), SourceError, "sales.parquet", "column(s) not in the file", "DROP TABLE"
    )


def test_filters_that_select_nothing(clean_rows, tmp_path):
    texas = clean_rows.filter(pl.col("item_id") == ITEMS[0]).with_columns(
        pl.lit("TX").alias("state_id"), pl.lit("TX_1").alias("store_id"), pl.lit("TX_item").alias("id")
    )
    rows = pl.concat([clean_rows, texas])
    job = job_on(rows, tmp_path, filters={"region": ["TX"]}, warehouse_filter=["CA_1"])
    assert_rejected(job, DataQualityError, "[column state_id, store_id]", "the filters select no rows")
