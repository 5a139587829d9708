"""The bundled m5-monthly and m5-daily-warehouse jobs publish what `python -m benchmarks.reference` chooses
(slow), and the M5 daily benchmark's level / shape split on the real daily data."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl
import pytest

from benchmarks.reference import M5_DAILY_SELECTION_END, M5_MONTHLY_SELECTION_END, with_models
from benchmarks.reference_tables import level_known, level_table, seasonal_level_errors, window_bias
from forecasting import pipeline
from forecasting.evaluate.choice import least_worst_method
from forecasting.job.common import project_root
from forecasting.job.loading import load_job
from forecasting.pipeline import backtest_job
from forecasting.reconcile import core as rec


@pytest.mark.slow
def test_m5_monthly_job_file_holds_the_reference_choice(tmp_path):
    """The reference's selection is the job's own backtest (its `backtest.windows` of 3 months ending 2015-12, each
    reconciling the Base chosen in them): the job file's primary models and published reconciliation must be its
    choice, so the nightly run publishes what the benchmark scored (659 s on 2 cores with 12 reconciliations, peak RSS
    12.7 GB)."""
    job = load_job("m5-monthly", output_root=str(tmp_path))
    _, selection = backtest_job(with_models(job), M5_MONTHLY_SELECTION_END)
    assert selection.base["cutoff"].n_unique() == job.backtest.windows
    assert selection.base_models == job.models.primary
    assert least_worst_method(selection.metrics, job.models.choice_metric) == rec.publish_label(job)
    assert not job.models.choose_from_backtest and not job.reconciliation.choose_from_backtest


@pytest.mark.slow
def test_m5_daily_job_file_holds_the_reference_choice(tmp_path):
    """The daily reference's selection is the job's own backtest (its `backtest.windows` of 28 days ending
    2016-04-24): the job file's fallback primary models and published reconciliation must be that backtest's choice,
    so a nightly run without a backtest publishes what the benchmark scored (the benchmark's selection took 600 s
    of its 637 s on 2 cores)."""
    job = load_job("m5-daily-warehouse", output_root=str(tmp_path))
    _, selection = backtest_job(with_models(job), M5_DAILY_SELECTION_END)  # windows and step: the job file's
    assert job.backtest.windows == 12 and selection.base["cutoff"].n_unique() == 12
    assert selection.base_models == job.models.primary
    assert least_worst_method(selection.metrics, job.models.choice_metric) == rec.publish_label(job)


DAILY = project_root() / "data" / "m5" / "m5_daily_store_sales.parquet"


@pytest.fixture(scope="module")
def daily_hierarchy():
    job = load_job("m5-daily-warehouse")
    return job, pipeline.load_hierarchy(job, date(2016, 5, 22))[1]


def _window(hierarchy, cutoff: date, days: int) -> pl.DataFrame:
    """The real actuals of the `days` after `cutoff` as a backtest's long rows (unique_id, level, cutoff, ds, y)."""
    rows = hierarchy.Y_df.filter(pl.col("ds").is_between(cutoff + timedelta(days=1), cutoff + timedelta(days=days)))
    return rows.join(hierarchy.members.select("unique_id", "level"), on="unique_id").with_columns(
        pl.lit(cutoff).alias("cutoff")
    )


def test_level_known_keeps_the_shape_and_takes_the_actual_level(daily_hierarchy):
    """A forecast that is the actuals times a constant is all level error: with the level known it is the actuals.
    Any forecast comes out with the actual window mean and its own day-to-day ratios."""
    _, hierarchy = daily_hierarchy
    actual = _window(hierarchy, date(2016, 4, 24), 28)
    day = pl.col("ds").dt.weekday().cast(pl.Float64)
    scaled = actual.with_columns(
        (pl.col("y") * 0.93).alias("mean"), (pl.col("y") * 0.8).alias("lo_80"), pl.lit("scaled").alias("model")
    )
    shaped = actual.with_columns((pl.col("y").mean().over("unique_id") * (1 + day / 50)).alias("mean"))
    shaped = shaped.with_columns(pl.col("mean").alias("lo_80"), pl.lit("weekday").alias("model"))
    known = level_known(pl.concat([scaled, shaped]), "model").sort("model", "unique_id", "ds")
    got = known.filter(pl.col("model") == "scaled")
    assert (got["mean"] - got["y"]).abs().max() < 1e-6 * got["y"].max()
    assert (got["lo_80"] - got["y"] * 0.8 / 0.93).abs().max() < 1e-6 * got["y"].max()
    means = known.group_by("model", "unique_id").agg(pl.col("mean").mean() / pl.col("y").mean() - 1)
    assert means["mean"].abs().max() < 1e-12
    weekday = known.filter(pl.col("model") == "weekday")
    ratios = weekday.with_columns(pl.col("mean") / pl.col("mean").min().over("unique_id"))
    assert ratios["mean"].max() == pytest.approx((1 + 7 / 50) / (1 + 1 / 50))  # Sunday over Monday, as forecast


def test_window_bias_is_the_sum_of_errors_over_the_sum_of_actuals(daily_hierarchy):
    _, hierarchy = daily_hierarchy
    rows = _window(hierarchy, date(2016, 3, 27), 28).with_columns(
        pl.lit("Base").alias("model"),
        pl.when(pl.col("ds").dt.weekday() == 7).then(pl.col("y") * 0.9).otherwise(pl.col("y")).alias("mean"),
    )
    bias = window_bias(rows, "model", "Base")
    total = rows.filter(pl.col("level") == "total")
    sundays = total.filter(pl.col("ds").dt.weekday() == 7)["y"].sum()
    assert bias.filter(pl.col("level") == "total")["bias"].item() == pytest.approx(-0.1 * sundays / total["y"].sum())


def test_seasonal_level_error_matches_a_hand_computation_from_the_file(daily_hierarchy):
    """The hold-out window's seasonal level error of store CA_1, recomputed with DuckDB from the raw daily file:
    actual mean of Apr 25..May 22 2016 / (mean of Mar 28..Apr 24 2016 x last year's same ratio, 364 days back)."""
    job, hierarchy = daily_hierarchy
    members = hierarchy.members.select("unique_id", "level")
    errors = seasonal_level_errors(hierarchy.Y_df, members, job.horizon, date(2016, 4, 24))
    ca_1 = errors.filter((pl.col("unique_id") == "total/CA/CA_1") & (pl.col("cutoff") == date(2016, 4, 24)))

    def mean(first: str, last: str) -> float:
        query = "SELECT avg(sales) FROM read_parquet(?) WHERE store_id = 'CA_1' AND date BETWEEN ? AND ?"
        return duckdb.execute(query, [str(DAILY), first, last]).fetchone()[0]

    last_year = mean("2015-04-27", "2015-05-24") / mean("2015-03-30", "2015-04-26")
    expected = mean("2016-04-25", "2016-05-22") / (mean("2016-03-28", "2016-04-24") * last_year) - 1
    assert ca_1["error"].item() == pytest.approx(expected, rel=1e-12)
    assert errors["cutoff"].n_unique() == 55 and errors["cutoff"].min() == date(2012, 3, 4)
    bias = pl.DataFrame({"level": ["warehouse", "total", "region"], "cutoff": [date(2016, 4, 24)] * 3, "bias": 0.0})
    table = level_table(errors, bias, date(2016, 4, 24), job.hierarchy.names)
    assert table["level"].to_list() == ["total", "region", "warehouse"]
    assert table["earlier windows"].to_list() == [54, 54, 54]


def test_interval_table_puts_selection_beside_hold_out(daily_hierarchy):
    """Coverage and WSPL come from the frame they are labelled with: intervals that hold every actual in the
    selection windows and none in the hold-out give 1 and 0, per level in the hierarchy's order."""
    from functools import partial

    from benchmarks.reference_tables import interval_table
    from forecasting.evaluate.backtest import window_weights
    from forecasting.evaluate.scoring import scores

    job, hierarchy = daily_hierarchy
    weigh = partial(window_weights, hierarchy, None, job)

    def metrics(cutoff: date, width: float) -> pl.DataFrame:
        rows = _window(hierarchy, cutoff, 28).with_columns(pl.col("y").cast(pl.Float64).alias("mean"))
        bounds = [(pl.col("y") * (1 - width) + 1).alias(f"lo_{lv}") for lv in (80, 95)]
        bounds += [(pl.col("y") * (1 + width) + 2).alias(f"hi_{lv}") for lv in (80, 95)]
        rows = rows.with_columns(*bounds, pl.lit("Base").alias("model"))
        return scores(rows, "model", hierarchy.Y_df, weigh, "base", 7).levels

    # width 0.5: every actual inside; width -0.5 puts lo above y and hi below it, so none is.
    table = interval_table(
        metrics(date(2016, 3, 27), 0.5), metrics(date(2016, 4, 24), -0.5), ["Base"], ["total", "region", "warehouse"]
    )
    assert table["level"].to_list() == ["total", "region", "warehouse"]
    assert table["80 % coverage, selection"].to_list() == [1.0, 1.0, 1.0]
    assert table["95 % coverage, hold-out"].to_list() == [0.0, 0.0, 0.0]
    assert (table["WSPL, selection"] > 0).all() and (table["WSPL, hold-out"] > table["WSPL, selection"]).all()


def test_seasonal_naive_of_the_aggregates_scores_like_the_published_benchmark_table(daily_hierarchy):
    """The organizers' sNaive at levels 1-3 is the weekly naive of the aggregate series. Built here straight from the
    real daily history (the 7 days before 2016-04-24 repeated), it scores the benchmark's SeasonalNaive figures, and
    naive_relative puts every model as a share of it: the actuals themselves score 0, the naive itself 1."""
    from functools import partial

    from benchmarks.reference_tables import M5_PUBLISHED, metric_table, naive_relative
    from forecasting.evaluate.backtest import window_weights
    from forecasting.evaluate.scoring import scores

    job, hierarchy = daily_hierarchy
    weigh = partial(window_weights, hierarchy, None, job)
    cutoff = date(2016, 4, 24)
    actual = _window(hierarchy, cutoff, 28)
    last_week = hierarchy.Y_df.filter(pl.col("ds").is_between(cutoff - timedelta(days=6), cutoff)).select(
        "unique_id", pl.col("ds").dt.weekday().alias("weekday"), pl.col("y").alias("mean")
    )
    naive = actual.with_columns(pl.col("ds").dt.weekday().alias("weekday")).join(last_week, on=["unique_id", "weekday"])
    rows = pl.concat(
        [
            naive.drop("weekday").with_columns(pl.lit("SeasonalNaive").alias("model")),
            actual.with_columns(pl.col("y").alias("mean"), pl.lit("Base").alias("model")),
        ]
    ).with_columns(*[pl.col("mean").alias(f"{side}_{lv}") for lv in (80, 95) for side in ("lo", "hi")])
    held = metric_table(
        scores(rows, "model", hierarchy.Y_df, weigh, "base", 7).levels, "wrmsse", ["total", "region", "warehouse"]
    )
    table = naive_relative(held, ["Base", "SeasonalNaive"])
    assert table["level"].to_list() == ["total", "region", "warehouse"]
    assert [round(v, 3) for v in table["SeasonalNaive, this window"]] == [0.751, 0.753, 0.798]  # docs/benchmarks.md
    assert table["Base / SeasonalNaive"].to_list() == [0.0, 0.0, 0.0]
    assert table["SeasonalNaive / SeasonalNaive"].to_list() == [1.0, 1.0, 1.0]
    total = M5_PUBLISHED["total"]
    assert table["target / sNaive"][0] == pytest.approx(0.7 * total["ES_bu"] / total["sNaive"])
    assert table["this window / published window (sNaive)"][0] == pytest.approx(
        table["SeasonalNaive, this window"][0] / total["sNaive"]
    )
