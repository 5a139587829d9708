"""Contract tests (sktime style): every model of the catalogue (forecasting.job.catalogue.MODELS), run the way the
nightly job runs it, gives a full set of forecasts for exactly the series it was given, with ordered intervals, the
same numbers twice, and still does so on the shortest history it accepts."""

from __future__ import annotations

import polars as pl
import pytest
from support import check_forecast_contract, slice_job

from forecasting.data import features
from forecasting.job.catalogue import MODELS
from forecasting.models import engines, registry
from forecasting.models.frames import LevelForecast
from forecasting.pipeline import aggregate, load, validate


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A real slice of the monthly job (2 stores x 40 items) with its price features."""
    job = slice_job(tmp_path_factory.mktemp("models"))
    loaded = load(job)
    hierarchy = aggregate(validate(loaded, job), job)
    exog = features.price_features(loaded.prices, hierarchy.members.filter(pl.col("level") == "sku"))
    return job, hierarchy, exog


def series_for(name: str, hierarchy) -> pl.DataFrame:
    """The series a model of this family meets at night: the LightGBM is global over every SKU; a local model gets
    six SKUs and the warehouses (the fits are per series, so more only cost time)."""
    ids = hierarchy.ids("sku") if registry.family(name) == "lightgbm" else hierarchy.ids("sku")[:6]
    return hierarchy.Y_df.filter(pl.col("unique_id").is_in(ids + hierarchy.ids("warehouse")))


def run_model(name: str, Y: pl.DataFrame, job, exog: pl.DataFrame) -> LevelForecast:
    if registry.family(name, job) == "lightgbm":
        return engines.lightgbm_forecast(Y, job, exog, aggregate=False, name=name)
    return engines.statistical_forecast(Y, job, [name], n_jobs=1)


def test_the_catalogue_and_the_registry_agree():
    """Every catalogue entry resolves to a function; the job schema's model names are the catalogue's."""
    from forecasting.job.models import INTERMITTENT_MODELS, LIGHTGBM, STATISTICAL_MODELS

    assert {*STATISTICAL_MODELS, *INTERMITTENT_MODELS, LIGHTGBM} == set(MODELS)
    for name in MODELS:
        assert callable(registry.builder(name)), name


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_contract(prepared, name):
    job, hierarchy, exog = prepared
    Y = series_for(name, hierarchy)
    result = run_model(name, Y, job, exog)
    check_forecast_contract(result, Y, job)
    assert result.models == [name]
    assert run_model(name, Y, job, exog).forecasts.equals(result.forecasts)  # the same numbers twice


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_forecasts_the_shortest_history_it_accepts(prepared, name):
    """Cut to the fewest periods the job and the model accept (`min_history`, and for conformal intervals and lags
    their calibration windows: registry.minimum_history), every series still gets its forecast and intervals."""
    job, hierarchy, exog = prepared
    shortest = max(job.min_history, registry.minimum_history(name, job))
    Y = series_for(name, hierarchy).filter(
        pl.int_range(pl.len()).over("unique_id") >= pl.len().over("unique_id") - shortest
    )
    assert Y.group_by("unique_id").len()["len"].unique().to_list() == [shortest]
    check_forecast_contract(run_model(name, Y, job, exog), Y, job)
