"""The launch models alone on M5 monthly in order shape: `python -m benchmarks.launch_models [--origins 6]`.

The full runs of benchmarks.launches take minutes per origin; this script scores only what the launch models do
(forecasting.models.young, forecasting.models.launch_lightgbm), at every origin, in a minute or two each: the series
the m5-monthly job routes to them (shorter than 25 months at the origin), their base forecasts over the next 3 months
by age (1-3, 4-12, 13-24 months), and

- the launch model chosen at each origin from the earlier origins only (forecasting.evaluate.plan.choose_launch, the
  clearly-better rule against the job's launch_model; origins are 3 months apart, so each earlier origin is a
  window whose actuals were known), and that choice's accuracy;
- the 80 / 95 % coverage of the served model's intervals as they are, and times factors chosen from the earlier
  origins' errors only (forecasting.evaluate.plan.interval_scales, the nested backtest's rule).

Base forecasts (before reconciliation), so the figures are the launch models' own. Writes nothing into the source
tree (temp folder).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import polars as pl

from benchmarks.launches import MONTHLY, age_rows, history_frame, job_on, order_shape, origins, pooled_accuracy
from forecasting.evaluate import plan as plans
from forecasting.evaluate.metrics import m5_rmsse_scale, rmsse_per_series
from forecasting.job.common import project_root
from forecasting.models import young
from forecasting.models.inputs import model_inputs
from forecasting.models.launch_lightgbm import LAUNCH_LIGHTGBM, static_keys
from forecasting.pipeline import load_hierarchy

CHOSEN = "chosen (nested)"


def long_rows(fc: pl.DataFrame, model: str, levels: list[int]) -> pl.DataFrame:
    """One model's (with Flat where it has no forecast) rows: unique_id, ds, mean, lo_L, hi_L."""
    names = ["", *[f"-{s}-{lv}" for lv in levels for s in ("lo", "hi")]]
    out = ["mean", *[f"{s}_{lv}" for lv in levels for s in ("lo", "hi")]]
    return fc.select(
        "unique_id",
        "ds",
        *[pl.coalesce(f"{model}{n}", f"{young.FLAT}{n}").alias(o) for n, o in zip(names, out, strict=True)],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--origins", type=int, default=6)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    source = project_root() / MONTHLY
    sku = history_frame(pl.read_parquet(source)).select(
        pl.concat_str([pl.lit("total"), "unique_id"], separator="/").alias("unique_id"), "ds", "y"
    )
    scores, served_rows, table = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        shaped = Path(tmp) / "orders.parquet"
        order_shape(source, shaped)
        job = job_on(shaped, Path(tmp) / "out", "m5-monthly-orders")
        for as_of in origins(args.origins):
            start = time.perf_counter()
            _, hierarchy = load_hierarchy(job, as_of)
            routes = young.route(hierarchy, job)
            Y_agg, Y_bottom = model_inputs(hierarchy, job)
            fc = young.launch_forecast(
                pl.concat([Y_agg, Y_bottom]),
                routes.young,
                young.parent_groups(hierarchy),
                job,
                routes.need - 1,
                static_keys(hierarchy),
            ).forecasts
            seconds = time.perf_counter() - start
            bottom = hierarchy.ids(hierarchy.bottom)
            ages = routes.lengths.filter(pl.col("unique_id").is_in(bottom)).rename({"history_periods": "age"})
            fc = fc.filter(pl.col("unique_id").is_in(bottom))
            last = hierarchy.Y_df["ds"].max()
            actuals = sku.filter(pl.col("ds") > last).join(
                fc.select("unique_id", "ds").unique(), on=["unique_id", "ds"]
            )
            scale = m5_rmsse_scale(sku.filter(pl.col("ds") <= last))
            earlier = [s["cutoff"][0] for s in scores]
            chosen, why = plans.choose_launch(pl.concat(scores), earlier, job) if scores else ({}, ["first origin"])
            pick = chosen.get(hierarchy.bottom, job.models.launch_model)
            window = []
            for model in [young.LAUNCH, LAUNCH_LIGHTGBM, CHOSEN]:
                rows = long_rows(fc, pick if model == CHOSEN else model, job.levels)
                joined = rows.join(actuals, on=["unique_id", "ds"]).join(ages, on="unique_id")
                if model != CHOSEN:
                    rmsse = rmsse_per_series(joined.select("unique_id", "ds", "mean"), joined, scale, ["mean"])
                    rmsse = rmsse.filter(pl.col("rmsse").is_finite())["rmsse"].mean()
                    window.append({"level": "sku", "model": model, "cutoff": as_of, "rmsse": rmsse})
                table.extend(age_rows(joined, scale, as_of, model))
                if model == CHOSEN:
                    served = joined.with_columns(pl.lit("sku").alias("level"), pl.lit(as_of).alias("cutoff"))
                    factors = plans.interval_scales(pl.concat(served_rows), job.levels) if served_rows else {}
                    calibrated = plans.apply_interval_scales(served, factors, job.levels)
                    for kind, frame in [("as is", served), ("calibrated", calibrated)]:
                        for lv in (80, 95):
                            inside = frame.select(pl.col("y").is_between(f"lo_{lv}", f"hi_{lv}").mean()).item()
                            table.append(
                                {
                                    "as_of": as_of,
                                    "ages": "all",
                                    "forecast": f"coverage {kind} {lv}",
                                    "series": frame.height,
                                    "inside": inside * frame.height,
                                    "factor": factors.get("sku", {}).get(str(lv), 1.0),
                                }
                            )
                    served_rows.append(served.drop("age"))
            scores.append(
                pl.DataFrame(
                    window, schema={"level": pl.String, "model": pl.String, "cutoff": pl.Date, "rmsse": pl.Float64}
                )
            )
            print(
                f"origin {as_of}: {fc['unique_id'].n_unique()} new SKU series, launch models {seconds:.0f} s; "
                f"chosen {pick} ({'; '.join(why)})",
                flush=True,
            )
            report(pl.DataFrame(table, infer_schema_length=None))


def report(table: pl.DataFrame) -> None:
    acc = pooled_accuracy(table)
    print("| ages | launch model (base) | series x origins | WAPE | RMSSE |\n|---|---|---|---|---|")
    for r in acc.iter_rows(named=True):
        print(f"| {r['ages']} | {r['forecast']} | {r['n']} | {r['WAPE']:.3f} | {r['RMSSE']:.3f} |")
    cov = table.filter(pl.col("forecast").str.starts_with("coverage"))
    pooled = cov.group_by("forecast").agg((pl.col("inside").sum() / pl.col("series").sum() * 100).alias("pct"))
    print("coverage of the served model's intervals, pooled:", dict(sorted(pooled.rows())))
    for r in cov.filter(pl.col("forecast").str.contains("calibrated")).sort("as_of", "forecast").iter_rows(named=True):
        print(f"  {r['as_of']} {r['forecast']}: factor {r['factor']:.3f}, {r['inside'] / r['series'] * 100:.1f} %")


if __name__ == "__main__":
    main()
