"""The coarse grains' reconciliation across the hierarchy on a daily job (issue 37; a script, not a test): per grain
and level, mean RMSSE over the grain's rolling origins of Base and of each candidate method (MinTrace wls_struct,
BottomUp, TopDown forecast proportions), the method the guard publishes, and how far the published coarse grains
(intervals included) are from adding up across the hierarchy at every level, the total included.

    nice python -m benchmarks.grain_hierarchy --job m5-daily-warehouse
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from forecasting import pipeline
from forecasting.evaluate.grains import gap_across_hierarchy
from forecasting.job.loading import load_job
from forecasting.job.models import BASE
from forecasting.models.grains import forecast_grains
from forecasting.reconcile.temporal import CANDIDATES, coarse_published, hierarchy_choice, hierarchy_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="m5-daily-warehouse")
    args = parser.parse_args()
    job = load_job(args.job)
    _, hierarchy = pipeline.load_hierarchy(job.model_copy(update={"grains": None}), None)
    started = time.perf_counter()
    grains = forecast_grains(hierarchy.Y_df, hierarchy.members, job)
    print(f"coarse grains' Base: {time.perf_counter() - started:.1f} s")
    choices = {name: hierarchy_choice(hierarchy, grain) for name, grain in grains.items()}
    print("\n## Mean RMSSE over each grain's rolling origins (ratio to Base)")
    print("| grain | level | origins | Base | " + " | ".join(CANDIDATES) + " | published |")
    print("|" + " --- |" * (5 + len(CANDIDATES)))
    for name, grain in grains.items():
        wide = hierarchy_scores(hierarchy, grain, CANDIDATES)
        origins = grain.windows["cutoff"].n_unique()
        choice = choices[name]
        for row in wide.sort("level").iter_rows(named=True):
            cells = " | ".join(f"{row[m]:.4f} ({row[m] / row[BASE] - 1:+.2%})" for m in CANDIDATES)
            published = BASE if row["level"] in choice.base_levels else choice.method
            print(f"| {name} | {row['level']} | {origins} | {row[BASE]:.4f} | {cells} | {published} |")
    rows, _ = coarse_published(hierarchy, grains, job.levels, choices)
    table = pl.concat([hierarchy.members.select("unique_id", "level").join(rows, on="unique_id")])
    table = table.with_columns(pl.lit(True).alias("coherent"))
    bounds = [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]
    print("\n## Published coarse grains (every level flagged coherent, the total included)")
    print("| grain | method | Base kept at | max relative gap across the hierarchy (means) | bounds ordered |")
    print("| --- | --- | --- | --- | --- |")
    for name, choice in choices.items():
        part = table.filter(pl.col("grain") == name)
        gap = gap_across_hierarchy(part, hierarchy.members)
        ordered = all(
            (part[f"lo_{lv}"] <= part["mean"] + 1e-9).all() and (part["mean"] <= part[f"hi_{lv}"] + 1e-9).all()
            for lv in job.levels
        )
        kept = ", ".join(choice.base_levels) or "-"
        print(f"| {name} | {choice.method} | {kept} | {gap:.2e} | {ordered} ({len(bounds)} bounds) |")
        print(f"|  | {choice.said} | | | |")


if __name__ == "__main__":
    main()
