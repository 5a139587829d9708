"""Checks on values, not statistics (issue 34, 4): a copy of a bundled parquet file with 200 bytes of a data page
overwritten (its footer, and so its min/max statistics, intact) reads 25 quantities as -2.5e-98. DuckDB answered
the gate's `quantity < 0` from the footer and published a changed forecast; now the gate reads the values. And the
other quantities that cannot be sales: NaN, infinity, beyond `source.max_quantity`, all zero."""

from __future__ import annotations

import shutil
import struct
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from support import TOURISM, tourism_slice

from forecasting.data.quality import DataQualityError
from forecasting.data.sources import SourceError
from forecasting.pipeline import load, run_job


def _on(tmp: Path, path: Path, **source):
    sales = tourism_slice(tmp).source.sales.model_dump() | {"path": str(path)}
    return tourism_slice(tmp, source={"sales": sales} | source)


def damaged_copy(tmp: Path) -> Path:
    """The bundled tourism file re-encoded without compression (so a data page holds plain doubles), then 200 bytes
    of the Trips page overwritten in place with 25 doubles of -2.5e-98: the footer is untouched."""
    plain = tmp / "tourism-plain.parquet"
    pq.write_table(pq.read_table(TOURISM), plain, compression="none", use_dictionary=False, write_statistics=True)
    trips = pq.read_table(plain).column("Trips").to_numpy()
    data = bytearray(plain.read_bytes())
    at = data.find(trips[1000:1025].astype("<f8").tobytes())  # rows 1000..1024 of the Trips page
    assert at > 0
    data[at : at + 200] = struct.pack("<25d", *([-2.5e-98] * 25))
    damaged = tmp / "tourism-damaged.parquet"
    damaged.write_bytes(bytes(data))
    assert pq.ParquetFile(damaged).metadata.row_group(0).column(4).statistics.min == 0  # the footer says >= 0
    return damaged


def test_a_damaged_data_page_is_found_by_its_values_not_hidden_by_the_footer(tmp_path):
    damaged = damaged_copy(tmp_path)
    pruned = duckdb.execute("SELECT count(*) FROM read_parquet(?) WHERE Trips < 0", [str(damaged)]).fetchone()[0]
    assert pruned == 0, "DuckDB's default plan answers from the footer: what the gate used to ask"
    state = pl.read_parquet(damaged).slice(1000, 25)["State"].unique().to_list()
    job = _on(tmp_path, damaged, observed_from=None).model_copy(update={"filters": {"state": state}})
    with pytest.raises(DataQualityError) as caught:
        run_job(job)
    message = str(caught.value)
    assert f"{damaged} [column Trips]: negative sales (25 rows)" in message and "-2.5e-98" in message
    assert not job.output_dir().exists()


def test_a_compressed_page_that_does_not_decompress_is_a_source_error(tmp_path):
    copy = tmp_path / "tourism.parquet"
    shutil.copy(TOURISM, copy)
    column = pq.ParquetFile(copy).metadata.row_group(0).column(4)
    data = bytearray(copy.read_bytes())
    middle = column.data_page_offset + column.total_compressed_size // 2
    data[middle : middle + 200] = bytes(range(200))
    copy.write_bytes(bytes(data))
    with pytest.raises(SourceError, match=f"{copy}: cannot be read: .*ZSTD Decompression failure"):
        load(_on(tmp_path, copy))


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (float("nan"), "values that are not finite (NaN or infinity) (4 rows)"),
        (float("inf"), "values that are not finite (NaN or infinity) (4 rows)"),
        (float("-inf"), "values that are not finite (NaN or infinity) (4 rows)"),
        (1e300, "values above source.max_quantity=1e+12 (4 rows)"),
        (-3.0, "negative sales (4 rows)"),
    ],
)
def test_quantities_that_cannot_be_sales_name_the_file_column_and_rows(tmp_path, value, what):
    rows = pl.read_parquet(TOURISM).filter(pl.col("State") == "Tasmania")
    bad = pl.col("Quarter").is_between(date(2010, 1, 1), date(2010, 12, 31)) & (
        pl.col("Region") == "Hobart and the South"
    )
    rows = rows.with_columns(
        pl.when(bad & (pl.col("Purpose") == "Holiday")).then(value).otherwise(pl.col("Trips")).alias("Trips")
    )
    path = tmp_path / "sales.parquet"
    rows.write_parquet(path)
    with pytest.raises(DataQualityError) as caught:
        load(_on(tmp_path, path))
    message = str(caught.value)
    assert f"{path} [column Trips]: {what}" in message and "'Hobart and the South', 'Holiday', 2010-01-01" in message


def test_a_stated_bound_is_the_job_files(tmp_path):
    rows = pl.read_parquet(TOURISM).filter(pl.col("State") == "Tasmania")
    path = tmp_path / "sales.parquet"
    rows.write_parquet(path)
    with pytest.raises(DataQualityError, match=r"values above source.max_quantity=100 \(\d+ rows\)"):
        load(_on(tmp_path, path, max_quantity=100.0))
    assert load(_on(tmp_path, path, max_quantity=5000.0)).history.height > 0


def test_all_series_zero_is_refused(tmp_path):
    path = tmp_path / "zero.parquet"
    pl.read_parquet(TOURISM).filter(pl.col("State") == "Tasmania").with_columns(
        pl.lit(0.0).alias("Trips")
    ).write_parquet(path)
    with pytest.raises(DataQualityError, match=r"\[column Trips\]: every quantity is 0: there is nothing to forecast"):
        load(_on(tmp_path, path))
