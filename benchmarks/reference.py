"""Accuracy benchmarks against published references, on the nested score (scripts, not tests):

    python -m benchmarks.reference m5-daily      # M5 levels 1-3: 12 windows of 28 days, the last 6 nested
    python -m benchmarks.reference m5-monthly    # 11 windows of 3 months, the last 6 nested, per level
    python -m benchmarks.reference tourism       # fpp3 section 11.4: 16 origins a quarter apart, the last 4 nested

Each runs the job's own backtest (`forecasting backtest`: its windows, step and nested windows from the job file):
every window is published with the plan chosen only from the windows that ended before it
(forecasting.evaluate.plan), exactly as the nightly run would have published it; the nested windows' published
forecasts, scored, are the figure reported. Beside them, on the same windows: the seasonal naive, the best single
model in hindsight, the Mean of the models, and the in-sample choice (every window published with the plan chosen
from all of them, which flatters). Outputs (under --output, default $TMPDIR/forecasting-benchmarks):
<job>/backtests/ and
<name>-results.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl

from benchmarks.reference_tables import (
    M5_TARGET_RATIO,
    M5_WINNER_RATIO,
    NESTED,
    interval_table,
    markdown,
    per_window,
    plans_table,
    ratio_table,
    scored,
    with_all_series,
)
from forecasting.evaluate.backtest import Backtest
from forecasting.job.catalogue import MODELS
from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec
from forecasting.pipeline import backtest_job

OUTPUT = Path(tempfile.gettempdir()) / "forecasting-benchmarks"


def output_root() -> Path:
    """Benchmark runs publish under --output (default: a folder in the temp dir), never inside the checkout."""
    return OUTPUT


def nested_backtest(job: JobSpec, as_of: date, say: Callable[[str], None]) -> tuple[Backtest, list[date], float]:
    """The job's backtest as of `as_of`, its nested windows, and the seconds it took."""
    start = time.perf_counter()
    _, result = backtest_job(job, as_of, progress=say)
    cutoffs = sorted(result.reconciled["cutoff"].unique().to_list())
    return result, cutoffs[-job.backtest.scored_windows(len(cutoffs)) :], time.perf_counter() - start


def singles(job: JobSpec) -> list[str]:
    """The single models the job runs (catalogue models and LightGBM variants, no combination)."""
    return [*MODELS, *job.models.lightgbm_variants]


def common_tables(job: JobSpec, result: Backtest, windows: list[date], metric: str) -> list[str]:
    levels = job.hierarchy.names
    means = scored(result.window_metrics, windows)
    plans = [p.to_dict() for p in result.window_plans]
    window_names = [str(c) for c in windows]
    return [
        f"### {metric.upper()} per level, mean over the {len(windows)} nested windows "
        f"({window_names[0]} .. {window_names[-1]})",
        markdown(ratio_table(means, metric, levels, singles(job))),
        "### Intervals of the published forecast (nested), and of Base",
        markdown(interval_table(means, levels)),
        f"### Per nested window: published {metric.upper()} / SeasonalNaive's",
        markdown(per_window(result.window_metrics, metric, levels, windows)),
        "### What each window published (its plan, chosen from the windows that ended before it)",
        markdown(plans_table(plans[-len(windows) :], window_names, levels)),
        "### The plan the next nightly run publishes (chosen from every window)",
        "\n".join(f"- {reason}" for reason in result.plan.reasons),
    ]


def m5_daily(say: Callable[[str], None] = print) -> str:
    job = load_job("m5-daily-warehouse", output_root=str(output_root()))
    result, windows, seconds = nested_backtest(job, date(2016, 5, 22), say)
    means = scored(result.window_metrics, windows)
    table = ratio_table(means, "wrmsse", job.hierarchy.names, singles(job)).with_columns(
        pl.col("level").replace_strict(M5_TARGET_RATIO).alias("target ratio"),
        pl.col("level").replace_strict(M5_WINNER_RATIO).alias("winner's ratio"),
    )
    return "\n\n".join(
        [
            f"## M5 daily, levels 1-3 (official WRMSSE), nested; backtest {seconds:.0f} s",
            "Target: published / SeasonalNaive at most 0.53 / 0.53 / 0.57 (the organizers' ES_bu minus 30 %, as a "
            "ratio to their seasonal naive); the winner's ratios 0.36 / 0.46 / 0.56.",
            markdown(table.select("level", "published (nested)", "SeasonalNaive", "published / sNaive", "target ratio",
                                  "winner's ratio", "in-sample choice", "best single model (hindsight)", "which")),
            *common_tables(job, result, windows, "wrmsse"),
        ]
    )  # fmt: skip


def m5_monthly(say: Callable[[str], None] = print) -> str:
    job = load_job("m5-monthly", output_root=str(output_root()))
    result, windows, seconds = nested_backtest(job, date(2016, 4, 24), say)
    return "\n\n".join(
        [
            f"## M5 monthly (RMSSE), nested; backtest {seconds:.0f} s",
            "Target: at every level, the published forecast no worse than the best single base model.",
            *common_tables(job, result, windows, "rmsse"),
        ]
    )


FPP3_TABLE_11_2 = {
    "rmse": {
        "total": (1720.72, 3071.11, 1803.51, 2157.55),
        "purpose": (533.02, 802.68, 513.18, 586.45),
        "state": (306.85, 417.21, 294.66, 329.74),
        "region": (52.64, 55.13, 46.95, 47.40),
        "region_purpose": (19.38, 19.38, 18.32, 17.97),
        "all series": (45.96, 55.28, 43.19, 45.61),
    },
    "mase": {
        "total": (1.53, 3.17, 1.63, 2.09),
        "purpose": (1.33, 2.32, 1.25, 1.51),
        "state": (1.40, 1.88, 1.27, 1.45),
        "region": (1.13, 1.18, 1.00, 1.02),
        "region_purpose": (0.98, 0.98, 1.02, 0.94),
        "all series": (1.04, 1.08, 1.03, 0.98),
    },
}
FPP3_COLUMNS = ("Base", "BottomUp", "MinTrace_ols", "MinTrace_mint_shrink")  # fpp3: base, bu, ols, mint


def tourism(say: Callable[[str], None] = print) -> str:
    """fpp3 section 11.4: the last backtest window is fpp3's (trained through 2015 Q4, 2016 Q1..2017 Q4), published
    with the plan chosen from the origins whose 8 quarters ended by 2015 Q4."""
    job = load_job("tourism", output_root=str(output_root()))
    result, windows, seconds = nested_backtest(job, date(2017, 12, 31), say)
    last = windows[-1]
    levels = [*job.hierarchy.names, "all series"]
    rows = result.window_metrics.filter(
        (pl.col("cutoff") == last) & (pl.col("kind") == "published") & (pl.col("model") == NESTED)
    )
    counts = result.metrics.select("level", "series").unique("level")
    parts = [
        f"## Australian tourism (fpp3 11.4), nested; backtest {seconds:.0f} s",
        f"The last window (cutoff {last}) is fpp3's hold-out; its plan was chosen from "
        f"{len(result.window_plans[-1].windows)} earlier origins that ended by then. fpp3 = Table 11.2 as published.",
    ]
    for metric in ("rmse", "mase"):
        ours = with_all_series(rows.select("level", pl.col(metric).alias("platform (nested)")), counts)
        table = []
        for level, refs in FPP3_TABLE_11_2[metric].items():
            row = {"level": level, **{f"fpp3 {c}": v for c, v in zip(FPP3_COLUMNS, refs, strict=True)}}
            row["platform (nested)"] = ours.filter(pl.col("level") == level)["platform (nested)"].item()
            row["beats fpp3's best column"] = row["platform (nested)"] <= min(refs)
            table.append(row)
        parts += [f"### {metric.upper()}, 2016 Q1..2017 Q4", markdown(pl.DataFrame(table), 2)]
    parts += common_tables(job, result, windows, "mase")
    del levels
    return "\n\n".join(parts)


BENCHMARKS = {"m5-daily": m5_daily, "m5-monthly": m5_monthly, "tourism": tourism}


def main() -> None:
    global OUTPUT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"where runs and tables go (default {OUTPUT})")
    args = parser.parse_args()
    OUTPUT = args.output.resolve()
    warnings.filterwarnings("ignore")
    text = BENCHMARKS[args.benchmark]()
    path = output_root() / f"{args.benchmark}-results.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(text)
    print(f"\n(written to {path})")


if __name__ == "__main__":
    main()
