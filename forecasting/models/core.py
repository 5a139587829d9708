"""Base forecasts of every model the job runs, at every level: the orchestrator over the model families.

Aggregate levels get the job's `aggregate_models` (local statistical models, and LightGBMs shared across them);
the bottom level its `bottom_models` (global LightGBM with price, cheap local and intermittent models). Calendar
features (events, SNAP) feed every LightGBM. Forecasts come back in units (trading-day adjustment undone), closed
days at 0, with the automatic combinations (Mean, Median) and the job's named ones added.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import polars as pl

from forecasting.data import features, trading_days, transforms
from forecasting.data.hierarchy import Hierarchy
from forecasting.job.errors import NOT_THE_DATA, MethodError, one_line
from forecasting.job.schema import JobSpec
from forecasting.models import engines, launch_lightgbm, registry, young
from forecasting.models.combinations import add_automatic, add_combinations
from forecasting.models.frames import LevelForecast, combine
from forecasting.models.inputs import model_inputs


def forecast_group(
    Y: pl.DataFrame,
    names: list[str],
    aggregate: bool,
    hierarchy: Hierarchy,
    prices: pl.DataFrame | None,
    calendar: pl.DataFrame | None,
    job: JobSpec,
    explain: bool = False,
) -> list[LevelForecast]:
    """Every model in `names` over the series of Y (one group: the aggregate levels, or the bottom one); `explain`:
    with the LightGBMs' drivers, in units like the forecasts."""
    parts = []
    local = [n for n in names if registry.is_local(n)]
    if local:
        with failing_on(local, Y, aggregate):
            parts.append(engines.statistical_forecast(Y, job, local))
    lightgbms = [n for n in job.models.lightgbm_names if n in names]
    if lightgbms:
        members = hierarchy.members.filter(pl.col("unique_id").is_in(Y["unique_id"].unique().implode()))
        exog = features.exogenous(members, prices, calendar, job, bottom=not aggregate)
        for name in lightgbms:
            with failing_on([name], Y, aggregate):
                parts.append(engines.lightgbm_forecast(Y, job, exog, aggregate, name, explain))
    units = partial(trading_days.in_units, job=job, aggregate=aggregate)
    return [
        LevelForecast(units(p.forecasts), units(p.fitted), p.models, {m: units(d) for m, d in p.drivers.items()})
        for p in parts
    ]


@contextmanager
def failing_on(models: list[str], Y: pl.DataFrame, aggregate: bool) -> Iterator[None]:
    """A model that fails inside its library (on data the gate passed) fails the run with one message naming the
    models and the series they were fitted on; the library's traceback stays on the exception for the log."""
    try:
        yield
    except NOT_THE_DATA:
        raise
    except Exception as exc:
        ids = Y["unique_id"].unique().sort()
        which = f"{'aggregate' if aggregate else 'bottom'} series ({ids.len()}, e.g. {', '.join(ids.head(3))})"
        raise MethodError(
            f"{', '.join(models)} failed on the {which}: {one_line(str(exc)) or type(exc).__name__}"
        ) from exc


def forecast_levels(
    hierarchy: Hierarchy,
    prices: pl.DataFrame | None,
    calendar: pl.DataFrame | None,
    job: JobSpec,
    routes: young.Routes | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(forecasts, in-sample fits), wide, of every model and combination the job runs, at every level."""
    forecasts, fitted, _ = explained_levels(hierarchy, prices, calendar, job, explain=False, routes=routes)
    return forecasts, fitted


def explained_levels(
    hierarchy: Hierarchy,
    prices: pl.DataFrame | None,
    calendar: pl.DataFrame | None,
    job: JobSpec,
    explain: bool,
    routes: young.Routes | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, pl.DataFrame]]:
    """forecast_levels, and with `explain` each LightGBM's wide drivers at every level it ran (model -> frame;
    closed days at 0 like the forecasts; a family a group's features lack, such as price above the bottom, null).
    Each group runs the models it can (`routes`, forecasting.models.young); bottom series too short for them get the
    launch models, fitted on every bottom series as peers."""
    routes = routes or young.route(hierarchy, job)
    job = routes.job
    spec = job.models
    Y_agg, Y_bottom = model_inputs(hierarchy, job)
    short = Y_bottom["unique_id"].is_in(routes.young_ids.implode())
    groups = []
    if spec.bottom_models and not short.all():
        established = Y_bottom.filter(~short) if short.any() else Y_bottom
        groups.append(forecast_group(established, spec.bottom_models, False, hierarchy, prices, calendar, job, explain))
    upper_short = Y_agg["unique_id"].is_in(routes.young_ids.implode())
    if Y_agg.height and spec.aggregate_models and not upper_short.all():
        upper = Y_agg.filter(~upper_short) if upper_short.any() else Y_agg
        groups.insert(0, forecast_group(upper, spec.aggregate_models, True, hierarchy, prices, calendar, job, explain))
    if routes.young.height:
        launches = young.launch_forecast(
            pl.concat([Y_agg, Y_bottom]),
            routes.young,
            young.parent_groups(hierarchy),
            job,
            max(routes.need - 1, 1),
            launch_lightgbm.static_keys(hierarchy),
        )
        units = partial(trading_days.in_units, job=job, aggregate=False)
        groups.append([LevelForecast(units(launches.forecasts), units(launches.fitted), launches.models)])
    forecasts, fitted = combine(groups)
    forecasts = transforms.zero_closed_days(forecasts, job.closed_periods)
    drivers: dict[str, list[pl.DataFrame]] = {}
    for part in (p for group in groups for p in group):
        for model, frame in part.drivers.items():
            drivers.setdefault(model, []).append(frame)
    explained = {
        m: transforms.zero_closed_days(pl.concat(f, how="diagonal_relaxed"), job.closed_periods)
        for m, f in drivers.items()
    }
    return *with_combinations(forecasts, fitted, job), explained


def with_combinations(forecasts: pl.DataFrame, fitted: pl.DataFrame, job: JobSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The automatic Mean and Median of the models run, then the job's named combinations (forecasts and fits); the
    nightly run and the backtest share it."""
    run = list(dict.fromkeys([*job.models.aggregate_models, *job.models.bottom_models]))
    if job.models.automatic_combinations:
        forecasts = add_automatic(forecasts, run, job.levels)
        fitted = add_automatic(fitted, run, job.levels, with_intervals=False)
    forecasts = add_combinations(forecasts, job.models.combinations, job.levels)
    fitted = add_combinations(fitted, job.models.combinations, job.levels, with_intervals=False)
    return forecasts, fitted
