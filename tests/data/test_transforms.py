"""The level-ratio target, closed days and the calendar distance features on the real daily M5 store history."""

from __future__ import annotations

from datetime import date, timedelta

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest
from mlforecast import MLForecast
from mlforecast.lag_transforms import RollingMean
from support import daily_job

from forecasting.data import features
from forecasting.data.transforms import LevelRatio, impute_closed_days, zero_closed_days
from forecasting.job.common import project_root
from forecasting.job.loading import load_job
from forecasting.job.models import ModelSpec

STORES = project_root() / "data" / "m5" / "m5_daily_store_sales.parquet"
CUTOFF = date(2016, 4, 24)  # d_1913


@pytest.fixture(scope="module")
def stores() -> pl.DataFrame:
    return (
        pl.read_parquet(STORES)
        .select(
            pl.col("store_id").alias("unique_id"),
            pl.col("date").cast(pl.Date).alias("ds"),
            pl.col("sales").cast(pl.Float64).alias("y"),
        )
        .sort("unique_id", "ds")
    )


def _ratio(shift: int = 28, window: int = 28) -> LevelRatio:
    transform = LevelRatio(shift, window)
    transform.set_column_names("unique_id", "ds", "y")
    return transform


def test_level_ratio_inverts_exactly_on_real_series(stores):
    transform = _ratio()
    z = transform.fit_transform(stores)
    assert z["y"].null_count() == 10 * (28 + 28 - 1)  # the first shift + window - 1 days of each store
    back = transform.inverse_transform(z.drop_nulls("y"))
    expected = stores.join(back.select("unique_id", "ds"), on=["unique_id", "ds"], how="semi")
    np.testing.assert_allclose(back["y"].to_numpy(), expected["y"].to_numpy(), rtol=1e-12)
    # The same with pandas frames (mlforecast passes whichever the caller used).
    pandas = _ratio().fit_transform(stores.to_pandas())
    np.testing.assert_allclose(pandas["y"].to_numpy(), z["y"].to_numpy(), equal_nan=True)


def test_level_ratio_uses_only_the_history_up_to_the_cutoff(stores):
    """The levels of the 28 days after the cutoff from a fit on the history only equal the levels a fit on the whole
    series gives those days, and rewriting every value after the cutoff changes nothing."""
    history = stores.filter(pl.col("ds") <= CUTOFF)
    ahead = stores.filter((pl.col("ds") > CUTOFF) & (pl.col("ds") <= CUTOFF + timedelta(days=28)))
    cut = _ratio()
    cut.fit_transform(history)
    full = _ratio()
    full.fit_transform(stores)
    np.testing.assert_allclose(cut.levels_for(ahead).to_numpy(), full.levels_for(ahead).to_numpy(), rtol=1e-12)
    tampered = stores.with_columns(pl.when(pl.col("ds") > CUTOFF).then(0.0).otherwise(pl.col("y")).alias("y"))
    other = _ratio()
    other.fit_transform(tampered)
    np.testing.assert_allclose(other.levels_for(ahead).to_numpy(), cut.levels_for(ahead).to_numpy(), rtol=1e-12)
    # By hand for one store: the level of cutoff + 1 is the mean of the 28 days ending 27 days before the cutoff.
    ca1 = history.filter(pl.col("unique_id") == "CA_1")["y"].to_numpy()
    first = ahead.filter(pl.col("unique_id") == "CA_1").head(1)
    assert cut.levels_for(first)[0] == pytest.approx(ca1[-28 - 27 : -27].mean())


def test_level_ratio_in_mlforecast_forecasts_on_the_sales_scale(stores):
    history = stores.filter(pl.col("ds") <= CUTOFF)
    fcst = MLForecast(
        models={"m": lgb.LGBMRegressor(n_estimators=30, verbosity=-1, n_jobs=1)},
        freq="1d",
        lags=[28, 35],
        lag_transforms={28: [RollingMean(window_size=7)]},
        target_transforms=[LevelRatio(28, 28)],
    )
    fcst.fit(history, static_features=[], fitted=True)
    forecast = fcst.predict(28)
    assert forecast.height == 10 * 28 and forecast["m"].is_finite().all()
    actual = stores.join(forecast, on=["unique_id", "ds"])
    ratio = actual["m"].sum() / actual["y"].sum()
    assert 0.85 < ratio < 1.15  # on the sales scale, near the actual level
    fitted = fcst.forecast_fitted_values()
    raw = fitted.select("unique_id", "ds").join(history, on=["unique_id", "ds"], how="left")
    np.testing.assert_allclose(fitted["y"].to_numpy(), raw["y"].to_numpy(), rtol=1e-9)


def test_closed_days_are_imputed_backward_and_forecast_as_zero(stores):
    imputed = impute_closed_days(stores, ["12-25"], 7)
    christmas = date(2015, 12, 25)
    ca1 = stores.filter(pl.col("unique_id") == "CA_1")
    raw = dict(zip(ca1["ds"], ca1["y"], strict=True))
    got = imputed.filter((pl.col("unique_id") == "CA_1") & (pl.col("ds") == christmas))["y"].item()
    assert raw[christmas] < 10  # closed: a handful of units
    assert got == pytest.approx((raw[christmas - timedelta(days=7)] + raw[christmas - timedelta(days=14)]) / 2)
    changed = imputed.join(stores, on=["unique_id", "ds"]).filter(pl.col("y") != pl.col("y_right"))
    assert set(changed["ds"].dt.strftime("%m-%d")) == {"12-25"} and changed.height == 10 * 5  # 2011..2015
    # Backward-looking: a history cut on Christmas Day imputes it the same as the whole history does.
    cut = impute_closed_days(stores.filter(pl.col("ds") <= christmas), ["12-25"], 7)
    assert cut.filter(pl.col("ds") == christmas).equals(imputed.filter(pl.col("ds") == christmas))
    frame = pl.DataFrame({"ds": [christmas, christmas + timedelta(days=1)], "y": [5.0, 9.0], "mean": [3.0, 4.0]})
    zeroed = zero_closed_days(frame, ["12-25"], keep=["y"])
    assert zeroed["mean"].to_list() == [0.0, 4.0] and zeroed["y"].to_list() == [5.0, 9.0]


def test_closed_days_must_be_month_day():
    assert ModelSpec(closed_days=["12-25", "01-01", "12-25"]).closed_days == ["01-01", "12-25"]
    for bad in ("25-12", "12/25", "2015-12-25", "12-32"):
        with pytest.raises(ValueError, match="MM-DD"):
            ModelSpec(closed_days=[bad])


def test_distance_features_count_days_to_and_since_events_and_closed_days():
    job = load_job("m5-daily-warehouse")
    spec = job.models.lightgbm
    assert spec.event_distance > 0 and spec.closed_day_distance > 0
    calendar = pl.read_parquet(STORES.parent / "m5_calendar.parquet").select(
        pl.col("date").str.to_date().alias("ds"),
        (pl.col("event_type_1") == "National").fill_null(False).cast(pl.Float64).alias("event_type_1=National"),
    )
    out = features.with_distances(calendar, job).filter(pl.col("ds").dt.year() == 2015)
    day = {d: row for d, row in zip(out["ds"], out.iter_rows(named=True), strict=True)}
    assert day[date(2015, 12, 20)]["days_to_closed"] == 5 and day[date(2015, 12, 27)]["days_since_closed"] == 2
    assert day[date(2015, 7, 1)]["days_to_closed"] == spec.closed_day_distance  # capped
    # Independence Day (National) 2015-07-04
    assert day[date(2015, 7, 2)]["days_to_event_type_1=National"] == 2
    assert day[date(2015, 7, 5)]["days_since_any_event"] == 1


def test_daily_job_uses_the_level_ratio_lightgbm_and_closes_on_christmas():
    job = load_job("m5-daily-warehouse")
    spec = job.models.lightgbm
    assert spec.level_ratio is not None and spec.level_ratio.shift >= job.horizon
    assert min(spec.lags) >= job.horizon and spec.rolling_lag >= job.horizon  # non-recursive
    assert job.models.closed_days == ["12-25"]


def test_seed_mean_is_the_mean_of_one_lightgbm_per_seed(stores):
    from forecasting.models.lightgbm import SeedMean

    frame = stores.filter(pl.col("unique_id") == "CA_1").with_columns(
        pl.col("y").shift(28).alias("lag28"), pl.col("ds").dt.weekday().cast(pl.Float64).alias("weekday")
    )
    frame = frame.drop_nulls()
    X, y = frame.select("lag28", "weekday").to_numpy(), frame["y"].to_numpy()
    member = lgb.LGBMRegressor(n_estimators=20, subsample=0.7, subsample_freq=1, verbosity=-1, n_jobs=1)
    ensemble = SeedMean(member, (0, 1)).fit(X, y)
    singles = [lgb.LGBMRegressor(**(member.get_params() | {"random_state": s})).fit(X, y).predict(X) for s in (0, 1)]
    np.testing.assert_allclose(ensemble.predict(X), np.mean(singles, axis=0))
    assert not np.allclose(singles[0], singles[1])  # the seeds do differ


def test_backtest_trains_on_imputed_christmas_but_scores_the_raw_actuals(tmp_path):
    """One window covering Christmas 2015 with the job's LightGBM (fewer trees): the forecast is 0 on the closed
    day, and the actual it is scored against is the raw one (a handful of units), not the imputed value."""
    from forecasting import pipeline
    from forecasting.evaluate.backtest import run_backtest

    lightgbm = load_job("m5-daily-warehouse").models.lightgbm.model_copy(update={"n_estimators": 40})
    job = daily_job(tmp_path, ["LightGBM"], "LightGBM", lightgbm=lightgbm)
    loaded = pipeline.load(job, date(2016, 1, 17))
    hierarchy = pipeline.aggregate(pipeline.validate(loaded, job), job)
    result = run_backtest(hierarchy, None, job, 1, calendar=loaded.calendar)
    christmas = result.base.filter((pl.col("ds") == date(2015, 12, 25)) & (pl.col("model") == "LightGBM"))
    assert christmas.height == 14 and (christmas["mean"] == 0).all()
    assert christmas.filter(pl.col("unique_id") == "total")["y"].item() < 100  # raw: stores closed
    published = result.reconciled.filter(pl.col("published") & (pl.col("ds") == date(2015, 12, 25)))
    assert (published["mean"] == 0).all()
    other = result.base.filter((pl.col("ds") == date(2015, 12, 26)) & (pl.col("model") == "LightGBM"))
    assert (other["mean"] > 0).all()
