"""Test helpers: slices of the real M5 data, and waiting for a flow run's task runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NoReturn

import duckdb
import pytest

from forecasting.job.common import project_root
from forecasting.job.loading import load_job
from forecasting.job.schema import JobSpec

M5_MONTHLY = project_root() / "data" / "m5" / "m5_monthly_sales.parquet"


def unavailable(reason: str) -> NoReturn:
    """An outside program a `services` test needs (Chromium, a PostgreSQL server) is missing: a failure, never a
    skip. Those tests are deselected from the default `pytest` run and selected by `pytest -m services`, which
    .ci/run runs after installing both."""
    pytest.fail(f"{reason}: `pytest -m services` needs it (.ci/run installs it with apt-get)")


def first_items(store: str, n: int) -> list[str]:
    rows = duckdb.execute(
        "SELECT DISTINCT item_id FROM read_parquet(?) WHERE store_id = ? ORDER BY item_id LIMIT ?",
        [str(M5_MONTHLY), store, n],
    ).fetchall()
    return [r[0] for r in rows]


def slice_job(tmp: Path, stores: tuple[str, ...] = ("CA_1", "TX_1"), n_items: int = 40, **update) -> JobSpec:
    """The bundled m5-monthly job on a few real stores and items, writing under `tmp`, without AutoARIMA at the
    aggregate levels: its fits are a third of a slice run's time and some 40 tests run slices; the model contract
    test and tests/reconcile/test_reconcile.py still run it."""
    job = load_job("m5-monthly")
    items = first_items(stores[0], n_items)
    models = job.models.model_dump()
    models["aggregate_models"] = [name for name in models["aggregate_models"] if name != "AutoARIMA"]
    data = job.model_dump() | {
        "models": models,
        "warehouse_filter": list(stores),
        "sku_filter": items,
        "output_root": str(tmp / "outputs"),
        # One process on slices of 80 series: starting a worker pool costs more than it saves. The pool itself is
        # tested in test_models (after a multi-threaded LightGBM, in this long-lived process).
        "n_jobs": 1,
    }
    data.update(update)
    return JobSpec.model_validate(data)


def assert_coherent(reconciled, atol: float = 1e-6) -> None:
    """Children sum to their parent at every level, horizon step and method, to `atol` units."""
    import numpy as np
    import polars as pl

    # Base rows published at a level where the plan's guard refused the reconciliation are not a reconciliation:
    # they are there, flagged published, so that the level does not publish harm; they do not add up by design.
    reconciled = reconciled.filter(pl.col("method") != "Base") if "method" in reconciled.columns else reconciled
    pairs = [("sku", "warehouse", ["warehouse"]), ("warehouse", "region", ["region"]), ("region", "total", [])]
    for child, parent, keys in pairs:
        sums = (
            reconciled.filter(pl.col("level") == child)
            .group_by(["method", "ds", *keys])
            .agg(pl.col("mean").sum().alias("children"))
        )
        parents = reconciled.filter(pl.col("level") == parent).select("method", "ds", *keys, "mean")
        joined = parents.join(sums, on=["method", "ds", *keys], how="full", coalesce=True)
        assert joined.height == parents.height, f"{parent} rows without {child} children"
        np.testing.assert_allclose(joined["mean"].to_numpy(), joined["children"].to_numpy(), rtol=0, atol=atol)


def daily_job(output_root: Path, models: list[str], primary: str, **update) -> JobSpec:
    """The bundled m5-daily-warehouse job with `models` at every level, `primary` behind Base, no backtest-based
    choice, one process; `update` goes into the models spec (e.g. a cheaper `lightgbm`)."""
    job = load_job("m5-daily-warehouse", output_root=str(output_root), n_jobs=1)
    spec = job.models.model_copy(
        update={
            "aggregate_models": models,
            "bottom_models": models,
            "primary": {level: primary for level in job.hierarchy.names},
            "choose_from_backtest": False,
        }
        | update
    )
    # No time grains: these tests are about the days (the grains have tests/reconcile/test_temporal.py).
    return job.model_copy(update={"models": spec, "grains": None})


def grains_slice_job(output_root: Path) -> JobSpec:
    """m5-daily-warehouse with its time grains on three real stores (two regions), fast models at every grain
    (SeasonalNaive, Naive), two rolling origins per coarse grain, one process, no backtest-based model choice."""
    fast = ["SeasonalNaive", "Naive"]
    job = load_job("m5-daily-warehouse", output_root=str(output_root), n_jobs=1)
    models = job.models.model_copy(
        update={
            "aggregate_models": fast,
            "bottom_models": fast,
            "primary": {level: fast[0] for level in job.hierarchy.names},
            "choose_from_backtest": False,
        }
    )
    assert job.grains is not None
    grains = job.grains.model_copy(
        update={"windows": 2, "coarser": [g.model_copy(update={"models": fast}) for g in job.grains.coarser]}
    )
    return job.model_copy(update={"models": models, "grains": grains, "warehouse_filter": ["CA_1", "CA_2", "TX_1"]})


def backtested_daily_job(output_root: Path, windows: int = 2) -> JobSpec:
    """The daily job with two fast models, choosing Base from its latest backtest, whose `windows` come from the job
    file; validated from its JSON form, as a deployment's API receives it."""
    from forecasting.job.schema import BacktestSpec

    job = daily_job(
        output_root, ["SeasonalNaive", "Naive"], "SeasonalNaive", choose_from_backtest=True, combinations={}
    )
    job = job.model_copy(update={"backtest": BacktestSpec(windows=windows)})
    return JobSpec.model_validate(job.model_dump(mode="json"))


def task_runs_of(flow_run_id, expected: int, timeout: float = 20.0) -> list:
    """Task run states reach the server as events; wait until every task run is recorded in a final state."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + timeout
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            settled = [r for r in runs if r.state is not None and r.state.is_final()]
            if (len(settled) >= expected and len(settled) == len(runs)) or time.monotonic() > deadline:
                return runs
            time.sleep(0.25)


def rmsse_by_hand(rows, history) -> float:
    """One series' RMSSE over its backtest windows, without the platform's scorer: per window the mean squared error
    over the M5 scale (mean squared one-step change of the history up to the cutoff, from the first non-zero value),
    its square root, averaged over the windows. `rows`: the series' cutoff, mean, y; `history`: its ds, y."""
    import polars as pl

    values = []
    for cutoff in sorted(rows["cutoff"].unique().to_list()):
        window = rows.filter(pl.col("cutoff") == cutoff)
        past = history.filter(pl.col("ds") <= cutoff).sort("ds")["y"]
        past = past.filter((past != 0).cum_sum() > 0)
        scale = (past.diff() ** 2).mean()
        values.append(float(((window["mean"] - window["y"]) ** 2).mean() / scale) ** 0.5)
    return sum(values) / len(values)


def check_forecast_contract(result, Y, job) -> None:
    """A model's forecasts of the series in Y: every series, every period of the horizon after the history, means
    and every interval bound present, bounds around the mean and nested (95 % outside 80 %), in-sample fits kept."""

    n_series = Y["unique_id"].n_unique()
    fc = result.forecasts
    assert fc.height == n_series * job.horizon
    assert fc.group_by("unique_id").len()["len"].to_list() == [job.horizon] * n_series
    last = Y["ds"].max()
    assert fc["ds"].min() > last
    for name in result.models:
        assert fc[name].null_count() == 0
        for lv in job.levels:
            lo, hi = fc[f"{name}-lo-{lv}"], fc[f"{name}-hi-{lv}"]
            assert lo.null_count() == 0 and hi.null_count() == 0
            assert (lo <= fc[name] + 1e-9).all() and (fc[name] <= hi + 1e-9).all()
        wider = (fc[f"{name}-lo-95"] <= fc[f"{name}-lo-80"] + 1e-9) & (
            fc[f"{name}-hi-80"] <= fc[f"{name}-hi-95"] + 1e-9
        )
        assert wider.all()
        assert {"unique_id", "ds", "y", name} <= set(result.fitted.columns)

    assert set(fc["unique_id"]) == set(Y["unique_id"])
    assert fc.columns[:2] == ["unique_id", "ds"] and fc.schema["ds"] == Y.schema["ds"]


TOURISM = project_root() / "data" / "tourism" / "tourism.parquet"


def tourism_slice(tmp: Path, states: tuple[str, ...] = ("Tasmania",), **update) -> JobSpec:
    """The bundled tourism job (quarterly, grouped (State / Region) x Purpose) on one state's 20 real series, in one
    process, writing under `tmp`: about 2 s a run. `update` replaces top-level fields; `source` is merged."""
    data = load_job("tourism").model_dump()
    source = update.pop("source", {})
    data["source"] |= source
    data |= {"filters": {"state": list(states)}, "output_root": str(tmp / "outputs"), "n_jobs": 1} | update
    return JobSpec.model_validate(data)


def job_yaml(job: JobSpec, path: Path) -> Path:
    """The job as a YAML file, as a user writes one."""
    import yaml

    path.write_text(yaml.safe_dump(job.model_dump(mode="json"), sort_keys=False))
    return path


def checksums(folder: Path) -> dict[str, str]:
    """Every file and link under `folder` (links not followed): its sha256, or where the link points."""
    import hashlib
    import os

    found = {}
    if not folder.exists() and not folder.is_symlink():
        return found
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root) / name
            key = str(path.relative_to(folder))
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_file():
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300, **popen):
    """The installed `forecasting` command in a real process: (exit code, stdout, stderr)."""
    import os
    import subprocess
    import sys

    command = [str(Path(sys.executable).parent / "forecasting"), *args]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=os.environ | (env or {}), **popen
    )
    return done.returncode, done.stdout, done.stderr


def one_error_line(stderr: str) -> str:
    """The failure's one line: stderr holds nothing else (no traceback, no second message)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]
