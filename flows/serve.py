"""Run the nightly flow on a single box without a work pool or worker: ``python -m flows.serve``.

``Flow.serve`` registers a deployment with the Prefect server (its schedule, concurrency limit and default
parameters), then this process polls for that deployment's runs and executes each one in a subprocess. It is the
small-setup alternative to prefect.yaml + ``prefect deploy`` + ``prefect worker start``: one command, nothing else
to keep running, but runs happen only while this process is up. Point PREFECT_API_URL at a server first (or let
Prefect start a temporary local one). Stop with Ctrl-C.

    python -m flows.serve                                  # m5-monthly at 02:30 Europe/Berlin, every night
    python -m flows.serve --job tourism --cron "0 4 * * 1"
    python -m flows.serve --no-schedule                    # only runs triggered by `prefect deployment run`
"""

from __future__ import annotations

import argparse

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron

from flows.nightly import nightly_forecast
from forecasting.job.loading import DEFAULT_JOB


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--job", default=DEFAULT_JOB, help="bundled job name or job file (the default parameter)")
    parser.add_argument("--name", help="deployment name (default: <job>-serve)")
    parser.add_argument("--cron", default="30 2 * * *", help="schedule (default: 02:30 every night)")
    parser.add_argument("--timezone", default="Europe/Berlin")
    parser.add_argument("--no-schedule", action="store_true", help="no schedule: run only when triggered")
    args = parser.parse_args(argv)
    schedules = [] if args.no_schedule else [Cron(args.cron, timezone=args.timezone)]
    nightly_forecast.serve(
        name=args.name or f"{args.job}-serve",
        parameters={"job": args.job},
        schedules=schedules,
        tags=["forecasting", "serve"],
        # As in prefect.yaml: one run of the deployment at a time, a colliding one is cancelled; this process
        # also executes at most one run at once. The output-folder lock covers runs started elsewhere.
        global_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        limit=1,
    )


if __name__ == "__main__":
    main()
