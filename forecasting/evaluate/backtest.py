"""Rolling-origin backtests with the libraries' own cross-validation, every window reconciled and published nested.

statsforecast and mlforecast `cross_validation` give each window's forecasts and (with fitted=True) each window's
in-sample fits of every model; then each window is published with the plan chosen from the windows before it
(forecasting.evaluate.nested), with the same hierarchicalforecast methods as the nightly run, so the backtest scores
what the nightly job would have published, and its last windows are the figure a user gets on the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import polars as pl
from statsforecast import StatsForecast

from forecasting.data import features, trading_days, transforms
from forecasting.data import hierarchy as hier
from forecasting.evaluate import metrics as ev
from forecasting.evaluate import nested
from forecasting.evaluate import plan as plans
from forecasting.evaluate.scoring import scores
from forecasting.job.schema import PANDAS_FREQ, JobSpec
from forecasting.models import launch_lightgbm, registry, young
from forecasting.models import lightgbm as gbm
from forecasting.models.base import BASE
from forecasting.models.core import with_combinations
from forecasting.models.frames import wide_to_long
from forecasting.models.inputs import model_inputs
from forecasting.models.statistical import worker_processes_from_forkserver

KEYS = ["unique_id", "ds", "cutoff"]


@dataclass
class Backtest:
    base: pl.DataFrame  # long: unique_id, level, region, warehouse, sku, cutoff, ds, y, model, mean, lo/hi
    reconciled: pl.DataFrame  # long: ... , method, published, mean, lo/hi, y
    metrics: pl.DataFrame  # level, kind, model, mae, rmse, rmsse, bias, coverage_80/95, spl, wrmsse, wspl, ...
    base_models: dict[str, str]  # level -> the model behind Base in the next run (the final plan's)
    series_metrics: pl.DataFrame  # unique_id, level, keys, kind, model, the same metrics per series over the windows
    plan: plans.Plan  # what the next nightly run publishes: chosen from every window
    window_plans: list[plans.Plan]  # per window, the plan chosen from the windows before it
    window_metrics: pl.DataFrame  # per level, kind, model and window
    notes: list[str]  # reconciliation fallbacks, per window
    new_series: pl.DataFrame | None = None  # bottom-level published scores, new series apart from established ones


def _statistical_cv(
    Y: pl.DataFrame, job: JobSpec, names: list[str], n_windows: int, step: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    # Pandas at the boundary: statsforecast 2.1's cross_validation_fitted_values fails on polars input.
    sf = StatsForecast(models=registry.local_models(job, names), freq=PANDAS_FREQ[job.freq], n_jobs=job.n_jobs)
    with worker_processes_from_forkserver():
        cv = sf.cross_validation(
            h=job.horizon, df=Y.to_pandas(), n_windows=n_windows, step_size=step, level=job.levels, fitted=True
        )
    fitted = sf.cross_validation_fitted_values()
    return _dates(pl.from_pandas(cv)), _dates(pl.from_pandas(fitted)).select(*KEYS, "y", *names)


def _dates(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(c).cast(pl.Date) for c in ("ds", "cutoff") if c in frame.columns)


def _lightgbm_cv(
    Y: pl.DataFrame,
    job: JobSpec,
    exog: pl.DataFrame | None,
    aggregate: bool,
    n_windows: int,
    step: int,
    name: str = gbm.LIGHTGBM,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """mlforecast cross_validation of the LightGBM called `name`; with horizon blocks, each block's model is
    cross-validated over the same windows and keeps its own periods (in-sample fits: the last block's)."""
    forecasts, fitted = [], None
    held_back = job.horizon + (n_windows - 1) * step  # the first window's fit does not see these periods
    for block, (fcst, train, intervals) in gbm.lightgbm_setups(Y, job, exog, aggregate, name, held_back):
        cv = fcst.cross_validation(
            train,
            n_windows=n_windows,
            h=job.horizon,
            step_size=step,
            static_features=gbm.static_features(job),
            prediction_intervals=intervals,
            level=job.levels,
            fitted=True,
            weight_col=gbm.weight_column(train),
        )
        forecasts.append(gbm.in_block(_dates(cv.drop("y")), block, ["unique_id", "cutoff"]))
        cutoffs = sorted(cv["cutoff"].unique().to_list())
        fold_to_cutoff = pl.DataFrame({"fold": list(range(len(cutoffs))), "cutoff": cutoffs}).cast({"fold": pl.Int32})
        fitted = fcst.cross_validation_fitted_values().cast({"fold": pl.Int32}).join(fold_to_cutoff, on="fold")
    assert fitted is not None
    return pl.concat(forecasts).sort(KEYS), _dates(fitted).select(*KEYS, "y", name)


def _group_cv(
    Y: pl.DataFrame, job: JobSpec, names: list[str], exog: pl.DataFrame | None, aggregate: bool, windows: int, step: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    stat = [n for n in names if registry.is_local(n)]
    parts = []
    if stat:
        parts.append(_statistical_cv(Y, job, stat, windows, step))
    for name in job.models.lightgbm_names:
        if name in names:
            parts.append(_lightgbm_cv(Y, job, exog, aggregate, windows, step, name))
    forecasts, fitted = parts[0]
    for fc, fit in parts[1:]:
        forecasts = forecasts.join(fc.drop("y", strict=False), on=KEYS, how="full", coalesce=True)
        fitted = fitted.join(fit.drop("y"), on=KEYS, how="full", coalesce=True)
    return trading_days.in_units(forecasts, job, aggregate), trading_days.in_units(fitted, job, aggregate)


def run_backtest(
    hierarchy: hier.Hierarchy,
    prices: pl.DataFrame | None,
    job: JobSpec,
    windows: int,
    step: int | None = None,
    progress: Callable[[str], None] | None = None,
    calendar: pl.DataFrame | None = None,
    prior_base: pl.DataFrame | None = None,
) -> Backtest:
    """`windows` rolling origins, `step` periods apart (default: the horizon), each forecasting `job.horizon` ahead;
    every model once per window (the libraries' cross-validation), then the nested pass (forecasting.evaluate.nested):
    each window published with the plan chosen from the windows before it. `prior_base`: Base rows of an earlier
    backtest (as the nightly run would find it published), which windows calibrate on with `calibration: backtest`
    beside this backtest's own earlier windows."""
    step = step or job.horizon
    say = progress or (lambda message: None)
    closed = job.closed_periods
    cutoffs = window_cutoffs(hierarchy.Y_df, windows, step, job.horizon)
    # Series too short at the first cutoff for their level's models (launched later, or too recently) get the launch
    # models in every window (forecasting.models.young); the rest are cross-validated by the libraries.
    routes = young.route(hierarchy, job, until=cutoffs[0])
    job = routes.job
    # Models train on closed days imputed; they are scored on the raw actuals (joined back below).
    Y_agg, Y_bottom = model_inputs(hierarchy, job)
    bottom_members = hierarchy.members.filter(pl.col("level") == hierarchy.bottom)
    groups = []
    Y_agg_all = Y_agg
    Y_agg = Y_agg.filter(~pl.col("unique_id").is_in(routes.young_ids.implode()))
    if Y_agg.height and job.models.aggregate_models:
        names = job.models.aggregate_models
        say(f"cross-validating {Y_agg['unique_id'].n_unique()} aggregate series ({', '.join(names)})")
        members = hierarchy.members.filter(pl.col("level") != hierarchy.bottom)
        exog = features.exogenous(members, None, calendar, job, bottom=False)
        groups.append(_group_cv(Y_agg, job, names, exog, True, windows, step))
    names = job.models.bottom_models
    established = Y_bottom.filter(~pl.col("unique_id").is_in(routes.young_ids.implode()))
    if names and established.height:
        say(f"cross-validating {established['unique_id'].n_unique()} {hierarchy.bottom} series ({', '.join(names)})")
        exog = features.exogenous(bottom_members, prices, calendar, job, bottom=True)
        groups.append(_group_cv(established, job, names, exog, False, windows, step))
    if routes.young.height:
        say(f"{routes.young.height} series shorter than {routes.need} periods at the first cutoff: launch models")
        launch_inputs = pl.concat([Y_agg_all, Y_bottom])
        groups_of, keys = young.parent_groups(hierarchy), launch_lightgbm.static_keys(hierarchy)
        fc, fit = young.launch_backtest(launch_inputs, routes.young, groups_of, job, cutoffs, keys)
        groups.append((trading_days.in_units(fc, job, False), trading_days.in_units(fit, job, False)))
    forecasts = transforms.zero_closed_days(pl.concat([g[0] for g in groups], how="diagonal_relaxed"), closed, ["y"])
    fitted = pl.concat([g[1] for g in groups], how="diagonal_relaxed")
    forecasts, fitted = with_combinations(forecasts, fitted, job)
    fitted = young.pad_backtest_fits(fitted, hierarchy)
    served = young.served_by(forecasts, routes.young) if routes.young.height else None
    actuals = forecasts.select(KEYS).join(hierarchy.Y_df.select("unique_id", "ds", "y"), on=["unique_id", "ds"])
    bottom_prices = features.price_features(prices, bottom_members) if prices is not None else None
    weigh = partial(window_weights, hierarchy, bottom_prices, job)

    def score(rows: pl.DataFrame, by: str, kind: str) -> pl.DataFrame:
        return scores(rows, by, hierarchy.Y_df, weigh, kind, job.season_length).windows

    candidates = hier.level_of(hierarchy.members, wide_to_long(forecasts, job.levels, KEYS)).join(
        actuals, on=KEYS, how="left"
    )
    candidate_scores = scores(candidates, "model", hierarchy.Y_df, weigh, "base", job.season_length)
    context = nested.Context(
        hierarchy, job, forecasts, fitted, actuals, candidate_scores.windows, score, prior_base, young=served
    )
    passed = nested.run_windows(context, say)
    reconciled_scores = pl.concat(passed.reconciled_scores)
    raw_published = pl.concat(passed.raw_published)
    final = plans.choose(passed.base_scores[0], reconciled_scores, raw_published, cutoffs, job, context.young_ids)
    base_rows = pl.concat(passed.base, how="diagonal_relaxed")
    final.base_wape = plans.base_wape(base_rows)
    say(
        f"the plan for the next run: Base {final.base}, published {final.method}"
        + (f", fallback {final.fallback}" if final.fallback else "")
    )
    scored = job.backtest.scored_windows(len(cutoffs))
    nested_rows = pl.concat(passed.published).filter(pl.col("cutoff").is_in(cutoffs[-scored:]))
    in_sample = nested.in_sample_published(context, passed, final).filter(pl.col("cutoff").is_in(cutoffs[-scored:]))
    reconciled_long = mark_published(pl.concat(passed.reconciled), pl.concat(passed.published))
    parts = [
        candidate_scores,
        scores(base_rows, "model", hierarchy.Y_df, weigh, "base", job.season_length),
        scores(
            reconciled_long.filter(pl.col("method") != BASE),
            "method",
            hierarchy.Y_df,
            weigh,
            "reconciled",
            job.season_length,
        ),
        scores(
            nested_rows.with_columns(pl.lit(NESTED).alias("method")),
            "method",
            hierarchy.Y_df,
            weigh,
            "published",
            job.season_length,
        ),
        scores(
            in_sample.with_columns(pl.lit(IN_SAMPLE).alias("method")),
            "method",
            hierarchy.Y_df,
            weigh,
            "published",
            job.season_length,
        ),
    ]
    metrics = pl.concat([p.levels for p in parts]).sort("level", "kind", "model")
    # The members first: each scored series' level and keys lead its row, as in every other output table.
    per_series = hierarchy.members.join(pl.concat([p.series for p in parts]).drop("level"), on="unique_id")
    base_long = pl.concat([candidates, base_rows.select(candidates.columns)])
    window_metrics = pl.concat([p.windows for p in parts], how="diagonal_relaxed").sort(
        "level", "kind", "model", "cutoff"
    )
    return Backtest(
        base_long,
        reconciled_long,
        metrics,
        final.base,
        per_series.sort("level", "unique_id", "kind", "model"),
        final,
        passed.plans,
        window_metrics,
        context.notes,
        young.split_scores(per_series, served if served is not None else routes.young, hierarchy.bottom),
    )


NESTED = "nested"  # the published forecast of each scored window, its plan chosen from the windows before it
IN_SAMPLE = "in-sample choice"  # the same windows published with the plan chosen from all windows


def window_cutoffs(Y_df: pl.DataFrame, windows: int, step: int, horizon: int) -> list:
    """The cutoffs the libraries' cross-validation uses: the last period minus the horizon, `step` apart."""
    grid = Y_df["ds"].unique().sort()
    last = grid.len() - 1 - horizon
    positions = [last - step * k for k in reversed(range(windows))]
    if positions[0] < 0:
        from forecasting.job.errors import InputError

        raise InputError(f"{windows} backtest windows of {horizon}, {step} apart, reach before the first period")
    return [grid[p] for p in positions]


def mark_published(reconciled: pl.DataFrame, published: pl.DataFrame) -> pl.DataFrame:
    """Every method's rows of every window, the published ones (with the plan's interval factors) marked; a level
    published as Base adds its Base rows as method Base."""
    keys = ["unique_id", "ds", "cutoff", "method"]
    others = reconciled.join(published.select(keys), on=keys, how="anti")
    return pl.concat([others, published.select(reconciled.columns)]).sort(
        "level", "unique_id", "method", "cutoff", "ds"
    )


def window_weights(
    hierarchy: hier.Hierarchy, prices: pl.DataFrame | None, job: JobSpec, history: pl.DataFrame
) -> pl.DataFrame:
    """WRMSSE weights for one window: the organizers' official weights when the job names the file, else the sales
    of the last `horizon` periods before the cutoff (dollar sales with prices, units without), as M5 weighed."""
    if job.official_weights is not None:
        return ev.m5_official_weights(job.official_weights_path())
    bottom = history.filter(pl.col("unique_id").is_in(hierarchy.ids(hierarchy.bottom)))
    return ev.sales_weights(bottom, hierarchy.S, hierarchy.members, job.horizon, prices)
