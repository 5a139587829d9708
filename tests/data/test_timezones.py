"""Time zones stated, never the host's (issue 34, 2): quarterly tourism data with midnight-Sydney timestamps, as a
parquet TIMESTAMP WITH TIME ZONE and as CSV text with +10:00 offsets, run in real processes under TZ=UTC and
TZ=Australia/Sydney, gives byte-identical outputs, equal to the run on the bundled file's plain dates. On a UTC host
the same data used to move one quarter early."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from support import TOURISM, tourism_slice

from forecasting.data.quality import DataQualityError
from forecasting.job.errors import InputError
from forecasting.job.schema import JobSpec
from forecasting.pipeline import load, run_job

TABLES = ("base_forecasts.parquet", "reconciled_forecasts.parquet", "staffing.parquet")

RUNS = """
import sys, warnings
from pathlib import Path
from forecasting.job.schema import JobSpec
from forecasting.pipeline import run_job
if __name__ == "__main__":
    warnings.simplefilter("ignore")
    for path in sys.argv[1:]:
        run_job(JobSpec.model_validate_json(Path(path).read_text()))
"""


@pytest.fixture(scope="module")
def sydney(tmp_path_factory) -> Path:
    """Tasmania's 20 real series with their quarters as midnight in Sydney, written three ways."""
    folder = tmp_path_factory.mktemp("sydney")
    rows = pl.read_parquet(TOURISM).filter(pl.col("State") == "Tasmania")
    midnight = pl.col("Quarter").cast(pl.Datetime("us"))
    zoned = rows.with_columns(midnight.dt.replace_time_zone("Australia/Sydney"))
    zoned.write_parquet(folder / "zoned.parquet")  # TIMESTAMP WITH TIME ZONE, the zone named in arrow's metadata
    zoned.with_columns(pl.col("Quarter").dt.convert_time_zone("UTC")).write_parquet(folder / "utc.parquet")
    rows.with_columns(midnight.dt.strftime("%Y-%m-%dT%H:%M:%S+10:00")).write_csv(folder / "offset.csv")
    return folder


def _job(tmp: Path, name: str, path: Path, fmt: str = "parquet", **source) -> JobSpec:
    return tourism_slice(tmp, name=name, source={"sales": {**_sales(), "path": str(path), "format": fmt}} | source)


def _sales() -> dict:
    return tourism_slice(Path("/unused")).source.sales.model_dump()


def test_the_same_job_under_two_host_time_zones_gives_byte_identical_outputs(sydney, tmp_path):
    jobs = {
        "zoned": _job(tmp_path, "zoned", sydney / "zoned.parquet"),
        "offset": _job(tmp_path, "offset", sydney / "offset.csv", "csv"),
        "stated": _job(tmp_path, "stated", sydney / "utc.parquet", timezone="Australia/Sydney"),
    }
    files = []
    for name, job in jobs.items():
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(job.model_dump_json())
    outputs = {}
    for zone in ("UTC", "Australia/Sydney"):
        root = tmp_path / zone.replace("/", "-")
        for path in files:  # each host writes under its own root
            job = JobSpec.model_validate_json(path.read_text())
            path.write_text(job.model_copy(update={"output_root": str(root)}).model_dump_json())
        done = subprocess.run(
            [sys.executable, "-c", RUNS, *map(str, files)],
            env=os.environ | {"TZ": zone},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        for name in jobs:
            outputs[zone, name] = {t: (root / name / "latest" / t).read_bytes() for t in TABLES}
    baseline = run_job(tourism_slice(tmp_path))  # the bundled file's plain dates, in this process
    expected = {t: (baseline.run_dir / t).read_bytes() for t in TABLES}
    for key, tables in outputs.items():
        assert tables == expected, key
    first = pl.read_parquet(baseline.run_dir / "reconciled_forecasts.parquet")["ds"].min()
    assert first.isoformat() == "2018-01-01" and baseline.as_of.isoformat() == "2017-12-31"


def test_instants_read_in_the_wrong_zone_are_refused_not_shifted(sydney, tmp_path):
    """The same instants stored in UTC with no zone stated: their UTC days fall a day (a quarter) early, which the
    gate refuses against observed_from, pointing at source.timezone."""
    job = _job(tmp_path, "utc", sydney / "utc.parquet")
    with pytest.raises(DataQualityError) as caught:
        run_job(job)
    message = str(caught.value)
    assert "utc.parquet [column Quarter]: dates before 1998-01-01, the first quarter of source.observed_from" in message
    assert "state the data's as source.timezone (20 rows)" in message and "1997-12-31" in message
    assert not job.output_dir().exists()


def test_a_zoned_column_whose_zone_nobody_states_is_refused(tmp_path):
    """A DuckDB TIMESTAMPTZ holds instants, not a zone: its days would depend on one nobody chose."""
    database = tmp_path / "sales.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            "CREATE TABLE sales AS SELECT * REPLACE (CAST(Quarter AS TIMESTAMPTZ) AS Quarter) FROM read_parquet(?) "
            "WHERE State = 'Tasmania'",
            [str(TOURISM)],
        )
    sales = _sales() | {"path": str(database), "format": "duckdb", "table": "sales"}
    job = tourism_slice(tmp_path, source={"sales": sales})
    with pytest.raises(InputError, match="holds timestamps with a time zone, but neither the file nor the job says"):
        load(job)
    stated = tourism_slice(tmp_path, source={"sales": sales, "timezone": "UTC"})
    assert load(stated).history["ds"].max().isoformat() == "2017-10-01"


def test_an_unknown_time_zone_is_refused_by_the_schema(tmp_path):
    from forecasting.job.loading import JobConfigError, parse_job

    data = tourism_slice(tmp_path).model_dump()
    data["source"]["timezone"] = "+10:00"
    with pytest.raises(JobConfigError, match="timezone '\\+10:00' is not an IANA time zone name"):
        parse_job(data)
