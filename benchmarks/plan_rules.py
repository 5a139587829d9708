"""The plan's rules against their alternatives, on the nested score (a script, not a test):

    python -m benchmarks.plan_rules m5-daily-warehouse            # the rule as shipped
    python -m benchmarks.plan_rules m5-monthly rules              # Base rule: 1 s.e. vs argmin vs 0.5 s.e. vs Median
    python -m benchmarks.plan_rules tourism guard                 # the never-harm guard: strict, clearly worse, none
    python -m benchmarks.plan_rules tourism sides                 # interval factors: one for both bounds vs per bound

The job's backtest candidates (statsforecast's and mlforecast's cross_validation for every model of every level, the
same calls as `forecasting backtest`) are computed once and cached under --cache; each variant then reruns only the
nested pass (forecasting.evaluate.nested.run_windows: every window published with the plan chosen from the windows
before it) and scores the last `backtest.nested_windows` windows. Per level it prints the nested score, its ratio to
the seasonal naive and to the best single model in hindsight on the same windows, 80/95 % coverage and WSPL, then the
plan of each scored window (Base per level, the method, the guard's fallbacks).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.reference import FPP3_TABLE_11_2
from benchmarks.reference_tables import with_all_series
from forecasting import pipeline
from forecasting.data import features, transforms
from forecasting.data import hierarchy as hier
from forecasting.evaluate import backtest as bt
from forecasting.evaluate import nested
from forecasting.evaluate import plan as plans
from forecasting.evaluate.scoring import scores
from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec
from forecasting.models.core import with_combinations
from forecasting.models.frames import wide_to_long
from forecasting.models.inputs import model_inputs

AS_OF = {"tourism": date(2017, 12, 31), "m5-daily-warehouse": date(2016, 5, 22), "m5-monthly": date(2016, 4, 24)}
COMBINED = ("Mean", "Median", "Weighted", "Top2")


def candidates(name: str, cache: Path) -> tuple:
    """The job, its loaded data and hierarchy, and its backtest candidates (cached: the expensive part)."""
    job = load_job(name, output_root=str(cache / "outputs"))
    loaded, hierarchy = pipeline.load_hierarchy(job, AS_OF[name])
    forecasts, fitted = cache / f"{name}-forecasts.parquet", cache / f"{name}-fitted.parquet"
    if not forecasts.exists():
        start = time.perf_counter()
        step, windows = job.backtest.step or job.horizon, job.backtest.windows
        Y_agg, Y_bottom = model_inputs(hierarchy, job)
        bottom = hierarchy.members.filter(pl.col("level") == hierarchy.bottom)
        groups = []
        if Y_agg.height:
            upper = hierarchy.members.filter(pl.col("level") != hierarchy.bottom)
            exog = features.exogenous(upper, None, loaded.calendar, job, bottom=False)
            groups.append(bt._group_cv(Y_agg, job, job.models.aggregate_models, exog, True, windows, step))
        exog = features.exogenous(bottom, loaded.prices, loaded.calendar, job, bottom=True)
        groups.append(bt._group_cv(Y_bottom, job, job.models.bottom_models, exog, False, windows, step))
        frame = pl.concat([g[0] for g in groups], how="diagonal_relaxed")
        transforms.zero_closed_days(frame, job.closed_periods, ["y"]).write_parquet(forecasts)
        pl.concat([g[1] for g in groups], how="diagonal_relaxed").write_parquet(fitted)
        print(f"cached {name}'s backtest candidates in {time.perf_counter() - start:.0f} s", flush=True)
    return job, loaded, hierarchy, pl.read_parquet(forecasts), pl.read_parquet(fitted)


def nested_score(name: str, job: JobSpec, loaded, hierarchy, fc: pl.DataFrame, fit: pl.DataFrame, label: str):
    """The nested pass over the cached candidates, scored per level as `forecasting backtest` scores it."""
    start = time.perf_counter()
    fc, fit = with_combinations(fc, fit, job)
    actuals = fc.select(bt.KEYS).join(hierarchy.Y_df.select("unique_id", "ds", "y"), on=["unique_id", "ds"])
    bottom = hierarchy.members.filter(pl.col("level") == hierarchy.bottom)
    prices = features.price_features(loaded.prices, bottom) if loaded.prices is not None else None
    weigh = partial(bt.window_weights, hierarchy, prices, job)

    def score(rows: pl.DataFrame, by: str, kind: str) -> pl.DataFrame:
        return scores(rows, by, hierarchy.Y_df, weigh, kind, job.season_length).windows

    long = hier.level_of(hierarchy.members, wide_to_long(fc, job.levels, bt.KEYS)).join(actuals, on=bt.KEYS, how="left")
    per_window = scores(long, "model", hierarchy.Y_df, weigh, "base", job.season_length).windows
    context = nested.Context(hierarchy, job, fc, fit, actuals, per_window, score, None)
    passed = nested.run_windows(context, lambda message: None)
    cutoffs = sorted(fc["cutoff"].unique().to_list())
    last = cutoffs[-job.backtest.scored_windows(len(cutoffs)) :]
    published = pl.concat(passed.published).filter(pl.col("cutoff").is_in(last)).with_columns(method=pl.lit("nested"))
    ours = score(published, "method", "published")
    metric = job.models.choice_metric
    theirs = per_window.filter(pl.col("cutoff").is_in(last))
    rows = []
    for level in job.hierarchy.names:
        mine = ours.filter(pl.col("level") == level)
        means = theirs.filter(pl.col("level") == level).group_by("model").agg(pl.col(metric).mean())
        best = means.filter(~pl.col("model").is_in(COMBINED + ("Base",))).sort(metric, "model").row(0)
        naive = means.filter(pl.col("model") == "SeasonalNaive")[metric].item()
        value = mine[metric].mean()
        rows.append(
            {"level": level, f"nested {metric}": value, "/ sNaive": value / naive, "/ best single": value / best[1],
             "best single (hindsight)": best[0], "cov 80": mine["coverage_80"].mean(),
             "cov 95": mine["coverage_95"].mean(), "wspl": mine["wspl"].mean()}
        )  # fmt: skip
    with pl.Config(tbl_rows=50, tbl_cols=20, tbl_width_chars=200, fmt_str_lengths=40):
        print(f"== {name} [{label}] ({time.perf_counter() - start:.0f} s, {len(last)} nested windows)")
        print(pl.DataFrame(rows))
    for cutoff, plan in zip(cutoffs[-len(last) :], passed.plans[-len(last) :], strict=True):
        print(f"   {cutoff}: Base {plan.base}; {plan.method}; fallbacks {plan.fallback}")
    if name == "tourism":  # the last window is fpp3's hold-out: beside Table 11.2's best column (MinTrace OLS)
        window = ours.filter(pl.col("cutoff") == cutoffs[-1])
        for metric in ("rmse", "mase"):
            table = with_all_series(window.select("level", metric), window).rename({metric: "platform"})
            refs = pl.DataFrame({"level": list(FPP3_TABLE_11_2[metric]),
                                 "fpp3 MinTrace OLS": [v[2] for v in FPP3_TABLE_11_2[metric].values()]})  # fmt: skip
            print(f"   fpp3 window {metric}:", table.join(refs, on="level").rows())
    return pl.DataFrame(rows)


def _by_se(width: float) -> Callable[[np.ndarray, np.ndarray], bool]:
    def better(challenger: np.ndarray, anchor: np.ndarray) -> bool:
        d = challenger - anchor
        if len(d) < 2 or not np.isfinite(d).all():
            return False
        return bool(d.mean() + width * d.std(ddof=1) / math.sqrt(len(d)) < 0)

    return better


def _argmin(challenger: np.ndarray, anchor: np.ndarray) -> bool:
    return bool(np.isfinite(challenger - anchor).all() and (challenger - anchor).mean() < 0)


def _clearly_harmed(reconciled: pl.DataFrame, base: pl.DataFrame, method: str, metric: str) -> list[str]:
    ours = reconciled.filter(pl.col("model") == method).select("level", "cutoff", pl.col(metric).alias("ours"))
    theirs = base.filter(pl.col("model") == "Base").select("level", "cutoff", pl.col(metric).alias("base"))
    harmed = []
    for (level,), part in ours.join(theirs, on=["level", "cutoff"]).group_by("level"):
        d = (part["ours"] - part["base"]).to_numpy()
        if len(d) >= 2 and d.mean() - d.std(ddof=1) / math.sqrt(len(d)) > 0:
            harmed.append(level)
    return sorted(harmed)


def rules(name: str, job: JobSpec, *data) -> None:
    """Base per level: a candidate replaces the anchor when better by 1 s.e. (shipped), by 0.5 s.e., or at all
    (argmin); and the Median as the anchor instead of the Mean."""
    shipped = plans.clearly_better
    median = {"primary": dict.fromkeys(job.hierarchy.names, "Median")}
    variants = [("1 s.e., Mean (shipped)", shipped, {}), ("argmin", _argmin, {}), ("0.5 s.e., Mean", _by_se(0.5), {}),
                ("1 s.e., Median", shipped, median)]  # fmt: skip
    try:
        for label, rule, models in variants:
            plans.clearly_better = rule
            variant = job.model_copy(update={"models": job.models.model_copy(update=models)}) if models else job
            nested_score(name, variant, *data, label)
    finally:
        plans.clearly_better = shipped


def guard(name: str, job: JobSpec, *data) -> None:
    """The never-harm guard: worse than Base on average (shipped), worse by more than 1 s.e., or no guard."""
    shipped = plans.harmed_levels
    try:
        variants = [("strict (shipped)", shipped), ("clearly worse", _clearly_harmed), ("none", lambda *a: [])]
        for label, harmed in variants:
            plans.harmed_levels = harmed
            nested_score(name, job, *data, f"guard {label}")
    finally:
        plans.harmed_levels = shipped


def per_side_scales(published: pl.DataFrame, levels: list[int]) -> dict[str, dict[str, float]]:
    """The tried alternative to plan.interval_scales: a factor per bound (`lo_<L>`, `hi_<L>`), each bound missing
    (1 - L) / 2 of the earlier actuals (quantile (1 + L) / 2 of the signed distance beyond the mean over its
    half-width), never below 0."""
    scales: dict[str, dict[str, float]] = {}
    floor = plans.MIN_HALF_WIDTH * pl.max_horizontal(pl.col("mean").abs(), pl.lit(1.0))
    rows = published.filter(pl.col("y").is_not_null())
    for (level,), part in rows.sort("level").group_by("level", maintain_order=True):
        factors = {}
        for lv in levels:
            for side, width, beyond in (
                ("hi", pl.col(f"hi_{lv}") - pl.col("mean"), pl.col("y") - pl.col("mean")),
                ("lo", pl.col("mean") - pl.col(f"lo_{lv}"), pl.col("mean") - pl.col("y")),
            ):
                score = part.select(pl.when(width > floor).then(beyond / width).alias("s"))["s"].drop_nulls()
                if score.len() >= plans.MIN_INTERVAL_ROWS:
                    factors[f"{side}_{lv}"] = max(float(np.quantile(score.to_numpy(), (1 + lv / 100) / 2)), 0.0)
        if factors:
            scales[level] = factors
    return scales


def per_side_apply(rows: pl.DataFrame, scales: dict[str, dict[str, float]], levels: list[int]) -> pl.DataFrame:
    """plan.apply_interval_scales with a factor per bound."""
    exprs = []
    for lv in levels:
        factor = {"lo": pl.lit(1.0), "hi": pl.lit(1.0)}
        for level, factors in sorted(scales.items()):
            for side in factor:
                if f"{side}_{lv}" in factors:
                    factor[side] = (
                        pl.when(pl.col("level") == level).then(factors[f"{side}_{lv}"]).otherwise(factor[side])
                    )
        lo = pl.col("mean") - factor["lo"] * (pl.col("mean") - pl.col(f"lo_{lv}"))
        hi = pl.col("mean") + factor["hi"] * (pl.col(f"hi_{lv}") - pl.col("mean"))
        exprs += [pl.max_horizontal(lo, pl.lit(0.0)).alias(f"lo_{lv}"), hi.alias(f"hi_{lv}")]
    return plans.nested_bounds(rows.with_columns(exprs), levels)


def sides(name: str, job: JobSpec, *data) -> None:
    """Interval factors: one per interval level for both bounds (shipped) against one per bound."""
    shipped = plans.interval_scales, plans.apply_interval_scales
    try:
        nested_score(name, job, *data, "one factor for both bounds (shipped)")
        plans.interval_scales, plans.apply_interval_scales = per_side_scales, per_side_apply
        nested_score(name, job, *data, "a factor per bound")
    finally:
        plans.interval_scales, plans.apply_interval_scales = shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", choices=sorted(AS_OF))
    parser.add_argument("variant", nargs="?", choices=["shipped", "rules", "guard", "sides"], default="shipped")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "forecasting-plan-rules")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    args.cache.mkdir(parents=True, exist_ok=True)
    job, *data = candidates(args.job, args.cache)
    if args.variant == "rules":
        rules(args.job, job, *data)
    elif args.variant == "guard":
        guard(args.job, job, *data)
    elif args.variant == "sides":
        sides(args.job, job, *data)
    else:
        nested_score(args.job, job, *data, "shipped")


if __name__ == "__main__":
    main()
