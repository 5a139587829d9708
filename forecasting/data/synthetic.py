"""Seeded synthetic SKU x warehouse x region sales of any size, in the raw format the jobs read.

Why: the scale benchmark (benchmarks.scale_benchmark) needs 10k..1M bottom series with the features that make real
demand hard (weekly and yearly seasonality, trends, intermittent SKUs, price changes, launches and delistings), and
the bundled M5 data has 30,490. Written with numpy in chunks of series straight to parquet row groups, so memory stays
flat whatever the size.

Files (column names as the M5 files, so job files look alike):
- sales.parquet: item_id, store_id, state_id, date, sales. One row per series x period while the item is listed:
  zero-sales rows included (as in M5), no rows before launch or after delisting. A delisted item's missing tail is a
  gap to the data-quality gate, so the job sets `zero_fill_gaps: true`. Most launches leave at least `min_history`
  periods; `share_short` of the series launch in the last 1..`min_history` periods (new products, which the run
  forecasts with the launch models, forecasting.models.young).
- prices.parquet: store_id, item_id, wm_yr_wk, sell_price per listed week (plus `future_weeks` planned weeks).
- calendar.parquet: date, wm_yr_wk (weeks start on Monday, like DuckDB's date_trunc('week')).

`python -m forecasting.data.synthetic --series 100000 --freq week --out data/synthetic/bench-100000`
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = date(2023, 1, 2)  # a Monday
WEEKDAY_SHAPE = np.array([0.85, 0.8, 0.85, 0.95, 1.15, 1.35, 1.05])  # Monday .. Sunday
CHUNK = 20_000  # series per generated chunk (one parquet row group)


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate. `periods` counts days or weeks of history ending the day before `end`."""

    series: int
    freq: str = "week"  # "day" or "week"
    periods: int = 104
    seed: int = 0
    min_history: int = 60  # launches leave at least this many periods (the job's min_history)
    share_new: float = 0.10
    share_short: float = 0.02  # launched in the last 1..min_history periods (drawn last: other draws unchanged)
    share_delisted: float = 0.05
    share_intermittent: float = 0.30
    future_weeks: int = 13
    prices: bool = True

    @property
    def warehouses(self) -> int:
        return int(np.clip(self.series // 2_500, 4, 400))

    @property
    def regions(self) -> int:
        return int(np.clip(self.warehouses // 8, 2, 20))

    @property
    def days_per_period(self) -> int:
        return 7 if self.freq == "week" else 1

    @property
    def last_day(self) -> date:
        return START + timedelta(days=self.periods * self.days_per_period - 1)


def names(prefix: str, n: int, width: int) -> pa.Array:
    return pa.array([f"{prefix}{i:0{width}d}" for i in range(n)])


def series_keys(spec: SyntheticSpec, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Series i sits in warehouse i % W (warehouse w in region w % R) and sells SKU i // W: every SKU is listed in
    every warehouse, the usual shape of a catalogue."""
    warehouse = idx % spec.warehouses
    return idx // spec.warehouses, warehouse, warehouse % spec.regions


def chunk_demand(spec: SyntheticSpec, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Weekly price path and per-period demand of the series `idx` (seeded by the chunk's first index)."""
    rng = np.random.default_rng([spec.seed, int(idx[0])])
    n, p = idx.size, spec.periods
    t = np.arange(p)
    day = t * spec.days_per_period  # day offset of each period from START
    weeks = math.ceil(p * spec.days_per_period / 7) + spec.future_weeks
    intermittent = rng.random(n) < spec.share_intermittent
    # Units per period: intermittent SKUs sell less than one unit in most periods, others a daily rate x days.
    regular = np.exp(rng.normal(0.8, 1.0, n)) * spec.days_per_period
    level = np.where(intermittent, rng.uniform(0.05, 0.6, n), regular)
    _, warehouse, _ = series_keys(spec, idx)
    site = np.exp(np.random.default_rng([spec.seed, 1]).normal(0, 0.25, spec.warehouses))[warehouse]
    trend = np.exp(rng.normal(0, 0.25, n)[:, None] * day[None, :] / 365.25)
    # Yearly cycle: a shared December peak (phase 2.0 puts the sine's top near day 340) with per-series spread.
    amp, phase = rng.uniform(0, 0.6, n), rng.normal(2.0, 0.6, n)
    yearly = 1 + amp[:, None] * np.sin(2 * np.pi * day[None, :] / 365.25 + phase[:, None])
    weekly = 1.0
    if spec.freq == "day":
        strength = rng.uniform(0.3, 1.0, n)[:, None]
        weekly = 1 + strength * (WEEKDAY_SHAPE[(START.weekday() + t) % 7][None, :] - 1)
    # Prices: a base shelf price and up to 3 permanent changes (+/- 25 %) at random weeks; demand follows with a
    # per-series elasticity.
    base_price = np.round(np.exp(rng.normal(1.5, 0.7, n)), 2)
    change_week = rng.integers(0, weeks, (n, 3))
    change = np.where(rng.random((n, 3)) < 0.5, rng.uniform(0.75, 1.25, (n, 3)), 1.0)
    week_idx = np.arange(weeks)
    factor = np.prod(np.where(week_idx[None, None, :] >= change_week[:, :, None], change[:, :, None], 1.0), axis=1)
    price = np.round(base_price[:, None] * factor, 2)
    elasticity = rng.uniform(-2.5, -0.5, n)
    price_effect = (price[:, day // 7] / base_price[:, None]) ** elasticity[:, None]
    rate = level[:, None] * site[:, None] * trend * yearly * weekly * price_effect
    noisy = rate * rng.gamma(4.0, 0.25, (n, p))  # negative-binomial demand: Poisson of a gamma-mixed rate
    sales = rng.poisson(noisy).astype(np.int32)
    launch = np.where(rng.random(n) < spec.share_new, rng.integers(0, p - spec.min_history + 1, n), 0)
    delisted = rng.random(n) < spec.share_delisted
    stop = np.where(delisted, rng.integers(np.minimum(launch + spec.min_history, p - 1), p), p)
    short = rng.random(n) < spec.share_short
    launch = np.where(short, p - rng.integers(1, spec.min_history + 1, n), launch)
    stop = np.where(short, p, stop)
    return {"sales": sales, "price": price, "launch": launch, "stop": stop}


def write(spec: SyntheticSpec, out: Path) -> dict[str, int]:
    """Write sales (and prices, calendar) under `out`; returns row counts."""
    if spec.periods < spec.min_history + 1:
        raise ValueError(f"periods ({spec.periods}) must exceed min_history ({spec.min_history})")
    out.mkdir(parents=True, exist_ok=True)
    skus = names("SKU", math.ceil(spec.series / spec.warehouses), 7)
    stores, states = names("WH", spec.warehouses, 3), names("R", spec.regions, 2)
    t_days = np.arange(spec.periods) * spec.days_per_period
    dates = pa.array((np.datetime64(START) + t_days).astype("datetime64[D]"))
    weeks = math.ceil(spec.periods * spec.days_per_period / 7) + spec.future_weeks
    sales_schema = pa.schema(
        [
            ("item_id", pa.string()),
            ("store_id", pa.string()),
            ("state_id", pa.string()),
            ("date", pa.date32()),
            ("sales", pa.int32()),
        ]
    )
    price_schema = pa.schema(
        [("store_id", pa.string()), ("item_id", pa.string()), ("wm_yr_wk", pa.int32()), ("sell_price", pa.float32())]
    )
    counts = {"sales": 0, "prices": 0}
    sales_writer = pq.ParquetWriter(out / "sales.parquet", sales_schema)
    price_writer = pq.ParquetWriter(out / "prices.parquet", price_schema) if spec.prices else None
    try:
        for first in range(0, spec.series, CHUNK):
            idx = np.arange(first, min(first + CHUNK, spec.series))
            part = chunk_demand(spec, idx)
            sku, wh, region = series_keys(spec, idx)
            t = np.arange(spec.periods)
            alive = (t[None, :] >= part["launch"][:, None]) & (t[None, :] < part["stop"][:, None])
            row, col = np.nonzero(alive)
            sales_writer.write_table(
                pa.table(
                    [
                        skus.take(sku[row]),
                        stores.take(wh[row]),
                        states.take(region[row]),
                        dates.take(col),
                        pa.array(part["sales"][row, col]),
                    ],
                    schema=sales_schema,
                )
            )
            counts["sales"] += row.size
            if price_writer is not None:
                launch_week = part["launch"] * spec.days_per_period // 7
                stop_week = np.where(part["stop"] < spec.periods, part["stop"] * spec.days_per_period // 7, weeks)
                w = np.arange(weeks)
                listed = (w[None, :] >= launch_week[:, None]) & (w[None, :] < stop_week[:, None])
                prow, pcol = np.nonzero(listed)
                price_writer.write_table(
                    pa.table(
                        [
                            stores.take(wh[prow]),
                            skus.take(sku[prow]),
                            pa.array(pcol.astype(np.int32) + 1),
                            pa.array(part["price"][prow, pcol].astype(np.float32)),
                        ],
                        schema=price_schema,
                    )
                )
                counts["prices"] += prow.size
    finally:
        sales_writer.close()
        if price_writer is not None:
            price_writer.close()
    days = np.arange(weeks * 7)
    calendar = pa.table(
        {
            "date": pa.array([(START + timedelta(days=int(d))).isoformat() for d in days]),
            "wm_yr_wk": pa.array((days // 7 + 1).astype(np.int32)),
        }
    )
    pq.write_table(calendar, out / "calendar.parquet")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a seeded synthetic sales history (see module docstring).")
    parser.add_argument("--series", type=int, required=True, help="bottom series (SKU x warehouse)")
    parser.add_argument("--freq", choices=["day", "week"], default="week")
    parser.add_argument("--periods", type=int, default=104, help="days or weeks of history")
    parser.add_argument("--min-history", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--share-short", type=float, default=0.02, help="share of series launched in the last 1..min_history periods"
    )
    parser.add_argument("--no-prices", action="store_true", help="write no prices file (the benchmark job reads none)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    spec = SyntheticSpec(
        series=args.series,
        freq=args.freq,
        periods=args.periods,
        seed=args.seed,
        min_history=args.min_history,
        share_short=args.share_short,
        prices=not args.no_prices,
    )
    counts = write(spec, args.out)
    print(
        f"{args.out}: {spec.series:,} series ({spec.warehouses} warehouses in {spec.regions} regions), "
        f"{spec.periods} {spec.freq}s {START} .. {spec.last_day}; {counts['sales']:,} sales rows, "
        f"{counts['prices']:,} price rows"
    )


if __name__ == "__main__":
    main()
