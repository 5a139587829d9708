"""Drivers of the LightGBM forecasts: TreeSHAP on the rows mlforecast predicted with sums to each row's raw score,
the effects in units rebuild mlforecast's own forecast, and Base's drivers sum to Base; on real M5 slices."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from support import slice_job

from forecasting import pipeline
from forecasting.data import features
from forecasting.job.models import BASE
from forecasting.models import drivers
from forecasting.models.inputs import model_inputs
from forecasting.models.lightgbm import lightgbm_setups, static_features, weight_column


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    job = slice_job(tmp_path_factory.mktemp("drivers"), n_items=25)
    loaded = pipeline.load(job)
    hierarchy = pipeline.aggregate(pipeline.validate(loaded, job), job)
    return job, loaded, hierarchy


@pytest.fixture(scope="module")
def fits(loaded):
    """The bottom (tweedie) and aggregate (standardised) LightGBMs of the slice, fitted once and predicted with the
    feature rows captured."""
    return {aggregate: _fitted(*loaded, aggregate) for aggregate in (False, True)}


def _fitted(job, loaded, hierarchy, aggregate: bool):
    Y_agg, Y_bottom = model_inputs(hierarchy, job)
    Y = Y_agg if aggregate else Y_bottom
    members = hierarchy.members.filter(pl.col("unique_id").is_in(Y["unique_id"].unique().implode()))
    exog = features.exogenous(members, loaded.prices, loaded.calendar, job, bottom=not aggregate)
    [(_, (fcst, train, intervals))] = lightgbm_setups(Y, job, exog, aggregate)
    fcst.fit(
        train, static_features=static_features(job), prediction_intervals=intervals, weight_col=weight_column(train)
    )
    X_df = None
    if exog is not None:
        X_df = fcst.make_future_dataframe(job.horizon).join(exog, on=["unique_id", "ds"], how="left")
    capture = drivers.FeatureCapture()
    predicted = fcst.predict(h=job.horizon, X_df=X_df, before_predict_callback=capture)
    return fcst, capture, predicted


@pytest.mark.parametrize("aggregate", [False, True], ids=["bottom tweedie", "aggregate standardised"])
def test_contributions_plus_base_are_the_raw_score_of_every_predicted_row(loaded, fits, aggregate):
    job = loaded[0]
    fcst, capture, predicted = fits[aggregate]
    X = capture.rows()
    assert X.height == predicted.height == len(fcst.ts.uids) * job.horizon
    for estimator in drivers.estimators(fcst.models_["LightGBM"]):
        shap, raw = drivers.contributions(estimator, X, drivers.TREESHAP)
        np.testing.assert_allclose(shap.sum(axis=1), raw, rtol=1e-6, atol=1e-6)
        paths, _ = drivers.contributions(estimator, X, drivers.PATHS)
        np.testing.assert_allclose(paths.sum(axis=1), raw, rtol=1e-6, atol=1e-6)
        assert not np.allclose(paths, shap)  # two attributions, not one computed twice
        # the same features carry the forecast: the largest mean |contribution| is the same feature's
        assert np.abs(paths[:, :-1]).mean(axis=0).argmax() == np.abs(shap[:, :-1]).mean(axis=0).argmax()
    for method in (drivers.TREESHAP, drivers.PATHS):
        # the captured rows are the ones the forecast came from: the link of their raw score, back through the
        # target transforms, is mlforecast's forecast (explain_forecast raises otherwise)
        wide = drivers.explain_forecast(fcst, "LightGBM", capture, predicted, job, method)
        rebuilt = wide.select(pl.sum_horizontal(drivers.value_columns(wide)))
        np.testing.assert_allclose(rebuilt.to_series().to_numpy(), predicted["LightGBM"].to_numpy(), rtol=1e-6)
    families = set(drivers.value_columns(wide))
    assert {drivers.BASELINE, drivers.INTERACTIONS, drivers.RECENT_LEVEL, drivers.SEASON} <= families
    assert (drivers.PRICE in families) == (not aggregate)


def test_a_changed_feature_row_is_caught(loaded, fits):
    """The rebuild check is real: drivers of rows other than the predicted ones do not pass it."""
    fcst, capture, predicted = fits[False]
    shifted = drivers.FeatureCapture()
    shifted.steps = capture.steps[1:] + capture.steps[:1]
    with pytest.raises(AssertionError, match="differently from mlforecast"):
        drivers.explain_forecast(fcst, "LightGBM", shifted, predicted, loaded[0], drivers.PATHS)


def test_families_are_named_from_the_job():
    from forecasting.job.loading import load_job

    job = load_job("m5-daily-warehouse")
    assert drivers.family_of("lag28", job) == drivers.RECENT_LEVEL
    assert drivers.family_of("rolling_mean_lag28_window_size7", job) == drivers.RECENT_LEVEL
    assert drivers.family_of("weekday", job) == drivers.SEASON
    assert drivers.family_of("snap", job) == "snap"
    assert drivers.family_of("event_type_1=Sporting", job) == "event Sporting"
    assert drivers.family_of("days_to_event_name_1=MemorialDay", job) == "event MemorialDay"
    assert drivers.family_of("series_code", job) == drivers.IDENTITY
    assert drivers.family_of("price_ratio", job) == drivers.PRICE


def test_base_drivers_sum_to_base_for_every_series_and_period(slice_run):
    job, result = slice_run
    table = pl.read_parquet(result.run_dir / "drivers.parquet")
    base = pl.read_parquet(result.run_dir / "base_forecasts.parquet").filter(pl.col("model") == BASE)
    own = table.filter(pl.col("basis") == "own model").group_by("unique_id", "ds").agg(pl.col("effect").sum())
    joined = own.join(base.select("unique_id", "ds", "mean"), on=["unique_id", "ds"])
    assert joined.height == own.height > 0
    np.testing.assert_allclose(joined["effect"], joined["mean"], rtol=1e-6, atol=1e-9)
