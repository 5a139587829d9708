"""Local vs Dask LightGBM (a script, not a test): `python -m benchmarks.dask_compare --items 40 400 3049`.

For each size, the m5-monthly job's SKU-level LightGBM on the first N items of store CA_1 (forecasts, conformal
intervals, in-sample fits): once on this machine with one thread, then three times on the Dask engine, each time on a
fresh distributed.LocalCluster (`--workers` processes, one thread each): twice as the engine trains by default (on one
worker) and once with `lightgbm_training: data_parallel`. Prints seconds, peak RSS of the process tree (the cluster's
workers included), the relative L1 distance sum|a - b| / sum|a| of the forecasts and of the in-sample fits (local vs
the first Dask run), the largest absolute forecast difference, the ratio of the summed 95 % interval widths, the
distance between the two default Dask runs, and the data-parallel run's distance from the local forecasts."""

from __future__ import annotations

import argparse
import time
import warnings

import duckdb
import polars as pl

from benchmarks.benchmark import TreeRSS
from forecasting import (
    models,  # FIXME
    pipeline,
)
from forecasting.data import features
from forecasting.job.common import project_root
from forecasting.job.engine import EngineSpec
from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec
from forecasting.models import engines
from forecasting.models.cluster import close_clients
from forecasting.models.inputs import model_inputs

STORE = "CA_1"


def sku_slice(n_items: int) -> tuple[JobSpec, pl.DataFrame, pl.DataFrame | None]:
    """The job on the store's first n items, its SKU series and their exogenous features."""
    sales = project_root() / "data" / "m5" / "m5_monthly_sales.parquet"
    items = duckdb.execute(
        "SELECT DISTINCT item_id FROM read_parquet(?) WHERE store_id = ? ORDER BY item_id LIMIT ?",
        [str(sales), STORE, n_items],
    ).fetchall()
    # One LightGBM thread on the client, as each worker has: OpenMP threads on shared cores wait on each other.
    job = load_job("m5-monthly", warehouse_filter=[STORE], sku_filter=[i for (i,) in items], n_jobs=1)
    loaded, hierarchy = pipeline.load_hierarchy(job)
    _, Y = model_inputs(hierarchy, job)  # as the nightly run fits them (closed days, trading days)
    members = hierarchy.members.filter(pl.col("unique_id").is_in(Y["unique_id"].unique().implode()))
    return job, Y, features.exogenous(members, loaded.prices, loaded.calendar, job, bottom=True)


def distance(a: pl.DataFrame, b: pl.DataFrame, column: str) -> float:
    joined = a.join(b, on=["unique_id", "ds"], suffix="_b")
    return float((joined[column] - joined[f"{column}_b"]).abs().sum() / joined[column].abs().sum())


def width_sum(frame: pl.DataFrame) -> float:
    return float(frame.select((pl.col("LightGBM-hi-95") - pl.col("LightGBM-lo-95")).sum()).item())


def largest_difference(a: pl.DataFrame, b: pl.DataFrame, column: str) -> float:
    joined = a.join(b, on=["unique_id", "ds"], suffix="_b")
    return float((joined[column] - joined[f"{column}_b"]).abs().max())


def on_fresh_cluster(
    Y: pl.DataFrame, job: JobSpec, exog: pl.DataFrame | None, workers: int, training: str = "one_worker"
) -> models.LevelForecast:
    import distributed

    with distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        engine = EngineSpec(kind="dask", scheduler=cluster.scheduler_address, lightgbm_training=training)
        try:
            return engines.lightgbm_forecast(Y, job.model_copy(update={"engine": engine}), exog=exog)
        finally:
            close_clients()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, nargs="+", default=[40, 400, 3049])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    header = (
        "items  rows     local s  dask s  peak MB  forecasts L1  fits L1  max |diff|  width95 ratio  dask rerun L1  "
        "data-parallel s  data-parallel L1"
    )
    print(header)
    with TreeRSS() as rss:
        for n_items in args.items:
            job, Y, exog = sku_slice(n_items)
            start = time.perf_counter()
            local = engines.lightgbm_forecast(Y, job, exog=exog)
            middle = time.perf_counter()
            dask = on_fresh_cluster(Y, job, exog, args.workers)
            end = time.perf_counter()
            again = on_fresh_cluster(Y, job, exog, args.workers)
            parallel_start = time.perf_counter()
            parallel = on_fresh_cluster(Y, job, exog, args.workers, training="data_parallel")
            parallel_end = time.perf_counter()
            print(
                f"{Y['unique_id'].n_unique():5d}  {Y.height:7d}  {middle - start:7.1f}  {end - middle:6.1f}  "
                f"{rss.peak_mb(start, time.perf_counter()):7.0f}  "
                f"{distance(local.forecasts, dask.forecasts, 'LightGBM'):12.3g}  "
                f"{distance(local.fitted, dask.fitted, 'LightGBM'):7.3g}  "
                f"{largest_difference(local.forecasts, dask.forecasts, 'LightGBM'):10.3g}  "
                f"{width_sum(dask.forecasts) / width_sum(local.forecasts):13.6f}  "
                f"{distance(dask.forecasts, again.forecasts, 'LightGBM'):13.3g}  "
                f"{parallel_end - parallel_start:15.1f}  "
                f"{distance(local.forecasts, parallel.forecasts, 'LightGBM'):16.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
