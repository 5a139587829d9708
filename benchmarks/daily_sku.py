"""The m5-daily-sku targets (issue 38) on the nested backtest, as a table (a script, not a test):

    nice python -m benchmarks.daily_sku [--output DIR] [--run]

Reads the job's latest published backtest under DIR (default: a temporary folder, in which case --run is implied;
`forecasting backtest --job m5-daily-sku -o DIR` publishes one): 7 windows of 28 days ending d_1941, the last 6
(d_1774 .. d_1941) published nested, each with the plan chosen only from the windows before it. On those 6 windows:
- WRMSSE of the 280 item x store series with the organizers' level-12 weights (renormalised over the 280), per window
  and averaged, for the published forecast, the seasonal naive and the per-series AutoETS, overall and per demand
  class (Syntetos-Boylan on d_1..d_1913: ADI 1.32, CV^2 0.49); targets <= 0.75 x seasonal naive, <= 0.97 x AutoETS;
- WSPL at the 9 M5 quantiles (0.005 .. 0.995, median = the point forecast; quantiles below 0 read as 0 for every
  model), target <= 0.80 x seasonal naive and below AutoETS;
- the reorder-point policy backtested (forecasting.inventory.policy) on the published forecasts: achieved cycle
  service level and fill rate per category at the job's service levels, from the copula paths and, for comparison,
  from the normal approximation and from independent / perfectly correlated days.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from forecasting.evaluate import metrics as ev
from forecasting.inventory.policy import policy_outcomes, policy_summary
from forecasting.inventory.quantities import lead_times
from forecasting.job.common import project_root
from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec
from forecasting.outputs import runs
from forecasting.pipeline import backtest_job

JOB = "m5-daily-sku"
BOTTOM = "sku"
BASELINES = ["SeasonalNaive", "AutoETS"]
PUBLISHED = "published"
M5_QUANTILE_LEVELS = [50, 67, 95, 99]  # -> 0.005 0.025 0.165 0.25 | 0.75 0.835 0.975 0.995, with the median
ADI, CV2 = 1.32, 0.49


def bottom_history(job: JobSpec) -> pl.DataFrame:
    """The 280 series as the job names them (total/state/store/category/dept/item), with their keys."""
    raw = pl.read_parquet(project_root() / job.source.sales.path)
    uid = pl.concat_str([pl.lit("total"), "state_id", "store_id", "cat_id", "dept_id", "item_id"], separator="/")
    return raw.select(
        uid.alias("unique_id"), "item_id", "store_id", "cat_id", pl.col("date").alias("ds"), pl.col("sales").alias("y")
    ).with_columns(pl.col("y").cast(pl.Float64))


def level12_weights(job: JobSpec, history: pl.DataFrame) -> pl.DataFrame:
    """The organizers' level-12 weights of the 280 series, renormalised to sum to 1 over them."""
    ids = history.select("unique_id", "item_id", "store_id").unique()
    raw = pl.read_parquet(project_root() / "data/m5/m5_weights_evaluation.parquet").filter(
        pl.col("Level_id") == "Level12"
    )
    joined = ids.join(raw, left_on=["item_id", "store_id"], right_on=["Agg_Level_1", "Agg_Level_2"], how="left")
    if joined["weight"].null_count():
        raise ValueError("some series have no official level-12 weight")
    return joined.select("unique_id", pl.lit(BOTTOM).alias("level"), (pl.col("weight") / pl.col("weight").sum()))


def demand_classes(history: pl.DataFrame, until: object) -> pl.DataFrame:
    """Syntetos-Boylan class per series on the history through `until`, from its first sale on."""
    started = history.filter(pl.col("ds") <= until).sort("unique_id", "ds")
    started = started.filter((pl.col("y") > 0).cum_max().over("unique_id"))
    stats = started.group_by("unique_id").agg(
        (pl.len() / (pl.col("y") > 0).sum()).alias("adi"),
        ((pl.col("y").filter(pl.col("y") > 0).std() / pl.col("y").filter(pl.col("y") > 0).mean()) ** 2).alias("cv2"),
    )
    cls = (
        pl.when(pl.col("adi") < ADI)
        .then(pl.when(pl.col("cv2") < CV2).then(pl.lit("smooth")).otherwise(pl.lit("erratic")))
        .otherwise(pl.when(pl.col("cv2") < CV2).then(pl.lit("intermittent")).otherwise(pl.lit("lumpy")))
    )
    return stats.with_columns(cls.alias("class"))


def scored_rows(backtest_dir: Path, cutoffs: list[object]) -> pl.DataFrame:
    """Long rows (unique_id, cutoff, ds, y, model, mean, lo/hi) of the published forecast and the baselines at the
    bottom level in the scored windows."""
    base = pl.read_parquet(backtest_dir / "backtest_base.parquet").filter(
        (pl.col("level") == BOTTOM) & pl.col("model").is_in(BASELINES) & pl.col("cutoff").is_in(cutoffs)
    )
    rec = pl.read_parquet(backtest_dir / "backtest_reconciled.parquet").filter(
        (pl.col("level") == BOTTOM) & pl.col("published") & pl.col("cutoff").is_in(cutoffs)
    )
    cols = [c for c in base.columns if c in rec.columns and c not in ("model", "method")]
    published = rec.select(*cols, pl.lit(PUBLISHED).alias("model"))
    return pl.concat([base.select(*cols, "model"), published])


def scores(rows: pl.DataFrame, history: pl.DataFrame, weights: pl.DataFrame, classes: pl.DataFrame) -> pl.DataFrame:
    """Per window and model: RMSSE and SPL per series -> weighted per demand class and overall."""
    frames = []
    actuals = history.select("unique_id", "ds", "y")
    taus = None
    for (cutoff,), window in rows.group_by("cutoff", maintain_order=True):
        past = actuals.filter(pl.col("ds") <= cutoff)
        wide = window.pivot(on="model", index=["unique_id", "ds"], values="mean")
        models = [c for c in wide.columns if c not in ("unique_id", "ds")]
        rmsse = ev.rmsse_per_series(wide, actuals, ev.m5_rmsse_scale(past), models)
        bounds = [f"{s}_{lv}" for lv in M5_QUANTILE_LEVELS for s in ("lo", "hi")]
        named = window.select(
            "unique_id", "ds", "model", *[pl.col(c).clip(lower_bound=0) for c in ["mean", *bounds]]
        ).pivot(on="model", index=["unique_id", "ds"], values=["mean", *bounds])
        renamed = {f"mean_{m}": m for m in models} | {
            f"{b}_{m}": f"{m}-{b.replace('_', '-')}" for m in models for b in bounds
        }
        quantiles, taus = ev.intervals_to_quantiles(named.rename(renamed), models, M5_QUANTILE_LEVELS)
        spl = ev.scaled_pinball_loss(quantiles, actuals, ev.m5_spl_scale(past), taus, models)
        per_series = rmsse.join(spl, on=["unique_id", "model"]).join(
            classes.select("unique_id", "class"), on="unique_id"
        )
        for group, part in [("all", per_series), *[(c, g) for (c,), g in per_series.group_by("class")]]:
            w = weights.filter(pl.col("unique_id").is_in(part["unique_id"].unique().implode()))
            w = w.with_columns(pl.col("weight") / pl.col("weight").sum())
            both = ev.wrmsse(part, w).join(ev.wspl(part, w), on=["level", "model"])
            frames.append(both.with_columns(pl.lit(cutoff).alias("cutoff"), pl.lit(group).alias("class")))
    return pl.concat(frames)


def accuracy_table(windows: pl.DataFrame) -> pl.DataFrame:
    mean = windows.group_by("class", "model").agg(pl.col("wrmsse").mean(), pl.col("wspl").mean())
    wide = mean.pivot(on="model", index="class", values=["wrmsse", "wspl"])
    p, s, e = PUBLISHED, "SeasonalNaive", "AutoETS"
    return wide.select(
        "class",
        pl.col(f"wrmsse_{p}").round(3).alias("WRMSSE"),
        pl.col(f"wrmsse_{s}").round(3).alias("sNaive"),
        pl.col(f"wrmsse_{e}").round(3).alias("AutoETS"),
        (pl.col(f"wrmsse_{p}") / pl.col(f"wrmsse_{s}")).round(3).alias("vs sNaive (<=0.75)"),
        (pl.col(f"wrmsse_{p}") / pl.col(f"wrmsse_{e}")).round(3).alias("vs ETS (<=0.97)"),
        pl.col(f"wspl_{p}").round(3).alias("WSPL"),
        pl.col(f"wspl_{s}").round(3).alias("WSPL sNaive"),
        pl.col(f"wspl_{e}").round(3).alias("WSPL ETS"),
        (pl.col(f"wspl_{p}") / pl.col(f"wspl_{s}")).round(3).alias("WSPL vs sNaive (<=0.80)"),
        (pl.col(f"wspl_{p}") / pl.col(f"wspl_{e}")).round(3).alias("WSPL vs ETS (<1)"),
    ).sort(pl.col("class").replace_strict({"all": 0, "smooth": 1, "intermittent": 2, "lumpy": 3, "erratic": 4}))


def policy_table(job: JobSpec, rows: pl.DataFrame, history: pl.DataFrame) -> pl.DataFrame:
    """Achieved cycle service level and fill rate per category: copula paths (the job's), independent days,
    perfectly correlated days and the normal approximation, on the published forecasts of the scored windows."""
    spec = job.inventory
    published = rows.filter(pl.col("model") == PUBLISHED)
    members = history.select("unique_id", pl.col("cat_id").alias("category")).unique()
    lead = lead_times(members, spec, ["category"])
    frames = []
    variants = [
        (f"paths rho={spec.day_correlation}", spec, "paths"),
        ("paths rho=0", spec.model_copy(update={"day_correlation": 0.0}), "paths"),
        ("paths rho=1", spec.model_copy(update={"day_correlation": 1.0}), "paths"),
        ("normal", spec, "normal"),
    ]
    for name, variant, method in variants:
        out = policy_outcomes(published, lead, job.levels, variant, job.seed, method).join(members, on="unique_id")
        frames.append(policy_summary(out, ["category"]).with_columns(pl.lit(name).alias("reorder point")))
    return pl.concat(frames).select(
        "reorder point",
        "category",
        "service_level",
        pl.col("cycle_service_level").round(3),
        pl.col("csl_gap").round(3),
        pl.col("fill_rate").round(3),
        "sku_days",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="output root holding (or to hold) the job's backtest")
    parser.add_argument("--run", action="store_true", help="run the backtest first (implied without --output)")
    parser.add_argument("--job", default=JOB, help="the job (default m5-daily-sku; a variant of it, e.g. a slice)")
    args = parser.parse_args()
    root = Path(args.output or tempfile.mkdtemp(prefix="daily_sku_"))
    job = load_job(args.job, output_root=str(root))
    pl.Config.set_tbl_rows(100).set_tbl_cols(20).set_tbl_width_chars(250)
    if args.run or not args.output:
        start = time.perf_counter()
        backtest_job(job, progress=print)
        print(f"backtest: {time.perf_counter() - start:.0f} s")
    folder = runs.run_dir(job, None, subdir="backtests")
    manifest = runs.read_manifest(folder)
    cutoffs = [pl.Series([c]).str.to_date().item() for c in manifest["cutoffs"]][-manifest["nested_windows"] :]
    history = bottom_history(job)
    classes = demand_classes(history, pl.date(2016, 4, 24))
    print(f"backtest {folder}: scored cutoffs {cutoffs[0]} .. {cutoffs[-1]} ({len(cutoffs)} windows, nested)")
    print(classes.group_by("class").len().sort("class"))
    rows = scored_rows(folder, cutoffs)
    windows = scores(rows, history, level12_weights(job, history), classes)
    print("\nWRMSSE and WSPL (level 12, official weights renormalised over the 280), mean of the scored windows")
    print(accuracy_table(windows))
    print("\nper window (all series)")
    print(
        windows.filter(pl.col("class") == "all")
        .pivot(on="model", index="cutoff", values="wrmsse")
        .sort("cutoff")
        .with_columns(pl.exclude("cutoff").round(3))
    )
    print("\ninventory policy backtest: cycle service level and fill rate per category")
    print(policy_table(job, rows, history))


if __name__ == "__main__":
    main()
