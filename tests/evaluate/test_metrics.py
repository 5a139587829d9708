"""M5 metrics: hand-computed cases, the organizers' weights file, and a seasonal naive on real daily M5 totals."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from hierarchicalforecast.utils import SMatrix, aggregate
from scipy import sparse
from utilsforecast.losses import rmsse as uf_rmsse
from utilsforecast.losses import scaled_mqloss

from forecasting.evaluate import metrics as ev
from forecasting.job.common import project_root

M5 = project_root() / "data" / "m5"
WEIGHTS = M5 / "m5_weights_evaluation.parquet"
STORES = ["CA_1", "CA_2", "CA_3", "CA_4", "TX_1", "TX_2", "TX_3", "WI_1", "WI_2", "WI_3"]


def days(n: int, start: date = date(2020, 1, 1)) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def frame(series: dict[str, list[float]], col: str = "y", start: date = date(2020, 1, 1)) -> pl.DataFrame:
    return pl.concat(
        [
            pl.DataFrame({"unique_id": uid, "ds": days(len(v), start), col: [float(x) for x in v]})
            for uid, v in series.items()
        ]
    )


# ---------------------------------------------------------------- real M5 data, levels total / state / store


@pytest.fixture(scope="module")
def m5_levels_1_3() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Daily history d_1..d_1913 and actuals d_1914..d_1941 for total, states and stores, as platform ids."""
    totals = pl.read_parquet(M5 / "m5_daily_state_store_totals_d1_d1913.parquet")
    state = pl.col("unique_id").str.split("_").list.first()
    path = pl.when(pl.col("level") == "state").then("total/" + pl.col("unique_id"))
    path = path.otherwise("total/" + state + "/" + pl.col("unique_id"))
    hist = totals.select(
        path.alias("unique_id"), pl.col("date").alias("ds"), pl.col("sales").cast(pl.Float64).alias("y")
    )
    grand = hist.filter(pl.col("unique_id").str.count_matches("/") == 1).group_by("ds").agg(pl.col("y").sum())
    hist = pl.concat([hist, grand.select(pl.lit("total").alias("unique_id"), "ds", "y")]).sort("unique_id", "ds")

    bottom = pl.read_parquet(
        M5 / "m5_daily_bottom_d1914_d1941.parquet", columns=["store_id", "state_id", "date", "sales"]
    )
    keys = {
        "total": pl.lit("total"),
        "state": "total/" + pl.col("state_id"),
        "store": "total/" + pl.col("state_id") + "/" + pl.col("store_id"),
    }
    actuals = pl.concat(
        [
            bottom.group_by(key.alias("unique_id"), pl.col("date").alias("ds")).agg(
                pl.col("sales").sum().cast(pl.Float64).alias("y")
            )
            for key in keys.values()
        ]
    ).sort("unique_id", "ds")
    return hist, actuals


def seasonal_naive(hist: pl.DataFrame, actuals: pl.DataFrame, season: int = 7) -> pl.DataFrame:
    """yhat_{T+h} = y_{T+h-season*ceil(h/season)}: the last `season` days repeated."""
    last = hist.sort("ds").group_by("unique_id").tail(season).sort("unique_id", "ds")
    last = last.with_columns(pl.int_range(pl.len()).over("unique_id").alias("k"))
    grid = actuals.select("unique_id", "ds").sort("unique_id", "ds")
    grid = grid.with_columns((pl.int_range(pl.len()).over("unique_id") % season).alias("k"))
    return grid.join(last.select("unique_id", "k", pl.col("y").alias("SeasonalNaive")), on=["unique_id", "k"]).drop("k")


@pytest.fixture(scope="module")
def official_1_3() -> pl.DataFrame:
    return ev.m5_official_weights(WEIGHTS).filter(pl.col("level") != "sku")


# ---------------------------------------------------------------- scales


def test_scales_start_at_first_nonzero_value():
    hist = frame({"a": [0, 0, 3, 1, 4], "b": [0, 2, 0, 2], "z": [0, 0, 0]})
    sq = dict(ev.m5_rmsse_scale(hist).iter_rows())
    ab = dict(ev.m5_spl_scale(hist).iter_rows())
    # a: history 3, 1, 4 -> steps -2, 3 (the 0->0->3 steps are not demand); b keeps its inner zero: 2, 0, 2
    assert sq == {"a": pytest.approx((4 + 9) / 2), "b": pytest.approx(4.0), "z": None}
    assert ab == {"a": pytest.approx((2 + 3) / 2), "b": pytest.approx(2.0), "z": None}


def test_scale_ignores_row_order():
    hist = frame({"a": [0, 0, 3, 1, 4]})
    assert ev.m5_rmsse_scale(hist.reverse())["scale"][0] == pytest.approx(6.5)


# ---------------------------------------------------------------- RMSSE / WRMSSE


def test_rmsse_by_hand():
    scale = ev.m5_rmsse_scale(frame({"a": [0, 0, 3, 1, 4]}))
    actuals = frame({"a": [5, 5]}, start=date(2020, 1, 6))
    fc = frame({"a": [4, 7]}, col="M1", start=date(2020, 1, 6)).with_columns(M2=pl.col("M1") * 0 + 5)
    out = ev.rmsse_per_series(fc, actuals, scale, ["M1", "M2"])
    assert out.columns == ["unique_id", "model", "rmsse"]
    got = {m: v for _, m, v in out.iter_rows()}
    assert got == {"M1": pytest.approx(math.sqrt(((1 + 4) / 2) / 6.5)), "M2": 0.0}


def test_rmsse_refuses_forecast_without_actual():
    scale = ev.m5_rmsse_scale(frame({"a": [1, 2, 3]}))
    fc = frame({"a": [1, 2]}, col="M1", start=date(2020, 1, 4))
    with pytest.raises(ValueError, match="no actual"):
        ev.rmsse_per_series(fc, frame({"a": [1]}, start=date(2020, 1, 4)), scale, ["M1"])


def test_wrmsse_by_hand_and_missing_series():
    per = pl.DataFrame({"unique_id": ["a", "b", "t"], "model": "M", "rmsse": [2.0, 4.0, 0.5]})
    weights = pl.DataFrame(
        {"unique_id": ["a", "b", "t"], "level": ["leaf", "leaf", "top"], "weight": [0.25, 0.75, 1.0]}
    )
    got = dict(ev.wrmsse(per, weights).select("level", "wrmsse").iter_rows())
    assert got == {"leaf": pytest.approx(0.25 * 2 + 0.75 * 4), "top": pytest.approx(0.5)}
    with pytest.raises(ValueError, match="lacks a finite score"):
        ev.wrmsse(per.filter(pl.col("unique_id") != "b"), weights)
    with pytest.raises(ValueError, match="lacks a finite score"):
        ev.wrmsse(per.with_columns(rmsse=pl.when(pl.col("unique_id") == "a").then(None).otherwise("rmsse")), weights)


def test_rmsse_matches_utilsforecast_on_real_data(m5_levels_1_3):
    hist, actuals = m5_levels_1_3  # no leading zeros here, so the M5 scale is utilsforecast's seasonality-1 scale
    fc = seasonal_naive(hist, actuals)
    ours = ev.rmsse_per_series(fc, actuals, ev.m5_rmsse_scale(hist), ["SeasonalNaive"]).sort("unique_id")
    theirs = uf_rmsse(fc.join(actuals, on=["unique_id", "ds"]), ["SeasonalNaive"], seasonality=1, train_df=hist)
    assert ours["rmsse"].is_finite().all()  # assert_allclose would accept NaN on both sides
    np.testing.assert_allclose(
        ours["rmsse"].to_numpy(), theirs.sort("unique_id")["SeasonalNaive"].to_numpy(), rtol=1e-12
    )


def test_perfect_forecast_scores_zero(m5_levels_1_3, official_1_3):
    hist, actuals = m5_levels_1_3
    perfect = actuals.rename({"y": "Oracle"})
    per = ev.rmsse_per_series(perfect, actuals, ev.m5_rmsse_scale(hist), ["Oracle"])
    assert ev.wrmsse(per, official_1_3)["wrmsse"].to_list() == [0.0, 0.0, 0.0]


def test_seasonal_naive_wrmsse_on_real_m5(m5_levels_1_3, official_1_3):
    hist, actuals = m5_levels_1_3
    assert hist.group_by("unique_id").len()["len"].to_list() == [1913] * 14
    assert actuals.group_by("unique_id").len()["len"].to_list() == [28] * 14
    fc = seasonal_naive(hist, actuals)
    per = ev.rmsse_per_series(fc, actuals, ev.m5_rmsse_scale(hist), ["SeasonalNaive"])
    got = dict(ev.wrmsse(per, official_1_3).select("level", "wrmsse").iter_rows())
    assert set(got) == {"total", "region", "warehouse"}
    assert all(math.isfinite(v) and 0.3 < v < 1.5 for v in got.values()), got
    # Level 1 (weight 1) recomputed with plain numpy
    y = hist.filter(pl.col("unique_id") == "total")["y"].to_numpy()
    a = actuals.filter(pl.col("unique_id") == "total")["y"].to_numpy()
    expected = math.sqrt(np.mean((a - np.tile(y[-7:], 4)) ** 2) / np.mean(np.diff(y) ** 2))
    assert got["total"] == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- weights


def test_official_weights_map_onto_platform_ids():
    w = ev.m5_official_weights(WEIGHTS)
    sums = dict(w.group_by("level").agg(pl.col("weight").sum()).iter_rows())
    assert sums == {lv: pytest.approx(1.0, abs=1e-9) for lv in ("total", "region", "warehouse", "sku")}
    ids = {lv: set(w.filter(pl.col("level") == lv)["unique_id"]) for lv in ("total", "region", "warehouse")}
    assert ids["total"] == {"total"}
    assert ids["region"] == {"total/CA", "total/TX", "total/WI"}
    assert ids["warehouse"] == {f"total/{s[:2]}/{s}" for s in STORES}
    assert w.filter(pl.col("unique_id") == "total")["weight"].to_list() == [1.0]
    assert w.filter(pl.col("unique_id") == "total/CA")["weight"][0] == pytest.approx(0.441376, abs=1e-6)

    sku = w.filter(pl.col("level") == "sku")["unique_id"]
    bottom = pl.read_parquet(M5 / "m5_daily_bottom_d1914_d1941.parquet", columns=["item_id", "store_id", "state_id"])
    expected = bottom.unique().select(
        "total/" + pl.col("state_id") + "/" + pl.col("store_id") + "/" + pl.col("item_id")
    )
    assert sku.len() == 30490 and set(sku) == set(expected.to_series())


def test_official_weights_with_explicit_mapping():
    mapping = {("Level1", "Total", "X"): "all", ("Level2", "CA", "X"): "west"}
    w = ev.m5_official_weights(WEIGHTS, id_map=mapping, levels={"Level1": "L1", "Level2": "L2"})
    assert dict(w.select("unique_id", "level").iter_rows()) == {"all": "L1", "west": "L2"}
    assert w.filter(pl.col("unique_id") == "west")["weight"][0] < 1  # unmapped TX, WI are dropped, not renormalised


def test_sales_weights_by_hand():
    hist = frame({"t/A/x": [9, 1, 2], "t/A/y": [9, 3, 0], "t/B/z": [9, 1, 1]})
    prices = frame({"t/A/x": [1, 2, 2], "t/A/y": [1, 1, 5], "t/B/z": [1, 4, 6]}, col="price")
    members = pl.DataFrame(
        {
            "unique_id": ["t", "t/A", "t/B", "t/A/x", "t/A/y", "t/B/z"],
            "level": ["top", "mid", "mid", "leaf", "leaf", "leaf"],
        }
    )
    S = SMatrix(
        sparse.csr_matrix(np.array([[1, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])),
        np.array(members["unique_id"].to_list()),
        np.array(["t/A/x", "t/A/y", "t/B/z"]),
    )
    w = ev.sales_weights(hist, S, members, last_n=2, prices=prices)
    # last 2 periods: x 1*2 + 2*2 = 6, y 3*1 + 0*5 = 3, z 1*4 + 1*6 = 10; A = 9, B = 10, total 19
    got = {uid: v for uid, _, v in w.iter_rows()}
    assert got == pytest.approx(
        {"t": 1.0, "t/A": 9 / 19, "t/B": 10 / 19, "t/A/x": 6 / 19, "t/A/y": 3 / 19, "t/B/z": 10 / 19}
    )


def test_sales_weights_reproduce_official_weights():
    """Units x price over d_1914..d_1941 are the organizers' Dollar_Sales, so the fallback must give their weights."""
    bottom = pl.read_parquet(
        M5 / "m5_daily_bottom_d1914_d1941.parquet", columns=["item_id", "store_id", "state_id", "date", "sales"]
    )
    uid = ("total/" + pl.col("state_id") + "/" + pl.col("store_id") + "/" + pl.col("item_id")).alias("unique_id")
    hist = bottom.select(uid, pl.col("date").alias("ds"), pl.col("sales").alias("y"))
    cal = pl.read_parquet(M5 / "m5_calendar.parquet", columns=["date", "wm_yr_wk"])
    cal = cal.select(pl.col("date").str.to_date(), pl.col("wm_yr_wk").cast(pl.Int32)).filter(
        pl.col("date").is_in(hist["ds"].unique().implode())
    )
    weeks = cal["wm_yr_wk"].unique().to_list()
    prices = (
        pl.scan_parquet(M5 / "m5_sell_prices.parquet")
        .filter(pl.col("wm_yr_wk").is_in(weeks))
        .collect()
        .join(bottom.select("item_id", "store_id", "state_id").unique(), on=["item_id", "store_id"])
        .join(cal, on="wm_yr_wk")
        .select(uid, pl.col("date").alias("ds"), pl.col("sell_price").cast(pl.Float64).round(2).alias("price"))
    )
    parts = hist["unique_id"].unique().str.split("/")
    levels = {1: "total", 2: "region", 3: "warehouse", 4: "sku"}
    members = pl.concat(
        [
            pl.DataFrame({"unique_id": parts.list.head(k).list.join("/"), "level": lv}).unique()
            for k, lv in levels.items()
        ]
    )

    bottom_keys = hist.with_columns(pl.col("unique_id").str.split("/").list.to_struct(fields=["t", "r", "w", "s"]))
    _, S, _ = aggregate(
        bottom_keys.unnest("unique_id").select("t", "r", "w", "s", "ds", "y"),
        [["t"], ["t", "r"], ["t", "r", "w"], ["t", "r", "w", "s"]],
        sparse_s=True,
    )
    ours = ev.sales_weights(hist, S, members, last_n=28, prices=prices)
    official = ev.m5_official_weights(WEIGHTS)
    both = official.join(ours, on=["unique_id", "level"], how="full", coalesce=True)
    assert both.height == official.height == ours.height == 30504
    assert both.null_count().sum_horizontal()[0] == 0
    # the file rounds weights to 12 decimals; assert_allclose also fails on NaN (polars' max would skip it)
    np.testing.assert_allclose(both["weight_right"].to_numpy(), both["weight"].to_numpy(), rtol=0, atol=1e-11)


# ---------------------------------------------------------------- SPL


def test_interval_columns_become_quantiles():
    fc = pl.DataFrame(
        {
            "unique_id": ["a"],
            "ds": [date(2020, 1, 1)],
            "M": [5.0],
            "M-lo-80": [3.0],
            "M-hi-80": [7.0],
            "M-lo-95": [1.0],
            "M-hi-95": [9.0],
        }
    )
    q, taus = ev.intervals_to_quantiles(fc, ["M"], [80, 95])
    assert taus == [0.025, 0.1, 0.5, 0.9, 0.975]
    assert q.columns == ["unique_id", "ds", "M-q-0.025", "M-q-0.1", "M-q-0.5", "M-q-0.9", "M-q-0.975"]
    assert q.row(0)[2:] == (1.0, 3.0, 5.0, 7.0, 9.0)


def test_spl_by_hand_and_perfect_median():
    scale = ev.m5_spl_scale(frame({"a": [0, 0, 3, 1, 4]}))  # 2.5
    actuals = frame({"a": [10]}, start=date(2020, 1, 6))
    fc = actuals.select("unique_id", "ds", pl.lit(8.0).alias("M-q-0.1"), pl.lit(13.0).alias("M-q-0.9"))
    # tau 0.1: y >= q -> 0.1 * 2 = 0.2; tau 0.9: y < q -> 0.1 * 3 = 0.3; mean 0.25 / 2.5
    assert ev.scaled_pinball_loss(fc, actuals, scale, [0.1, 0.9])["spl"][0] == pytest.approx(0.1)
    perfect = actuals.select("unique_id", "ds", pl.col("y").alias(ev.quantile_col("M", 0.5)))
    assert ev.scaled_pinball_loss(perfect, actuals, scale, [0.5]).row(0) == ("a", "M", 0.0)


def test_spl_matches_utilsforecast_on_real_data(m5_levels_1_3, official_1_3):
    hist, actuals = m5_levels_1_3
    fc = seasonal_naive(hist, actuals).with_columns(
        (pl.col("SeasonalNaive") * f).alias(f"SeasonalNaive-{side}-{lv}")
        for side, lv, f in [("lo", 80, 0.9), ("hi", 80, 1.1), ("lo", 95, 0.8), ("hi", 95, 1.2)]
    )
    q, taus = ev.intervals_to_quantiles(fc, ["SeasonalNaive"], [80, 95])
    ours = ev.scaled_pinball_loss(q, actuals, ev.m5_spl_scale(hist), taus).sort("unique_id")
    theirs = scaled_mqloss(
        q.join(actuals, on=["unique_id", "ds"]),
        {"SeasonalNaive": [ev.quantile_col("SeasonalNaive", t) for t in taus]},
        np.array(taus),
        seasonality=1,
        train_df=hist,
    ).sort("unique_id")
    np.testing.assert_allclose(ours["spl"].to_numpy(), theirs["SeasonalNaive"].to_numpy(), rtol=1e-12)
    assert (ours["spl"].is_finite() & (ours["spl"] > 0)).all()  # polars orders NaN above everything
    assert ev.wspl(ours, official_1_3)["wspl"].is_finite().all()


def test_leading_zeros_are_where_utilsforecast_differs():
    hist = frame({"a": [0, 0, 0, 0, 3, 1, 4, 2]})
    actuals = frame({"a": [3, 3]}, start=date(2020, 1, 9))
    fc = actuals.select("unique_id", "ds", pl.lit(2.0).alias("M-q-0.5"))
    ours = ev.scaled_pinball_loss(fc, actuals, ev.m5_spl_scale(hist), [0.5])["spl"][0]
    df = fc.join(actuals, on=["unique_id", "ds"])

    def theirs(train: pl.DataFrame) -> float:
        return scaled_mqloss(df, {"M": ["M-q-0.5"]}, np.array([0.5]), seasonality=1, train_df=train)["M"][0]

    assert ours == pytest.approx(theirs(hist.filter(pl.col("ds") >= date(2020, 1, 5))), rel=1e-12)
    assert ours != pytest.approx(theirs(hist))  # untrimmed: the 0->0 steps shrink the scale
