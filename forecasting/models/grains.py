"""Base forecasts of the coarse time grains (week, 4-week): every series of every level summed into the grain's
periods by hierarchicalforecast's `aggregate_temporal`, then statsforecast's models per grain, forecast and
cross-validated over rolling origins one grain horizon apart (the windows the grain's Base is chosen on, per level).

Why statistical models only: a coarse grain has few periods (277 weeks, 69 four-week periods of M5) and few
series (the aggregates), where the backtests of the daily jobs already favour ETS / Theta; the LightGBMs' day lags
do not translate."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import polars as pl
from hierarchicalforecast.utils import aggregate_temporal
from scipy.stats import poisson
from statsforecast import StatsForecast
from statsforecast.models import AutoETS, AutoTheta, Naive, SeasonalNaive
from utilsforecast.losses import rmsse

from forecasting.job.grains import CoarseGrain, GrainsSpec
from forecasting.job.models import BASE
from forecasting.job.schema import JobSpec
from forecasting.models.statistical import worker_processes_from_forkserver

ETS_MAX_SEASON = 24  # statsforecast's ETS refuses longer seasons (52 weeks): non-seasonal ETS there


@dataclass
class GrainBase:
    """One coarse grain's history, forecasts (every model with intervals, and Base per series), the rolling-origin
    forecasts Base is chosen on, and the model chosen per level."""

    grain: CoarseGrain
    history: pl.DataFrame  # unique_id, ds (period start), y
    forecasts: pl.DataFrame  # unique_id, ds, <model>, <model>-lo-L / -hi-L, Base, Base-lo-L / -hi-L
    windows: pl.DataFrame  # unique_id, ds, cutoff, y, <model>..., Base
    choice: dict[str, str]  # level -> model behind Base
    scores: pl.DataFrame  # level, model, rmsse (mean over the windows' series)
    fitted: pl.DataFrame | None = None  # unique_id, ds, y, Base: in-sample (TopDown's bootstrap intervals)
    young: list[str] = field(default_factory=list)  # series too short for the grain's models: Flat (young_rows)


def grain_histories(Y_df: pl.DataFrame, grains: GrainsSpec) -> dict[str, pl.DataFrame]:
    """Each coarse grain's history of every series (unique_id, ds = the period's first day, y), its periods
    counted back from the last day so that the last one ends on it. A series' period that starts before its first
    day (a partial period) is left out."""
    largest = max(g.periods for g in grains.coarser)
    last = Y_df["ds"].max()
    first_kept = Y_df["ds"].min()
    span = (last - first_kept).days + 1
    first_kept = first_kept + timedelta(days=span % largest)
    days = Y_df.filter(pl.col("ds") >= first_kept).with_columns(pl.col("ds").cast(pl.Datetime("us")))
    spec = {g.name: g.periods for g in reversed(grains.coarser)} | {grains.base: 1}
    summed, _, _ = aggregate_temporal(df=days, spec=spec, aggregation_type="global")
    starts = Y_df.group_by("unique_id").agg(pl.col("ds").min().alias("first"))
    out = {}
    for grain in grains.coarser:
        rows = summed.filter(pl.col("temporal_id").str.starts_with(f"{grain.name}-"))
        start = pl.col("ds").cast(pl.Date) - pl.duration(days=grain.periods - 1)
        rows = rows.select("unique_id", start.alias("ds"), "y").join(starts, on="unique_id")
        out[grain.name] = rows.filter(pl.col("ds") >= pl.col("first")).drop("first").sort("unique_id", "ds")
    return out


def grain_models(grain: CoarseGrain) -> list[object]:
    """The grain's statsforecast models, named as the job names them."""
    season = grain.season_length
    build = {
        "AutoETS": lambda: AutoETS(season_length=season if season <= ETS_MAX_SEASON else 1, alias="AutoETS"),
        "AutoTheta": lambda: AutoTheta(season_length=season, alias="AutoTheta"),
        "SeasonalNaive": lambda: SeasonalNaive(season_length=season, alias="SeasonalNaive"),
        "Naive": lambda: Naive(alias="Naive"),
    }
    return [build[name]() for name in grain.models]


def _statsforecast(grain: CoarseGrain, job: JobSpec) -> StatsForecast:
    return StatsForecast(models=grain_models(grain), freq=f"{grain.periods}d", n_jobs=job.n_jobs)


def grain_need(grain: CoarseGrain, windows: int) -> int:
    """Periods a series needs at the grain for its models and rolling origins: the origins' horizons and a season
    before them (SeasonalNaive), plus one."""
    return windows * grain.horizon + grain.season_length + 1


def young_at(history: pl.DataFrame, members: pl.DataFrame, need: int) -> list[str]:
    """Series of `members` with fewer than `need` whole periods in the grain's `history` (none at all included)."""
    counts = history.group_by("unique_id").len()
    ok = counts.filter(pl.col("len") >= need)["unique_id"].implode()
    return members.filter(~pl.col("unique_id").is_in(ok))["unique_id"].to_list()


def young_rows(days: pl.DataFrame, ids: list[str], periods: int, starts: list, levels: list[int]) -> pl.DataFrame:
    """Flat, as the day grain serves a young series it has no launch curve for (docs/new-series.md), in the grain's
    periods: the series' mean daily sales so far (`days`: unique_id, ds, y up to the last day) times the period's
    days, for every period start in `starts`; intervals from Poisson quantiles of that mean (unique_id, ds, Base,
    Base-lo/hi). A series without a day so far gets 0."""
    rate = days.filter(pl.col("unique_id").is_in(ids)).group_by("unique_id").agg(pl.col("y").mean().alias("rate"))
    rows = (
        pl.DataFrame({"unique_id": ids}, schema={"unique_id": pl.String})
        .join(rate, on="unique_id", how="left")
        .join(pl.DataFrame({"ds": starts}).cast({"ds": pl.Date}), how="cross")
        .with_columns((pl.col("rate").fill_null(0.0) * periods).cast(pl.Float64).alias(BASE))
    )
    mean = np.maximum(rows[BASE].to_numpy(), 1e-9)
    bounds = []
    for lv in levels:
        lo, hi = (1 - lv / 100) / 2, 1 - (1 - lv / 100) / 2
        bounds += [
            pl.min_horizontal(pl.Series(poisson.ppf(lo, mean)), pl.col(BASE)).alias(f"{BASE}-lo-{lv}"),
            pl.max_horizontal(pl.Series(poisson.ppf(hi, mean)), pl.col(BASE)).alias(f"{BASE}-hi-{lv}"),
        ]
    return rows.with_columns(bounds).drop("rate")


def grain_windows(history: pl.DataFrame, grain: CoarseGrain, job: JobSpec, windows: int) -> pl.DataFrame:
    """statsforecast's cross_validation: `windows` origins one grain horizon apart, the last ending on the last
    period of `history` (unique_id, ds, cutoff, y, <model>...)."""
    sf = _statsforecast(grain, job)
    with worker_processes_from_forkserver():
        out = sf.cross_validation(df=history, h=grain.horizon, step_size=grain.horizon, n_windows=windows)
    return out.with_columns(pl.col("ds").cast(pl.Date), pl.col("cutoff").cast(pl.Date))


def young_windows(
    cv: pl.DataFrame, history: pl.DataFrame, days: pl.DataFrame, ids: list[str], grain: CoarseGrain
) -> pl.DataFrame:
    """The young series' Flat at each rolling origin of `cv` (from their days up to the origin's last day), with
    their actuals (0 in a period before a series began): unique_id, ds, cutoff, y, Base."""
    frames = []
    for cutoff in cv["cutoff"].unique().sort().to_list():
        starts = cv.filter(pl.col("cutoff") == cutoff)["ds"].unique().sort().to_list()
        seen = days.filter(pl.col("ds") < cutoff + timedelta(days=grain.periods))
        rows = young_rows(seen, ids, grain.periods, starts, []).with_columns(pl.lit(cutoff).alias("cutoff"))
        frames.append(rows)
    out = pl.concat(frames).join(history, on=["unique_id", "ds"], how="left")
    return out.with_columns(pl.col("y").fill_null(0.0)).select("unique_id", "ds", "cutoff", "y", BASE)


def rmsse_by_level(
    windows: pl.DataFrame, history: pl.DataFrame, members: pl.DataFrame, models: list[str]
) -> pl.DataFrame:
    """Mean over the windows' series of RMSSE (utilsforecast's, per series and cutoff; scale: the mean squared step
    of each series' history before the first window), per level and model: level, model, rmsse."""
    train = history.filter(pl.col("ds") <= windows["cutoff"].min())
    per_series = rmsse(windows, models, seasonality=1, train_df=train, cutoff_col="cutoff")
    long = per_series.unpivot(index=["unique_id", "cutoff"], on=models, variable_name="model", value_name="rmsse")
    long = long.filter(pl.col("rmsse").is_finite()).join(members.select("unique_id", "level"), on="unique_id")
    return long.group_by("level", "model").agg(pl.col("rmsse").mean()).sort("level", "model")


def choose_by_level(scores: pl.DataFrame, levels: list[str], models: list[str]) -> dict[str, str]:
    """Per level, the model with the lowest mean RMSSE (the first listed when a level has no score)."""
    best = scores.sort("rmsse").group_by("level", maintain_order=True).first()
    chosen = dict(best.select("level", "model").iter_rows())
    return {level: chosen.get(level, models[0]) for level in levels}


def with_base(wide: pl.DataFrame, members: pl.DataFrame, choice: dict[str, str], suffixes: list[str]) -> pl.DataFrame:
    """A Base column (and its interval columns, `suffixes` such as -lo-80) holding each series' level's model."""
    out = wide.join(members.select("unique_id", "level"), on="unique_id", how="left")
    columns = []
    for suffix in ["", *suffixes]:
        expr = pl.lit(None, dtype=pl.Float64)
        for level, model in choice.items():
            expr = pl.when(pl.col("level") == level).then(pl.col(f"{model}{suffix}")).otherwise(expr)
        columns.append(expr.alias(f"{BASE}{suffix}"))
    return out.with_columns(columns).drop("level")


def grain_base(
    history: pl.DataFrame, grain: CoarseGrain, members: pl.DataFrame, job: JobSpec, windows: int, days: pl.DataFrame
) -> GrainBase:
    """One coarse grain: the rolling-origin windows, each level's model chosen on them, the forecasts. Series too
    short for them (`grain_need`) are young at the grain: Flat from their days, in the windows and ahead."""
    names = list(grain.models)
    young = young_at(history, members, grain_need(grain, windows))
    established = history.filter(~pl.col("unique_id").is_in(young))
    cv = grain_windows(established, grain, job, windows)
    scores = rmsse_by_level(cv, established, members, names)
    levels = members["level"].unique(maintain_order=True).to_list()
    choice = choose_by_level(scores, levels, names)
    cv = with_base(cv, members, choice, [])
    if young:
        cv = pl.concat([cv, young_windows(cv, history, days, young, grain)], how="diagonal_relaxed")
    forecasts, fitted = refit_base(history, grain, members, choice, job, grain.horizon, names, days, young)
    return GrainBase(grain, history, forecasts, cv, choice, scores, fitted, young)


def refit_base(
    history: pl.DataFrame,
    grain: CoarseGrain,
    members: pl.DataFrame,
    choice: dict[str, str],
    job: JobSpec,
    h: int,
    models: list[str] | None = None,
    days: pl.DataFrame | None = None,
    young: list[str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The grain's `models` (default: the ones `choice` names) fit on `history` and forecast `h` periods after it,
    with Base per level from `choice` (the guard of the temporal step replays a run's choice at past cutoffs), and
    the `young` series (default: those short of `grain_need`) Flat from their `days`: (unique_id, ds, <model>...,
    Base, Base-lo/hi) and the in-sample fits (unique_id, ds, y, Base; a young series' are 0: no residuals)."""
    assert job.grains is not None
    spec = grain.model_copy(update={"models": models or sorted(set(choice.values()))})
    young = young_at(history, members, grain_need(grain, job.grains.windows)) if young is None else young
    sf = _statsforecast(spec, job)
    with worker_processes_from_forkserver():
        established = history.filter(~pl.col("unique_id").is_in(young))
        forecasts = sf.forecast(df=established, h=h, level=job.levels, fitted=True)
        fitted = sf.forecast_fitted_values()
    suffixes = [f"-{side}-{lv}" for lv in job.levels for side in ("lo", "hi")]
    forecasts = with_base(forecasts.with_columns(pl.col("ds").cast(pl.Date)), members, choice, suffixes)
    fitted = with_base(fitted.with_columns(pl.col("ds").cast(pl.Date)), members, choice, [])
    if young:
        assert days is not None, "young series at a coarse grain need their days"
        last = history["ds"].max()
        starts = [last + timedelta(days=grain.periods * k) for k in range(1, h + 1)]
        flat = young_rows(days, young, grain.periods, starts, job.levels)
        forecasts = pl.concat([forecasts, flat], how="diagonal_relaxed")
        # No in-sample residuals of their own (TopDown's bootstrap): 0 at every fitted period.
        pad = pl.DataFrame({"unique_id": young}).join(fitted.select("ds").unique(), how="cross")
        fitted = pl.concat([fitted, pad.with_columns(pl.lit(0.0).alias("y"), pl.lit(0.0).alias(BASE))], how="diagonal")
    return forecasts, fitted.select("unique_id", "ds", "y", BASE)


def forecast_grains(Y_df: pl.DataFrame, members: pl.DataFrame, job: JobSpec) -> dict[str, GrainBase]:
    """Every coarse grain of the job: its history from the days, its Base chosen per level, its forecasts."""
    assert job.grains is not None
    histories = grain_histories(Y_df, job.grains)
    return {
        grain.name: grain_base(histories[grain.name], grain, members, job, job.grains.windows, Y_df)
        for grain in job.grains.coarser
    }
