"""The Dask client a job's engine runs on: made once per process, closed at exit; and the local frame layout the
distributed libraries' results are brought back to."""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING

import polars as pl

from forecasting.job.engine import EngineSpec

if TYPE_CHECKING:
    from distributed import Client

_clients: dict[tuple, Client] = {}


def client(spec: EngineSpec) -> Client:
    """A Dask client for the spec, made once per process and closed at exit (a LocalCluster dies with it)."""
    from distributed import Client, LocalCluster

    key = (spec.scheduler, spec.workers)
    if key not in _clients or _clients[key].status in ("closed", "closing"):
        if spec.scheduler:
            _clients[key] = Client(spec.scheduler, set_as_default=False)
        else:
            cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True)
            _clients[key] = Client(cluster, set_as_default=False)
            atexit.register(cluster.close)
        atexit.register(_clients[key].close)
    return _clients[key]


def close_clients() -> None:
    """Close the clients this process made (before their cluster goes away, so none tries to reconnect)."""
    while _clients:
        _clients.popitem()[1].close()


def local_layout(frame, ds_type: pl.DataType) -> pl.DataFrame:
    """pandas result of the Fugue backend -> polars with the local run's types (Fugue's schema uses float32 for
    model columns), sorted as statsforecast sorts locally."""
    out = pl.from_pandas(frame.reset_index(drop=True))
    floats = [c for c, t in out.schema.items() if t.is_float()]
    return (
        out.with_columns(pl.col("unique_id").cast(pl.String), pl.col("ds").cast(ds_type))
        .with_columns(pl.col(floats).cast(pl.Float64))
        .sort("unique_id", "ds")
    )
