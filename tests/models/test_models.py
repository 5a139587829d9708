"""The Base choice, intermittent series, the worker pool, the cached quantiles and the grouped-direct LightGBM."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from support import check_forecast_contract, slice_job

from forecasting.data import features
from forecasting.job.schema import JobSpec
from forecasting.models import engines
from forecasting.models import lightgbm as gbm
from forecasting.models.engines import statistical_forecast
from forecasting.models.intermittent import intermittent_ids
from forecasting.pipeline import aggregate, base_forecasts, load, validate


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    job = slice_job(tmp_path_factory.mktemp("models"))
    loaded = load(job)
    hierarchy = aggregate(validate(loaded, job), job)
    return job, loaded, hierarchy


def test_base_is_the_primary_model_per_level_and_intermittent_model_for_sparse_skus(prepared):
    """Without a backtest, Base is the job file's model per level (by default the Mean of the models run there), and
    the intermittent model for sparse SKUs."""
    job, loaded, hierarchy = prepared
    data = job.model_dump()
    data["models"]["intermittent_model"] = "CrostonSBA"
    job = JobSpec.model_validate(data)
    base = base_forecasts(hierarchy, loaded.prices, job)
    choice = dict(base.choice.iter_rows())
    primary = job.primary_models()
    assert primary == dict.fromkeys(job.hierarchy.names, "Mean")  # no backtest: the Mean of the models run
    assert choice["total"] == primary["total"]
    assert choice["total/CA/CA_1"] == primary["warehouse"]
    sku_choices = {choice[i] for i in hierarchy.ids("sku")}
    assert sku_choices == {primary["sku"], "CrostonSBA"}
    sparse = intermittent_ids(hierarchy.Y_df.filter(pl.col("unique_id").is_in(hierarchy.ids("sku"))), 1.32)
    assert {i for i in hierarchy.ids("sku") if choice[i] == "CrostonSBA"} == sparse
    joined = base.forecasts.join(base.choice, on="unique_id")
    for model in sku_choices:
        rows = joined.filter(pl.col("model") == model)
        assert (rows["Base"] == rows[model]).all()


def test_intermittent_classification():
    Y = pl.DataFrame(
        {
            "unique_id": ["smooth"] * 6 + ["lumpy"] * 6,
            "y": [3.0, 4, 2, 5, 3, 4] + [0.0, 0, 5, 0, 0, 7],
        }
    )
    assert intermittent_ids(Y, 1.32) == {"lumpy"}  # leading zeros before launch do not count


def test_worker_pool_after_multithreaded_lightgbm_matches_one_process(prepared):
    """A multi-threaded LightGBM first, then statsforecast's worker pool, twice in this long-lived process: with
    forked workers this could hang (inherited OpenMP pool). Forkserver workers must finish and agree with n_jobs=1."""
    job, loaded, hierarchy = prepared
    Y = hierarchy.Y_df.filter(pl.col("unique_id").is_in(hierarchy.ids("sku")))
    two_threads = job.model_copy(update={"n_jobs": 2})
    engines.lightgbm_forecast(Y, two_threads)
    one = statistical_forecast(Y, job, ["SeasonalNaive", "CrostonSBA"], n_jobs=1).forecasts
    for _ in range(2):
        pooled = statistical_forecast(Y, two_threads, ["SeasonalNaive", "CrostonSBA"], n_jobs=2).forecasts
        assert pooled.sort("unique_id", "ds").equals(one.sort("unique_id", "ds"))
    import multiprocessing

    assert multiprocessing.get_start_method(allow_none=True) in (None, "fork")  # restored after the call


def test_cached_interval_quantiles_equal_statsforecasts_own():
    """forecasting.models.fast_quantiles replaces statsforecast's private `_quantiles` (5x faster baseline fits): it
    must be installed, give the library's values for normal intervals and hand every other distribution back to it."""
    import numpy as np
    import statsforecast.utils as sf_utils

    from forecasting.models import fast_quantiles

    assert fast_quantiles._original is not None and sf_utils._quantiles is fast_quantiles.quantiles
    for levels in ([80, 95], [60, 80, 90, 95], [50.5], [[80], [95]]):
        np.testing.assert_allclose(fast_quantiles.quantiles(levels), fast_quantiles._original(levels), rtol=0, atol=0)
    t_params = {"df": 5.0}
    np.testing.assert_allclose(
        fast_quantiles.quantiles([80, 95], "t", t_params), fast_quantiles._original([80, 95], "t", t_params)
    )


@pytest.fixture(scope="module")
def daily_blocks(tmp_path_factory):
    """The daily job's grouped-direct LightGBM (fewer trees, 730-day half-life weights) and the real store
    histories up to 2016-04-24."""
    from datetime import date

    from support import daily_job

    from forecasting.evaluate.backtest import KEYS  # noqa: F401  (the backtest module imports cleanly beside it

    job = daily_job(tmp_path_factory.mktemp("blocks"), ["LightGBMBlocks"], "LightGBMBlocks")
    cheap = job.models.lightgbm.model_copy(update={"n_estimators": 20})
    # The job's grouped-direct variant, with time-decay weights as well (so both are exercised).
    variants = {"LightGBMBlocks": job.models.lightgbm_variants["LightGBMBlocks"] | {"half_life": 730}}
    job = job.model_copy(
        update={"models": job.models.model_copy(update={"lightgbm": cheap, "lightgbm_variants": variants})}
    )
    loaded = load(job, date(2016, 4, 24))
    hierarchy = aggregate(validate(loaded, job), job)
    stores = hierarchy.Y_df.filter(pl.col("unique_id").is_in(hierarchy.ids(hierarchy.bottom)))
    members = hierarchy.members.filter(pl.col("level") == hierarchy.bottom)
    exog = features.exogenous(members, None, loaded.calendar, job, bottom=True)
    return job, stores, exog


def _reach(fcst) -> int:
    """The shortest distance back any feature or the level of a fitted-to-be MLForecast reads the target from."""
    reaches = list(fcst.ts.lags) + list(fcst.ts.lag_transforms)
    reaches += [t.shift for t in fcst.ts.target_transforms or [] if hasattr(t, "shift")]
    return min(reaches)


def test_horizon_blocks_never_read_the_target_nearer_than_their_last_day(daily_blocks):
    """No look-ahead: a block forecasting days first..last reads y no nearer than `last` days back (lags, rolling
    means, the level), so its forecasts never feed its own features; the blocks cover the horizon once."""
    job, stores, exog = daily_blocks
    setups = gbm.lightgbm_setups(stores, job, exog, aggregate=False, name="LightGBMBlocks")
    blocks = [block for block, _ in setups]
    assert [(b.first, b.last) for b in blocks] == [(1, 7), (8, 14), (15, 21), (22, 28)]
    for block, (fcst, _, _) in setups:
        assert _reach(fcst) >= block.last >= block.first
        assert 364 in fcst.ts.lags  # the fixed lag stays a year back in every block
    # Time-decay weights (half_life 730 days): 1 on each series' last day, 0.5 two years before it.
    train = setups[0][1][1]
    ca1 = train.filter(pl.col("unique_id") == "total/CA/CA_1").sort("ds")[gbm.WEIGHT].to_numpy()
    assert ca1[-1] == 1.0 and ca1[-1 - 730] == pytest.approx(0.5)
    # The job's single LightGBM is the last block: every reach at or beyond the 28-day horizon.
    ((block, (fcst, _, _)),) = gbm.lightgbm_setups(stores, job, exog, aggregate=False, name="LightGBM")
    assert (block.first, block.last) == (1, 28) and _reach(fcst) >= 28


def test_horizon_blocks_need_every_lag_at_or_beyond_the_horizon():
    from forecasting.job.loading import load_job

    job = load_job("m5-daily-warehouse")
    bad = job.models.model_copy(
        update={"lightgbm_variants": job.models.lightgbm_variants | {"Near": {"horizon_blocks": 7, "lags": [7, 14]}}}
    )
    with pytest.raises(ValueError, match="lags 7 < horizon 28"):
        JobSpec.model_validate(job.model_dump() | {"models": bad.model_dump()})
    with pytest.raises(ValueError, match="unknown model"):
        JobSpec.model_validate(job.model_dump() | {"models": job.models.model_dump() | {"bottom_models": ["Other"]}})


def test_horizon_blocks_forecast_the_horizon_the_same_way_nightly_and_in_the_backtest(daily_blocks):
    """Each day comes from its own block's model, reruns give the same numbers, and a one-window backtest at the
    same origin gives the nightly forecast."""
    from forecasting.evaluate.backtest import _lightgbm_cv

    job, stores, exog = daily_blocks
    result = engines.lightgbm_forecast(stores, job, exog, aggregate=False, name="LightGBMBlocks")
    check_forecast_contract(result, stores, job)
    again = engines.lightgbm_forecast(stores, job, exog, aggregate=False, name="LightGBMBlocks")
    assert again.forecasts.equals(result.forecasts)
    # Days 1-7 are the first block's own forecast (a model with lags from 7 days back).
    (block, (fcst, train, intervals)), *_ = gbm.lightgbm_setups(stores, job, exog, False, "LightGBMBlocks")
    fcst.fit(train, static_features=gbm.static_features(job), weight_col=gbm.weight_column(train))
    X_df = fcst.make_future_dataframe(block.last).join(exog, on=["unique_id", "ds"], how="left")
    first = fcst.predict(h=block.last, X_df=X_df).sort("unique_id", "ds")
    got = gbm.in_block(result.forecasts, block, ["unique_id"]).select("unique_id", "ds", "LightGBMBlocks")
    assert got.equals(first)
    # One backtest window ending at the history's last day: the origin is 28 days earlier; refit there nightly.
    cutoff = stores["ds"].max() - __import__("datetime").timedelta(days=job.horizon)
    cv, _ = _lightgbm_cv(stores, job, exog, False, 1, job.horizon, "LightGBMBlocks")
    assert cv.group_by("unique_id").len()["len"].to_list() == [job.horizon] * 10 and (cv["cutoff"] == cutoff).all()
    nightly = engines.lightgbm_forecast(stores.filter(pl.col("ds") <= cutoff), job, exog, False, "LightGBMBlocks")
    joined = nightly.forecasts.join(cv, on=["unique_id", "ds"], suffix="_cv")
    assert joined.height == 10 * job.horizon
    # Equal to rounding: the time-decay weights differ by a constant factor between the two fits.
    np.testing.assert_allclose(joined["LightGBMBlocks"].to_numpy(), joined["LightGBMBlocks_cv"].to_numpy(), rtol=1e-9)
