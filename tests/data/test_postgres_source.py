"""The sales history read from a real PostgreSQL server through DuckDB's postgres extension (from the
duckdb-ext-postgres wheel, loaded with autoinstall off). Marked `services`: run by `pytest -m services` (.ci/run
does, after installing PostgreSQL); without a server binary each test fails saying why (support.unavailable)."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from live_postgres import LivePostgres, why_not_available
from support import M5_MONTHLY, first_items, slice_job, unavailable

from forecasting.data.quality import DataQualityError
from forecasting.data.sources import SourceError, load_postgres_extension
from forecasting.job.schema import JobSpec
from forecasting.outputs.runs import read_manifest
from forecasting.pipeline import run_job

pytestmark = pytest.mark.services

ITEMS = first_items("CA_1", 10)


@pytest.fixture(scope="module")
def pg():
    reason = why_not_available()
    if reason is not None:
        unavailable(reason)
    server = LivePostgres()
    try:
        server.start()
        con = duckdb.connect()
        load_postgres_extension(con)
        con.execute(f"ATTACH '{server.dsn}' AS pg (TYPE postgres)")
        rows = "SELECT * FROM read_parquet(?) WHERE store_id = 'CA_1' AND list_contains(?, item_id)"
        con.execute(f"CREATE TABLE pg.public.sales AS {rows}", [str(M5_MONTHLY), ITEMS])
        con.execute(f"CREATE TABLE pg.public.sales_bad AS {rows}", [str(M5_MONTHLY), ITEMS])
        con.execute(
            "UPDATE pg.public.sales_bad SET sales = -5 WHERE item_id = ? AND month = DATE '2014-06-01'", [ITEMS[3]]
        )
        con.close()
        yield server
    finally:
        server.stop()


def on_postgres(job: JobSpec, server: LivePostgres, table: str) -> JobSpec:
    data = job.model_dump()
    data["source"]["sales"] |= {"path": server.dsn, "format": "postgres", "table": table}
    return JobSpec.model_validate(data)


def test_postgres_table_gives_the_same_forecasts_as_the_parquet_file(pg, tmp_path):
    from_file = run_job(slice_job(tmp_path / "file", stores=("CA_1",), n_items=10))
    job = on_postgres(slice_job(tmp_path / "pg", stores=("CA_1",), n_items=10), pg, "sales")
    from_pg = run_job(job)
    for table in ("base_forecasts", "reconciled_forecasts", "staffing"):
        a = pl.read_parquet(from_file.run_dir / f"{table}.parquet")
        b = pl.read_parquet(from_pg.run_dir / f"{table}.parquet")
        assert a.height > 0 and a.equals(b), table
    hashes = read_manifest(from_pg.run_dir)["inputs_sha256"]
    [label] = [k for k in hashes if k.startswith("postgres")]
    assert f"port={pg.port}" in label and label.endswith("public.sales")


def test_postgres_rows_go_through_the_quality_gate(pg, tmp_path):
    job = on_postgres(slice_job(tmp_path, stores=("CA_1",), n_items=10), pg, "sales_bad")
    with pytest.raises(DataQualityError) as caught:
        run_job(job)
    message = str(caught.value)
    for fragment in ("postgres [host=127.0.0.1", "public.sales_bad", "[column sales]", "negative sales (1 rows)"):
        assert fragment in message, message
    assert ITEMS[3] in message and not job.output_dir().exists()


def test_a_missing_postgres_table_is_a_source_error(pg, tmp_path):
    job = on_postgres(slice_job(tmp_path, stores=("CA_1",), n_items=10), pg, "no_such_table")
    with pytest.raises(SourceError, match="public.no_such_table: cannot read"):
        run_job(job)
