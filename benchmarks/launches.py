"""New products in order-shaped data (issue 35): `python -m benchmarks.launches [--origins 6]`.

M5 monthly as an order system would give it: each SKU x store series' rows from its first sale on (the bundled
data/m5 monthly file with the rows before each series' first sale removed, in DuckDB). The m5-monthly job runs on it
at each origin (as-of dates 3 months apart), and the same job on the zero-padded file beside it. Scored on the next
3 months (actuals from the bundled file):

- new series (first sale in the 24 months up to the origin), by age 1-3, 4-12, 13-24 months: WAPE and RMSSE of the
  published SKU forecast, vs the padded run's and vs a department x warehouse launch-curve baseline (the same rule
  as forecasting.models.young with department x store as the peer group); their 80 / 95 % interval coverage;
- established series: WRMSSE per level (unit-sales weights of the 3 months before the origin), order-shaped vs padded;
- time and peak RSS (process tree) of each order-shaped run;
- the launch model serving the new series at each origin, chosen (forecasting.evaluate.plan.choose_launch, the
  clearly-better rule) from the launch models' scores at the earlier origins only: origins are 3 months apart, so each
  earlier origin is a backtest window whose actuals were known; each launch model's own base forecast is scored too;
- the new series' published intervals with a factor per interval level chosen from the earlier origins' published
  new-series errors only (forecasting.evaluate.plan.interval_scales, as a nested backtest chooses the per-level
  factors), and their coverage beside the unscaled one.

Prints one table per measure. Writes nothing into the source tree (temp folder).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from benchmarks.benchmark import TreeRSS
from forecasting.evaluate import plan as plans
from forecasting.evaluate.metrics import m5_rmsse_scale, rmsse_per_series
from forecasting.job.common import project_root
from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec
from forecasting.models import young
from forecasting.pipeline import run_job

MONTHLY = "data/m5/m5_monthly_sales.parquet"
AGES = [("1-3", 1, 3), ("4-12", 4, 12), ("13-24", 13, 24)]
LEVELS = ["total", "region", "warehouse", "sku"]


def order_shape(source: Path, target: Path) -> int:
    """The monthly file without each series' rows before its first sale; returns the rows removed."""
    con = duckdb.connect()
    sales = con.read_parquet(str(source))  # a relation: the path is never formatted into SQL
    shaped = sales.query(
        "sales",
        "SELECT * FROM sales QUALIFY month >= min(month) FILTER (WHERE sales > 0) "
        "OVER (PARTITION BY item_id, store_id) ORDER BY item_id, store_id, month",
    )
    removed = sales.count("*").fetchone()[0] - shaped.count("*").fetchone()[0]
    shaped.write_parquet(str(target))
    con.close()
    return removed


def job_on(path: Path, out: Path, name: str) -> JobSpec:
    base = load_job("m5-monthly")
    sales = base.source.sales.model_copy(update={"path": str(path)})
    return base.model_copy(
        update={
            "name": name,
            "source": base.source.model_copy(update={"sales": sales}),
            "zero_fill_gaps": True,
            "output_root": str(out),
        }
    )


def origins(count: int) -> list[date]:
    """As-of dates (first day of the month after the last history month), 3 months apart, the last one leaving 3
    months of actuals before the file's last complete month (2016-03)."""
    last = date(2016, 1, 1)  # history to 2015-12, actuals 2016-01..03
    out = []
    for k in range(count):
        months = last.year * 12 + last.month - 1 - 3 * k
        out.append(date(months // 12, months % 12 + 1, 1))
    return sorted(out)


@dataclass
class OriginResult:
    as_of: date
    seconds: float
    peak_mb: float
    rows: pl.DataFrame  # scores per group
    wrmsse: pl.DataFrame  # level, order, padded
    young_models: dict[str, int]
    launch_scores: pl.DataFrame  # level, model, cutoff, rmsse: each launch model's base forecast of the new series
    new_rows: pl.DataFrame  # the published rows of the new series, with actuals (for the next origins' factors)
    launch: str = ""  # the launch model the run was given (chosen from the earlier origins)


def published(run_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(run_dir / "reconciled_forecasts.parquet").filter(pl.col("published"))


def months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def history_frame(monthly: pl.DataFrame) -> pl.DataFrame:
    """sku-level rows unique_id, ds, y of the padded file, complete months (Feb-2011 .. Mar-2016), with dept."""
    return monthly.filter(pl.col("month").is_between(date(2011, 2, 1), date(2016, 3, 1))).select(
        pl.concat_str(["state_id", "store_id", "item_id"], separator="/").alias("unique_id"),
        "dept_id",
        "store_id",
        "state_id",
        pl.col("month").alias("ds"),
        pl.col("sales").cast(pl.Float64).alias("y"),
    )


def level_frames(sku: pl.DataFrame) -> pl.DataFrame:
    """All levels' rows (unique_id, level, ds, y) summed from the sku rows."""
    total = sku.group_by("ds").agg(pl.col("y").sum()).select(pl.lit("total").alias("unique_id"), "ds", "y")
    region = sku.group_by("state_id", "ds").agg(pl.col("y").sum())
    region = region.select(pl.concat_str([pl.lit("total"), "state_id"], separator="/").alias("unique_id"), "ds", "y")
    store = sku.group_by("state_id", "store_id", "ds").agg(pl.col("y").sum())
    store = store.select(
        pl.concat_str([pl.lit("total"), "state_id", "store_id"], separator="/").alias("unique_id"), "ds", "y"
    )
    bottom = sku.select(pl.concat_str([pl.lit("total"), "unique_id"], separator="/").alias("unique_id"), "ds", "y")
    parts = [("total", total), ("region", region), ("warehouse", store), ("sku", bottom)]
    return pl.concat([p.with_columns(pl.lit(lv).alias("level")) for lv, p in parts])


def baseline_curve(order_sku: pl.DataFrame, new: pl.DataFrame, job: JobSpec) -> pl.DataFrame:
    """The department x warehouse launch-curve forecast of the new series (unique_id with the total/ prefix)."""
    Y = order_sku.select(pl.concat_str([pl.lit("total"), "unique_id"], separator="/").alias("unique_id"), "ds", "y")
    groups = order_sku.select(
        pl.concat_str([pl.lit("total"), "unique_id"], separator="/").alias("unique_id"),
        pl.concat_str(["dept_id", "store_id"], separator="/").alias("group"),
    ).unique()
    targets = new.select("unique_id", pl.lit(young.LAUNCH).alias("model"))
    fc = young.launch_forecast(Y, targets, groups, job, 24).forecasts
    return fc.select("unique_id", "ds", pl.coalesce(young.LAUNCH, young.FLAT).alias("mean"))


def age_rows(joined: pl.DataFrame, scale: pl.DataFrame, as_of: date, forecast: str) -> list[dict]:
    """Per age group of the new series in `joined` (unique_id, ds, mean, y, age): the sums that WAPE and the mean
    RMSSE are pooled from over the origins (one shared scorer for the published runs and the launch models alone)."""
    rmsse = rmsse_per_series(joined.select("unique_id", "ds", "mean"), joined, scale, ["mean"])
    rmsse = rmsse.filter(pl.col("rmsse").is_finite())
    rows = []
    for label, lo, hi in AGES:
        part = joined.filter(pl.col("age").is_between(lo, hi))
        ids = part["unique_id"].unique().implode()
        rows.append(
            {
                "as_of": as_of,
                "ages": label,
                "forecast": forecast,
                "series": part["unique_id"].n_unique(),
                "abs_error": float((part["y"] - part["mean"]).abs().sum()),
                "actual": float(part["y"].sum()),
                "rmsse_sum": float(rmsse.filter(pl.col("unique_id").is_in(ids))["rmsse"].sum()),
                "rmsse_n": rmsse.filter(pl.col("unique_id").is_in(ids)).height,
            }
        )
    return rows


def score_origin(
    as_of: date,
    order_run: Path,
    padded_run: Path,
    sku: pl.DataFrame,
    job: JobSpec,
    earlier_new: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int], pl.DataFrame, pl.DataFrame]:
    last = date(as_of.year - (as_of.month == 1), (as_of.month - 2) % 12 + 1, 1)  # the last history month
    future = sku.filter(pl.col("ds") > last).group_by("unique_id").agg(pl.col("ds").sort().head(3)).explode("ds")
    first_sale = sku.filter(pl.col("y") > 0).group_by("unique_id").agg(pl.col("ds").min().alias("first"))
    first_sale = first_sale.filter(pl.col("first") <= last).with_columns(
        pl.col("first").map_elements(lambda d: months_between(d, last) + 1, return_dtype=pl.Int64).alias("age")
    )
    prefixed = pl.concat_str([pl.lit("total"), "unique_id"], separator="/")
    new = first_sale.filter(pl.col("age") <= 24).select(prefixed.alias("unique_id"), "age")
    established = first_sale.filter(pl.col("age") > 24).select(prefixed.alias("unique_id"))
    levels = level_frames(sku)
    actuals = levels.join(future.select("ds").unique(), on="ds")
    history = levels.filter(pl.col("ds") <= last)
    order_pub, padded_pub = published(order_run), published(padded_run)
    order_sku_hist = (
        sku.filter(pl.col("ds") <= last)
        .join(first_sale.select("unique_id", "first"), on="unique_id")
        .filter(pl.col("ds") >= pl.col("first"))
    )
    curve = baseline_curve(order_sku_hist, new, job)
    base = pl.read_parquet(order_run / "base_forecasts.parquet").filter(pl.col("level") == "sku")
    with_padded = padded_run != order_run
    candidates = {
        "order-shaped run": order_pub.select("unique_id", "ds", "mean"),
        **({"padded run": padded_pub.select("unique_id", "ds", "mean")} if with_padded else {}),
        "dept x store curve": curve,
    } | {
        f"{m} (base)": base.filter(pl.col("model") == m).select("unique_id", "ds", "mean")
        for m in young.CHOSEN
        if m in base["model"].unique().to_list()
    }
    scale = m5_rmsse_scale(history.select("unique_id", "ds", "y"))
    rows = []
    for name, fc in candidates.items():
        joined = new.join(fc, on="unique_id").join(actuals.select("unique_id", "ds", "y"), on=["unique_id", "ds"])
        rows.extend(age_rows(joined, scale, as_of, name))
    cover = new.join(order_pub, on="unique_id").join(actuals.select("unique_id", "ds", "y"), on=["unique_id", "ds"])
    # Factors on the new series' published half-widths, chosen from the earlier origins' published new-series
    # rows only (none at the first origin: factor 1).
    scales = plans.interval_scales(earlier_new, job.levels) if earlier_new is not None else {}
    calibrated = plans.apply_interval_scales(cover.with_columns(pl.lit("sku").alias("level")), scales, job.levels)
    for kind, frame in [("coverage", cover), ("coverage, calibrated", calibrated)]:
        for label, lo, hi in [*AGES, ("all new", 1, 24)]:
            part = frame.filter(pl.col("age").is_between(lo, hi))
            rows.append(
                {
                    "as_of": as_of,
                    "ages": label,
                    "forecast": kind,
                    "series": part["unique_id"].n_unique(),
                    "in_80": int(part.select(pl.col("y").is_between(pl.col("lo_80"), pl.col("hi_80")).sum()).item()),
                    "in_95": int(part.select(pl.col("y").is_between(pl.col("lo_95"), pl.col("hi_95")).sum()).item()),
                    "points": part.height,
                    "factor_80": scales.get("sku", {}).get("80", 1.0),
                    "factor_95": scales.get("sku", {}).get("95", 1.0),
                }
            )
    # Each launch model's base forecast of the new series the run routed to them: the next origins' choice reads it.
    routed_ids = base.filter(pl.col("model") == young.FLAT)["unique_id"].unique().implode()  # only new series
    launch_scores = []
    for m in young.CHOSEN:
        fc = base.filter((pl.col("model") == m) & pl.col("unique_id").is_in(routed_ids))
        joined = fc.join(actuals.select("unique_id", "ds", "y"), on=["unique_id", "ds"])
        if joined.is_empty():
            continue
        rmsse = rmsse_per_series(joined.select("unique_id", "ds", "mean"), joined, scale, ["mean"])
        mean = rmsse.filter(pl.col("rmsse").is_finite())["rmsse"].mean()
        launch_scores.append({"level": "sku", "model": m, "cutoff": as_of, "rmsse": mean})
    new_rows = cover.select("unique_id", "ds", "y", "mean", *[f"{s}_{lv}" for lv in job.levels for s in ("lo", "hi")])
    new_rows = new_rows.with_columns(pl.lit("sku").alias("level"))
    # Established: WRMSSE per level, unit-sales weights of the 3 months before the origin.
    keep = pl.col("level").ne("sku") | pl.col("unique_id").is_in(established["unique_id"].implode())
    recent = history.filter(pl.col("ds") > pl.lit(last).dt.offset_by("-3mo")).filter(keep)
    weights = recent.group_by("unique_id", "level").agg(pl.col("y").sum().alias("w"))
    weights = weights.with_columns(pl.col("w") / pl.col("w").sum().over("level"))
    wr = []
    for name, pub in [("order", order_pub), ("padded", padded_pub)]:
        fc = pub.join(weights.select("unique_id"), on="unique_id").select("unique_id", "ds", "mean")
        joined = fc.join(actuals.select("unique_id", "ds", "y"), on=["unique_id", "ds"])
        rmsse = rmsse_per_series(joined.select("unique_id", "ds", "mean"), joined, scale, ["mean"])
        per_level = (
            weights.join(rmsse, on="unique_id")
            .group_by("level")
            .agg((pl.col("w") * pl.col("rmsse").fill_nan(0)).sum().alias(name))
        )
        wr.append(per_level)
    wrmsse = wr[0].join(wr[1], on="level").with_columns(as_of=pl.lit(as_of))
    if not with_padded:
        wrmsse = wrmsse.with_columns(pl.lit(None, dtype=pl.Float64).alias("padded"))
    served = (
        order_pub.filter(pl.col("level") == "sku")
        .join(new, on="unique_id")
        .group_by("model")
        .agg(pl.col("unique_id").n_unique())
    )
    return (
        pl.DataFrame(rows, infer_schema_length=None),
        wrmsse,
        dict(served.rows()),
        pl.DataFrame(
            launch_scores, schema={"level": pl.String, "model": pl.String, "cutoff": pl.Date, "rmsse": pl.Float64}
        ),
        new_rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--origins", type=int, default=6)
    parser.add_argument("--skip", type=int, default=0, help="leave out the newest N origins (run them elsewhere)")
    parser.add_argument(
        "--no-padded",
        action="store_true",
        help="leave out the zero-padded runs (half the time; the padded data has no new series, so its runs do not "
        "depend on the launch models: their figures from an earlier run of this script stand)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    source = project_root() / MONTHLY
    monthly = pl.read_parquet(source)
    sku = history_frame(monthly)
    results: list[OriginResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shaped = folder / "m5_monthly_orders.parquet"
        removed = order_shape(source, shaped)
        print(f"order shape: {removed:,} leading rows removed from {monthly.height:,}")
        order_job = job_on(shaped, folder / "out", "m5-monthly-orders")
        padded_job = job_on(source, folder / "out", "m5-monthly-padded")
        # Oldest first: each origin's launch model and new-series interval factors come from the earlier origins.
        for as_of in origins(args.origins)[: args.origins - args.skip]:
            earlier = [r.as_of for r in results]
            scores = pl.concat([r.launch_scores for r in results]) if results else None
            chosen, why = plans.choose_launch(scores, earlier, order_job) if scores is not None else ({}, [])
            launch = chosen.get("sku", order_job.models.launch_model)
            models = order_job.models.model_copy(update={"launch_model": launch})
            with TreeRSS() as sampler:
                start = time.perf_counter()
                order = run_job(order_job.model_copy(update={"models": models}), as_of)
                end = time.perf_counter()
            padded = order if args.no_padded else run_job(padded_job, as_of)
            earlier_new = pl.concat([r.new_rows for r in results]) if results else None
            scored, wrmsse, served, launch_scores, new_rows = score_origin(
                as_of, order.run_dir, padded.run_dir, sku, order_job, earlier_new
            )
            peak = sampler.peak_mb(start, end)
            results.append(
                OriginResult(as_of, end - start, peak, scored, wrmsse, served, launch_scores, new_rows, launch)
            )
            print(
                f"origin {as_of}: launch model {launch} ({'; '.join(why) or 'no earlier origin'}); order-shaped run "
                f"{end - start:.0f} s, {peak:.0f} MB; new series served by {served}; summary new_series "
                f"{order.summary.get('new_series')}; launch scores {launch_scores.rows()}",
                flush=True,
            )
            report(results)  # after every origin: the pooled figures so far


def pooled_accuracy(rows: pl.DataFrame) -> pl.DataFrame:
    """WAPE and mean RMSSE per age group and forecast, pooled over the origins' age_rows (coverage rows left out)."""
    return (
        rows.filter(~pl.col("forecast").str.starts_with("coverage"))
        .group_by("ages", "forecast")
        .agg(
            (pl.col("abs_error").sum() / pl.col("actual").sum()).alias("WAPE"),
            (pl.col("rmsse_sum").sum() / pl.col("rmsse_n").sum()).alias("RMSSE"),
            pl.col("series").sum().alias("n"),
        )
        .sort("ages", "forecast")
    )


def report(results: list[OriginResult]) -> None:
    rows = pl.concat([r.rows for r in results], how="diagonal_relaxed")
    acc = pooled_accuracy(rows).rename({"n": "series x origins"})
    print("\nNew series (first sale in the 24 months up to each origin), next 3 months, pooled over origins:")
    print("| ages (months) | forecast | series x origins | WAPE | RMSSE |")
    print("|---|---|---|---|---|")
    for r in acc.iter_rows(named=True):
        print(f"| {r['ages']} | {r['forecast']} | {r['series x origins']} | {r['WAPE']:.3f} | {r['RMSSE']:.3f} |")
    cov = (
        rows.filter(pl.col("forecast").str.starts_with("coverage"))
        .group_by("forecast", "ages")
        .agg(
            (pl.col("in_80").sum() / pl.col("points").sum() * 100).alias("cov80"),
            (pl.col("in_95").sum() / pl.col("points").sum() * 100).alias("cov95"),
            pl.col("points").sum(),
        )
        .sort("forecast", "ages")
    )
    print("\nNew series' published interval coverage (target within 5 points of 80 / 95); calibrated: half-widths")
    print("times factors chosen from the earlier origins' new-series errors only (1 at the first origin):")
    print("| intervals | ages | points | 80 % | 95 % |")
    print("|---|---|---|---|---|")
    for r in cov.iter_rows(named=True):
        print(f"| {r['forecast']} | {r['ages']} | {r['points']} | {r['cov80']:.1f} | {r['cov95']:.1f} |")
    wr = pl.concat([r.wrmsse for r in results])
    print("\nEstablished series: WRMSSE per level, order-shaped vs padded (target: change <= 1 %):")
    print("| level | " + " | ".join(str(d) for d in sorted(r.as_of for r in results)) + " | mean change |")
    print("|---|" + "---|" * (len(results) + 1))
    for level in LEVELS:
        part = wr.filter(pl.col("level") == level).sort("as_of")
        changes = [(o / p - 1) * 100 for o, p in zip(part["order"], part["padded"], strict=True) if p is not None]
        cells = " | ".join(
            f"{o:.3f}/{p:.3f}" if p is not None else f"{o:.3f}/-"
            for o, p in zip(part["order"], part["padded"], strict=True)
        )
        mean = f"{sum(changes) / len(changes):+.2f} %" if changes else "-"
        print(f"| {level} | {cells} | {mean} |")
    print("\nOrder-shaped runs (target <= 300 s, <= 4096 MB):")
    print("| origin | seconds | peak RSS (MB, process tree) | launch model chosen | new series served by |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r.as_of} | {r.seconds:.0f} | {r.peak_mb:.0f} | {r.launch} | {r.young_models} |", flush=True)
    factors = rows.filter((pl.col("forecast") == "coverage, calibrated") & (pl.col("ages") == "all new"))
    print("\nNew-series interval factors per origin (from the earlier origins):")
    for r in factors.sort("as_of").iter_rows(named=True):
        print(f"  {r['as_of']}: 80 % x{r['factor_80']:.3f}, 95 % x{r['factor_95']:.3f}")


if __name__ == "__main__":
    main()
