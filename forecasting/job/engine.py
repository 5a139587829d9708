"""Where a job's base models run: locally, or on a Dask cluster (forecasting.models.engines runs them)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from forecasting.job.common import Strict


class EngineSpec(Strict):
    """Where the base models run."""

    kind: Literal["local", "dask"] = Field("local", description="local: this machine; dask: a Dask cluster")
    scheduler: str | None = Field(
        None, description="Dask scheduler address (tcp://host:8786); none: start a LocalCluster on this machine"
    )
    workers: int = Field(2, ge=1, le=256, description="worker processes of the LocalCluster (no scheduler given)")
    partitions: int | None = Field(
        None,
        ge=1,
        description="dask: partitions of the history (default: 2 per worker thread of the cluster); local: fit the "
        "series in this many groups one after another (same forecasts; peak memory of one group's interval and "
        "in-sample arrays instead of all of them)",
    )
    lightgbm_training: Literal["one_worker", "data_parallel"] = Field(
        "one_worker",
        description="dask: how the global LightGBM trains on the features the cluster built. one_worker: LightGBM's "
        "single-machine learner on one worker (the local run's numbers bit for bit, on any number of workers); "
        "data_parallel: LightGBM's data-parallel learner across the workers, for training sets larger than one "
        "worker's memory (not the local numbers: docs/scale.md, 'Local vs Dask LightGBM')",
    )
