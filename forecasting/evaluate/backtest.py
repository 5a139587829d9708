"""Rolling-origin backtests with the libraries' own cross-validation, every window reconciled.

statsforecast and mlforecast `cross_validation` give each window's forecasts and (with fitted=True) each window's
in-sample fits; the Base column is chosen per series as in the nightly run, and every window is reconciled with the
same hierarchicalforecast methods, so the backtest scores exactly what the nightly job would have published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial

import polars as pl
from statsforecast import StatsForecast

from forecasting.data import features, trading_days, transforms
from forecasting.data import hierarchy as hier
from forecasting.evaluate import metrics as ev
from forecasting.evaluate.choice import best_models
from forecasting.evaluate.scoring import scores
from forecasting.job.schema import PANDAS_FREQ, JobSpec
from forecasting.models import lightgbm as gbm
from forecasting.models import registry
from forecasting.models.base import BASE, base_columns, choose_base, select_base
from forecasting.models.frames import add_combinations, wide_to_long
from forecasting.models.inputs import model_inputs
from forecasting.models.statistical import worker_processes_from_forkserver
from forecasting.reconcile import core as rec
from forecasting.reconcile.calibration import out_of_sample_errors

KEYS = ["unique_id", "ds", "cutoff"]


@dataclass
class Backtest:
    base: pl.DataFrame  # long: unique_id, level, region, warehouse, sku, cutoff, ds, y, model, mean, lo/hi
    reconciled: pl.DataFrame  # long: ... , method, published, mean, lo/hi, y
    metrics: pl.DataFrame  # level, kind, model, mae, rmse, rmsse, bias, coverage_80/95, spl, wrmsse, wspl, ...
    base_models: dict[str, str]  # level -> the model behind Base in these windows (what was reconciled)
    series_metrics: pl.DataFrame  # unique_id, level, keys, kind, model, the same metrics per series over the windows


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
    """`windows` rolling origins, `step` periods apart (default: the horizon), each forecasting `job.horizon` ahead.
    `prior_base`: Base rows of an earlier backtest (as the nightly run would find it published), which windows
    calibrate on with `calibration: backtest` beside this backtest's own earlier windows."""
    step = step or job.horizon
    say = progress or (lambda message: None)
    closed = job.closed_periods
    # Models train on closed days imputed; they are scored on the raw actuals (joined back below).
    Y_agg, Y_bottom = model_inputs(hierarchy, job)
    bottom_members = hierarchy.members.filter(pl.col("level") == hierarchy.bottom)
    groups = []
    if Y_agg.height:
        names = job.models.aggregate_models
        say(f"cross-validating {Y_agg['unique_id'].n_unique()} aggregate series ({', '.join(names)})")
        members = hierarchy.members.filter(pl.col("level") != hierarchy.bottom)
        exog = features.exogenous(members, None, calendar, job, bottom=False)
        groups.append(_group_cv(Y_agg, job, names, exog, True, windows, step))
    names = job.models.bottom_models
    say(f"cross-validating {Y_bottom['unique_id'].n_unique()} {hierarchy.bottom} series ({', '.join(names)})")
    exog = features.exogenous(bottom_members, prices, calendar, job, bottom=True)
    groups.append(_group_cv(Y_bottom, job, names, exog, False, windows, step))
    forecasts = transforms.zero_closed_days(pl.concat([g[0] for g in groups], how="diagonal_relaxed"), closed, ["y"])
    fitted = pl.concat([g[1] for g in groups], how="diagonal_relaxed")
    forecasts = add_combinations(forecasts, job.models.combinations, job.levels)
    fitted = add_combinations(fitted, job.models.combinations, job.levels, with_intervals=False)
    actuals = forecasts.select(KEYS).join(hierarchy.Y_df.select("unique_id", "ds", "y"), on=["unique_id", "ds"])
    bottom_prices = features.price_features(prices, bottom_members) if prices is not None else None
    weigh = partial(window_weights, hierarchy, bottom_prices, job)
    candidates = hier.level_of(hierarchy.members, wide_to_long(forecasts, job.levels, KEYS)).join(
        actuals, on=KEYS, how="left"
    )
    candidate_scores = scores(candidates, "model", hierarchy.Y_df, weigh, "base", job.season_length)
    candidate_metrics = candidate_scores.levels
    # With choose_from_backtest the nightly run takes Base per level from these very scores, so the windows
    # reconcile that Base (not the job file's): the reconciliation chosen from them is chosen for what it will get.
    primary = dict(job.models.primary)
    if job.models.choose_from_backtest:
        primary |= best_models(candidate_metrics, job)
    choice = choose_base(hierarchy, job, primary)
    forecasts = select_base(forecasts, choice, job.levels)
    fitted = select_base(fitted, choice, job.levels, with_intervals=False)
    base_rows = hier.level_of(
        hierarchy.members, wide_to_long(forecasts.select(*KEYS, *base_columns(job.levels)), job.levels, KEYS)
    ).join(actuals, on=KEYS, how="left")

    earlier_base = _calibration_rows(base_rows, prior_base, job)
    reconciled = []
    cutoffs = sorted(forecasts["cutoff"].unique().to_list())
    for i, cutoff in enumerate(cutoffs, 1):
        say(f"reconciling window {i}/{len(cutoffs)} (cutoff {cutoff})")
        window_fc = forecasts.filter(pl.col("cutoff") == cutoff)
        window_fit = fitted.filter(pl.col("cutoff") == cutoff).drop("cutoff")
        calibration, source = window_calibration(hierarchy, earlier_base, window_fit, job, cutoff)
        part = transforms.zero_closed_days(rec.reconcile(hierarchy, window_fc, calibration, job), closed)
        reconciled.append(part.with_columns(pl.lit(cutoff).alias("cutoff"), pl.lit(source).alias("calibration")))
    published = rec.publish_label(job)
    reconciled_long = (
        hier.level_of(hierarchy.members, pl.concat(reconciled))
        .join(actuals, on=KEYS, how="left")
        .with_columns((pl.col("method") == published).alias("published"))
    )
    parts = [
        candidate_scores,
        scores(base_rows, "model", hierarchy.Y_df, weigh, "base", job.season_length),
        scores(reconciled_long, "method", hierarchy.Y_df, weigh, "reconciled", job.season_length),
    ]
    metrics = pl.concat([p.levels for p in parts]).sort("level", "kind", "model")
    # The members first: each scored series' level and keys lead its row, as in every other output table.
    per_series = hierarchy.members.join(pl.concat([p.series for p in parts]).drop("level"), on="unique_id")
    base_long = pl.concat([candidates, base_rows.select(candidates.columns)])
    return Backtest(
        base_long, reconciled_long, metrics, primary, per_series.sort("level", "unique_id", "kind", "model")
    )


def _calibration_rows(base_rows: pl.DataFrame, prior_base: pl.DataFrame | None, job: JobSpec) -> pl.DataFrame | None:
    """The Base rows windows may calibrate on (this backtest's and `prior_base`'s), only when the job calibrates on
    backtests: an earlier backtest's frame holds every candidate model (millions of rows at SKU level)."""
    if job.reconciliation.calibration != "backtest":
        return None
    columns = ["unique_id", "ds", "cutoff", "model", "y", "mean"]
    parts = [base_rows] if prior_base is None else [prior_base, base_rows]
    return pl.concat([part.filter(pl.col("model") == BASE).select(columns) for part in parts])


def window_calibration(
    hierarchy: hier.Hierarchy, base_rows: pl.DataFrame | None, window_fit: pl.DataFrame, job: JobSpec, cutoff: date
) -> tuple[pl.DataFrame, str]:
    """The errors one window's reconciled intervals are calibrated on, as the nightly run would have had them at
    that cutoff: its in-sample fits, or with `calibration: backtest` the out-of-sample Base errors of the earlier
    windows (periods up to the cutoff; in-sample while fewer than 2 per series). So a backtest of a job that
    calibrates on backtests scores those intervals out of sample, window by window."""
    if job.reconciliation.calibration == "backtest" and base_rows is not None:
        earlier = base_rows.filter(pl.col("cutoff") < cutoff)
        errors = out_of_sample_errors(earlier, cutoff, hierarchy.members.height)
        if errors is not None:
            return errors, "earlier windows"
    return window_fit, "in-sample fits"


def window_weights(
    hierarchy: hier.Hierarchy, prices: pl.DataFrame | None, job: JobSpec, history: pl.DataFrame
) -> pl.DataFrame:
    """WRMSSE weights for one window: the organizers' official weights when the job names the file, else the sales
    of the last `horizon` periods before the cutoff (dollar sales with prices, units without), as M5 weighed."""
    if job.official_weights is not None:
        return ev.m5_official_weights(job.official_weights_path())
    bottom = history.filter(pl.col("unique_id").is_in(hierarchy.ids(hierarchy.bottom)))
    return ev.sales_weights(bottom, hierarchy.S, hierarchy.members, job.horizon, prices)
