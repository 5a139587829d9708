"""The global LightGBM route for new series (LaunchLightGBM) and the nested choice among the launch models, on real M5
monthly rows in order shape (each series from its first sale; tests/models/test_young.py's slice)."""

from __future__ import annotations

import warnings
from datetime import date
from functools import partial

import polars as pl
import pytest
from test_young import AS_OF, order_job

from forecasting.data import hierarchy as hier
from forecasting.evaluate import plan as plans
from forecasting.evaluate.backtest import window_cutoffs, window_weights
from forecasting.evaluate.scoring import scores
from forecasting.job.schema import JobSpec
from forecasting.models import young
from forecasting.models.frames import wide_to_long
from forecasting.models.launch_lightgbm import LAUNCH_LIGHTGBM, static_keys
from forecasting.pipeline import load_hierarchy, run_job

KEYS = ["unique_id", "ds", "cutoff"]


@pytest.fixture(scope="module")
def sliced(tmp_path_factory):
    job = order_job(tmp_path_factory.mktemp("launch"))
    _, hierarchy = load_hierarchy(job, AS_OF)
    return job, hierarchy


def test_a_young_series_gets_a_lightgbm_forecast_from_one_period(sliced):
    """Every young bottom series, one with a single period of history included (its lags missing, not zero), gets
    a finite LaunchLightGBM forecast with ordered intervals; the new store (an aggregate) keeps LaunchCurve/Flat."""
    job, hierarchy = sliced
    routes = young.route(hierarchy, job)
    bottom = hierarchy.ids(hierarchy.bottom)
    Y_bottom = hierarchy.Y_df.filter(pl.col("unique_id").is_in(bottom))
    young_bottom = routes.young.filter(pl.col("unique_id").is_in(bottom))
    one = "total/CA/CA_1/FOODS_3_530"  # first sold in 2015: keep only its last month
    assert one in young_bottom["unique_id"].to_list()
    last = Y_bottom.filter(pl.col("unique_id") == one)["ds"].max()
    Y_bottom = Y_bottom.filter((pl.col("unique_id") != one) | (pl.col("ds") == last))
    launched = young.launch_forecast(
        Y_bottom, routes.young, young.parent_groups(hierarchy), job, routes.need - 1, static_keys(hierarchy)
    )
    fc = launched.forecasts.filter(pl.col("unique_id").is_in(young_bottom["unique_id"].implode()))
    assert fc["unique_id"].n_unique() == young_bottom.height and fc.height == young_bottom.height * job.horizon
    assert fc[LAUNCH_LIGHTGBM].is_finite().all() and (fc[LAUNCH_LIGHTGBM] >= 0).all()
    for lv in job.levels:
        assert (fc[f"{LAUNCH_LIGHTGBM}-lo-{lv}"] <= fc[LAUNCH_LIGHTGBM] + 1e-9).all()
        assert (fc[f"{LAUNCH_LIGHTGBM}-hi-{lv}"] >= fc[LAUNCH_LIGHTGBM] - 1e-9).all()
    single = fc.filter(pl.col("unique_id") == one)
    assert single.height == job.horizon and single[LAUNCH_LIGHTGBM].is_finite().all()
    # In-sample one-step fits exist for the young series (the reconciled intervals' calibration reads them).
    assert launched.fitted.filter(pl.col("unique_id") == one)[LAUNCH_LIGHTGBM].is_finite().all()
    served = young.served_by(launched.forecasts, routes.young, {"sku": LAUNCH_LIGHTGBM}, hierarchy.members)
    by_level = served.join(hierarchy.members.select("unique_id", "level"), on="unique_id")
    assert set(by_level.filter(pl.col("level") == "sku")["model"]) == {LAUNCH_LIGHTGBM}
    assert set(by_level.filter(pl.col("level") != "sku")["model"]) <= {young.LAUNCH, young.FLAT}
    default = young.served_by(launched.forecasts, routes.young, {"sku": young.LAUNCH}, hierarchy.members)
    assert LAUNCH_LIGHTGBM not in default["model"].to_list()


def test_the_run_publishes_lightgbm_for_new_series_when_chosen(tmp_path):
    """With the job's launch model LaunchLightGBM (as a backtest would choose it), the new SKUs' Base is that
    model's forecast, counted in the summary, and reconciled like every other series."""
    job = order_job(tmp_path)
    job = job.model_copy(update={"models": job.models.model_copy(update={"launch_model": LAUNCH_LIGHTGBM})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_job(job, AS_OF)
    base = pl.read_parquet(result.run_dir / "base_forecasts.parquet")
    new_sku = base.filter((pl.col("level") == "sku") & (pl.col("history_periods") < 25))
    wide = new_sku.pivot(on="model", index=["unique_id", "ds"], values="mean")
    assert wide.height and (wide["Base"] - wide[LAUNCH_LIGHTGBM]).abs().max() < 1e-9
    assert result.summary["new_series"]["served_by"][LAUNCH_LIGHTGBM] == new_sku["unique_id"].n_unique()
    published = pl.read_parquet(result.run_dir / "reconciled_forecasts.parquet").filter(pl.col("published"))
    new_rows = published.filter(pl.col("unique_id").is_in(new_sku["unique_id"].unique().implode()))
    assert new_rows.height and new_rows["mean"].is_finite().all()


def test_the_launch_choice_reads_only_earlier_windows(sliced):
    """The launch models' real scores over three windows: the choice for a window is the same whatever the later
    windows scored (they are overwritten here to favour the other model), and with every window it follows them."""
    job, hierarchy = sliced
    cutoffs = window_cutoffs(hierarchy.Y_df, 3, job.horizon, job.horizon)
    routes = young.route(hierarchy, job, until=cutoffs[0])
    bottom = hierarchy.Y_df.filter(pl.col("unique_id").is_in(hierarchy.ids(hierarchy.bottom)))
    groups, keys = young.parent_groups(hierarchy), static_keys(hierarchy)
    fc, _ = young.launch_backtest(bottom, routes.young, groups, job, cutoffs, keys)
    rows = hier.level_of(hierarchy.members, wide_to_long(fc, job.levels, KEYS)).join(
        hierarchy.Y_df.select("unique_id", "ds", "y"), on=["unique_id", "ds"]
    )
    weigh = partial(window_weights, hierarchy, None, job)
    real = scores(rows, "model", hierarchy.Y_df, weigh, "base", job.season_length).windows
    real = real.filter(pl.col("model").is_in(young.CHOSEN))
    assert set(real.filter(pl.col("level") == "sku")["cutoff"]) == set(cutoffs)

    def favour(frame: pl.DataFrame, model: str, after: date) -> pl.DataFrame:
        later = pl.col("cutoff") > after
        good = pl.when(later & (pl.col("model") == model)).then(0.01)
        return frame.with_columns(good.when(later).then(100.0).otherwise(pl.col("rmsse")).alias("rmsse"))

    earlier = cutoffs[:2]
    chosen, reasons = plans.choose_launch(real, earlier, job)
    for model in young.CHOSEN:
        again, _ = plans.choose_launch(favour(real, model, earlier[-1]), earlier, job)
        assert again == chosen  # the third window never enters the choice for it
    assert reasons and all("2 windows" in r for r in reasons if r.startswith("sku"))
    # Over every window a model made clearly better there is chosen (the rule reads the windows it is given).
    for model in young.CHOSEN:
        flipped = favour(real, model, date(2000, 1, 1))
        assert plans.choose_launch(flipped, cutoffs, job)[0]["sku"] == model
    assert plans.choose_launch(real, [], job)[0] == {"sku": job.models.launch_model}


def test_new_series_interval_factors_are_their_own(sliced):
    """The launch models' real errors in two earlier windows set the new series' factors (`sku (new)`); applied to
    a later window they move only the new series' bounds, and the level keeps its name."""
    job, hierarchy = sliced
    cutoffs = window_cutoffs(hierarchy.Y_df, 3, job.horizon, job.horizon)
    routes = young.route(hierarchy, job, until=cutoffs[0])
    bottom = hierarchy.Y_df.filter(pl.col("unique_id").is_in(hierarchy.ids(hierarchy.bottom)))
    fc, _ = young.launch_backtest(bottom, routes.young, young.parent_groups(hierarchy), job, cutoffs, None)
    rows = (
        hier.level_of(
            hierarchy.members, wide_to_long(fc.select(*KEYS, pl.selectors.starts_with(young.LAUNCH)), job.levels, KEYS)
        )
        .join(hierarchy.Y_df.select("unique_id", "ds", "y"), on=["unique_id", "ds"])
        .filter(pl.col("mean") > 0)
    )
    ids = routes.young["unique_id"]
    earlier = rows.filter(pl.col("cutoff") < cutoffs[-1])
    factors = plans.interval_scales(plans.mark_new(earlier, ids), job.levels)
    assert set(factors) == {"sku (new)"} and factors["sku (new)"] == plans.interval_scales(earlier, job.levels)["sku"]
    established = bottom.filter(~pl.col("unique_id").is_in(ids.implode())).select("unique_id").unique().head(3)
    last = rows.filter(pl.col("cutoff") == cutoffs[-1])
    other = last.head(3).with_columns(established["unique_id"])  # the same rows under established series' ids
    scaled = plans.scale_published(pl.concat([last, other]), factors, job.levels, ids)
    assert set(scaled["level"]) == {"sku"}
    kept = scaled.filter(pl.col("unique_id").is_in(established["unique_id"].implode()))
    bounds = [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]
    same = kept.join(other, on=KEYS, suffix="_raw").select((pl.col(b) - pl.col(f"{b}_raw")).abs().max() for b in bounds)
    assert kept.height == 3 and same.max_horizontal().item() < 1e-9  # established rows: factor 1
    moved = scaled.join(last, on=KEYS, suffix="_raw")
    lv, factor = next((int(k), f) for k, f in factors["sku (new)"].items() if abs(f - 1) > 1e-6)
    width = (moved[f"hi_{lv}"] - moved["mean"]) / (moved[f"hi_{lv}_raw"] - moved["mean"])
    assert (width - factor).abs().max() < 1e-9


def test_new_products_in_real_order_lines_get_the_lightgbm_route(tmp_path):
    """Online-retail order lines (weekly, one year), two countries: the products first sold too recently for the
    bottom models are forecast by LaunchLightGBM when it is the launch model, through the whole run."""
    from forecasting.job.loading import load_job

    data = load_job("online-retail").model_dump(mode="json")
    data["models"] |= {"launch_model": LAUNCH_LIGHTGBM, "aggregate_models": ["Naive"], "bottom_models": ["Naive"]}
    data["models"] |= {"intermittent_model": None}
    data |= {"filters": {"country": ["France", "Germany"]}, "n_jobs": 1, "output_root": str(tmp_path / "out")}
    job = JobSpec.model_validate(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_job(job)
    base = pl.read_parquet(result.run_dir / "base_forecasts.parquet").filter(pl.col("level") == "country_sku")
    served = result.summary["new_series"]["served_by"]
    new = base.filter(
        (pl.col("model") == "Base") & (pl.col("history_periods") < result.summary["new_series"]["shorter_than_periods"])
    )
    assert served.get(LAUNCH_LIGHTGBM, 0) == new["unique_id"].n_unique() > 10
    wide = base.filter(pl.col("unique_id").is_in(new["unique_id"].unique().implode())).pivot(
        on="model", index=["unique_id", "ds"], values="mean"
    )
    assert (wide["Base"] - wide[LAUNCH_LIGHTGBM]).abs().max() < 1e-9 and wide["Base"].is_finite().all()
