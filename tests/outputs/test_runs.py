from __future__ import annotations

import os
from datetime import date

import polars as pl
import pytest

from forecasting.job.loading import load_job
from forecasting.outputs.runs import publish_run, read_manifest, run_dir


@pytest.fixture
def job(tmp_path):
    return load_job().model_copy(update={"output_root": str(tmp_path)})


def _tables(value: float) -> dict[str, pl.DataFrame]:
    return {"staffing": pl.DataFrame({"warehouse": ["CA_1"], "headcount": [value]})}


def test_publish_links_as_of_and_latest(job):
    path = publish_run(job, date(2016, 4, 24), _tables(1), {"n": 1})
    assert path.is_symlink() and (path / "manifest.json").exists()
    assert run_dir(job) == path.resolve()
    assert read_manifest(run_dir(job))["n"] == 1
    assert not list(job.output_dir().glob(".runs/.staging-*"))


def test_rerun_replaces_the_run_and_removes_the_old_folder(job):
    publish_run(job, date(2016, 4, 24), _tables(1), {})
    first = run_dir(job)
    publish_run(job, date(2016, 4, 24), _tables(2), {})
    second = run_dir(job)
    assert first != second and not first.exists()
    assert pl.read_parquet(second / "staffing.parquet")["headcount"].item() == 2


def test_backfill_does_not_move_latest_back(job):
    publish_run(job, date(2016, 4, 24), _tables(1), {})
    publish_run(job, date(2016, 3, 31), _tables(2), {})
    assert os.readlink(job.output_dir() / "latest") == "2016-04-24"
    assert run_dir(job, "2016-03-31").exists()


def test_failed_write_leaves_the_previous_run(job):
    publish_run(job, date(2016, 4, 24), _tables(1), {})
    before = run_dir(job)

    class Unwritable(pl.DataFrame):
        def write_parquet(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        publish_run(job, date(2016, 4, 24), {"staffing": Unwritable({"a": [1]})}, {})
    assert run_dir(job) == before
    assert pl.read_parquet(before / "staffing.parquet")["headcount"].item() == 1
    assert not list(job.output_dir().glob(".runs/.staging-*"))


def test_no_run_is_a_clear_error(job):
    with pytest.raises(FileNotFoundError, match="no published latest run"):
        run_dir(job)


def test_a_table_given_in_parts_is_one_file_with_every_row(job):
    parts = [pl.DataFrame({"unique_id": [f"s{i}", f"s{i}"], "mean": [float(i), i + 0.5]}) for i in range(3)]
    path = publish_run(job, date(2016, 4, 24), {"base_forecasts": iter(parts)}, {"tables": {}})
    assert pl.read_parquet(path / "base_forecasts.parquet").equals(pl.concat(parts))
    assert read_manifest(path)["tables"] == {"base_forecasts": 6}
    assert not [p for p in path.iterdir() if p.name.startswith(".")]
