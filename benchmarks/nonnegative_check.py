"""How different are the two non-negative reconciliations (a script, not a test)?

    python -m benchmarks.nonnegative_check --job m5-monthly
    python -m benchmarks.nonnegative_check --bench-series 10000

Runs a job's stages up to the base forecasts once, then reconciles MinTrace (the job's variant, sparse S) with
`reconciliation.nonnegative: qp` (hierarchicalforecast's QP: the optimal non-negative coherent forecast) and with
`clip` (reconcile unconstrained; if a bottom value is negative, clip the bottom level and sum it up), and prints per
level how far apart the reconciled means are, with the seconds each took. `--bench-series N` uses the scale
benchmark's synthetic job on N series x 104 weeks.
"""

from __future__ import annotations

import argparse
import time
import warnings

import polars as pl

from forecasting import pipeline
from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec


def reconciled_means(job: JobSpec, hierarchy, base, nonnegative: str | bool) -> tuple[pl.DataFrame, float]:
    """MinTrace's reconciled means (unique_id, ds, mean) with `nonnegative`, and the seconds reconcile took."""
    spec = job.reconciliation.model_copy(update={"methods": ["MinTrace"], "nonnegative": nonnegative})
    run = job.model_copy(update={"reconciliation": spec})
    start = time.perf_counter()
    out = pipeline.reconcile(hierarchy, base, run)
    return out.select("unique_id", "ds", "mean"), time.perf_counter() - start


def compare(job: JobSpec) -> pl.DataFrame:
    """Per level: series, the largest absolute difference between qp and clip, the total absolute difference
    relative to the level's total qp forecast, and the share of series whose forecast differs by more than 0.01."""
    loaded = pipeline.load(job)
    hierarchy = pipeline.aggregate(pipeline.validate(loaded, job), job)
    base = pipeline.base_forecasts(hierarchy, loaded.prices, job, loaded.calendar)
    results = {method: reconciled_means(job, hierarchy, base, method) for method in ("qp", "clip", False)}
    for method, (means, seconds) in results.items():
        print(f"nonnegative={method}: reconcile {seconds:.1f} s, lowest mean {means['mean'].min():.4f}")
    joined = (
        results["qp"][0]
        .join(results["clip"][0], on=["unique_id", "ds"], suffix="_clip")
        .join(hierarchy.members.select("unique_id", "level"), on="unique_id")
        .with_columns((pl.col("mean_clip") - pl.col("mean")).abs().alias("diff"))
    )
    per_series = joined.group_by("level", "unique_id").agg(pl.col("diff").max())
    return (
        joined.group_by("level")
        .agg(
            pl.col("unique_id").n_unique().alias("series"),
            pl.col("diff").max().alias("max_abs_diff"),
            (pl.col("diff").sum() / pl.col("mean").abs().sum()).alias("relative_abs_diff"),
        )
        .join(
            per_series.group_by("level").agg((pl.col("diff") > 0.01).mean().alias("share_of_series_changed")),
            on="level",
        )
        .sort("series")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", default="m5-monthly")
    parser.add_argument("--bench-series", type=int, default=0, help="the scale benchmark's job on N series instead")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.bench_series:
        from benchmarks.scale_benchmark import bench_job, ensure_data

        folder = ensure_data(args.bench_series, 104)
        engine = {"kind": "local", "scheduler": None, "partitions": None}
        job = bench_job(folder, args.bench_series, 104, False, 2, engine)
    else:
        job = load_job(args.job)
    with pl.Config(tbl_rows=20, tbl_cols=10, float_precision=6):
        print(compare(job))


if __name__ == "__main__":
    main()
