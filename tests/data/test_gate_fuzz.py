"""Fuzzing the data-quality gate with hypothesis (issue 34, 8): real tourism series with random damage (special
values, dropped, repeated or shifted rows, odd keys) go through load, validate and aggregate. Each either passes
with a history a model can fit (finite, non-negative, within the bound, long enough for every model the job runs,
one id per series) or is refused with an error the user can act on (an InputError, one line); never anything else."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from support import TOURISM, tourism_slice

from forecasting.job.errors import InputError
from forecasting.pipeline import load_hierarchy

SERIES = (
    pl.read_parquet(TOURISM)
    .filter((pl.col("State") == "Tasmania") & pl.col("Region").is_in(["Hobart and the South", "East Coast"]))
    .sort("Region", "Purpose", "Quarter")
)
SPECIAL = [float("nan"), float("inf"), float("-inf"), -1.0, 0.0, 1e300, 1e13, -0.0, 5e-324]
ODD_KEYS = ["East/Coast", "", "Business", "Holiday", "Hobart and the South ", "total"]


@st.composite
def damaged(draw: st.DrawFn) -> tuple[pl.DataFrame, int]:
    """A slice of the real rows (the last 1..80 quarters) with up to four kinds of damage, and a min_history."""
    quarters = draw(st.integers(1, 80))
    frame = SERIES.filter(pl.col("Quarter") >= SERIES["Quarter"].max() - timedelta(days=int(91.4 * (quarters - 1))))
    for _ in range(draw(st.integers(0, 4))):
        if frame.is_empty():
            break
        row = draw(st.integers(0, frame.height - 1))
        kind = draw(st.sampled_from(["value", "drop", "repeat", "shift", "key", "zero series"]))
        at = pl.int_range(pl.len()) == row
        if kind == "value":
            frame = frame.with_columns(
                pl.when(at).then(draw(st.sampled_from(SPECIAL))).otherwise("Trips").alias("Trips")
            )
        elif kind == "drop":
            frame = frame.filter(~at)
        elif kind == "repeat":
            frame = pl.concat([frame, frame.slice(row, 1)])
        elif kind == "shift":
            days = draw(st.integers(-400, 400))
            frame = frame.with_columns(pl.when(at).then(pl.col("Quarter") + timedelta(days=days)).otherwise("Quarter"))
        elif kind == "key":
            column = draw(st.sampled_from(["Region", "Purpose", "State"]))
            frame = frame.with_columns(
                pl.when(at).then(pl.lit(draw(st.sampled_from(ODD_KEYS)))).otherwise(column).alias(column)
            )
        else:
            region = frame["Region"][row]
            frame = frame.with_columns(pl.when(pl.col("Region") == region).then(0.0).otherwise("Trips").alias("Trips"))
    return frame, draw(st.sampled_from([2, 4, 8, 24]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damaged())
def test_the_gate_passes_what_models_can_fit_or_refuses_in_one_line(tmp_path_factory, case):
    frame, min_history = case
    tmp = Path(tmp_path_factory.mktemp("gate"))
    path = tmp / "sales.parquet"
    frame.write_parquet(path)
    sales = tourism_slice(tmp).source.sales.model_dump() | {"path": str(path)}
    job = tourism_slice(
        tmp, source={"sales": sales, "observed_from": None, "observed_to": None}, min_history=min_history
    )
    try:
        _, hierarchy = load_hierarchy(job)
    except InputError as exc:
        assert "\n" not in str(exc) and getattr(exc, "stage", None) in ("load", "validate", "aggregate"), exc
        event(f"refused at {exc.stage}: {str(exc).split(': ')[2 if 'gate' in str(exc) else 1][:40]}")
        return
    event("passed")
    y = hierarchy.Y_df["y"]
    assert y.is_finite().all() and (y >= 0).all() and (y <= job.source.max_quantity * len(frame)).all()
    assert (y > 0).any()
    bottom = hierarchy.Y_df.filter(pl.col("unique_id").is_in(hierarchy.ids(hierarchy.bottom)))
    assert bottom.group_by("unique_id").len()["len"].min() >= 1  # short series pass: the launch models take them
    assert hierarchy.members["unique_id"].n_unique() == hierarchy.members.height
    assert not hierarchy.members.select(pl.col(job.hierarchy.columns).str.contains("/", literal=True).any()).row(0)[0]
