"""The backtest the nightly run reads, as a scheduled Prefect 3 flow: the same `forecasting.backtest.backtest_job`
the CLI's `forecasting backtest` calls, with the job's `backtest` settings (windows, step) unless the run says
otherwise.

Why a schedule: with `choose_from_backtest`, `calibration: backtest` or `staffing.demand_uncertainty: backtest` the
nightly run takes its models, its reconciled intervals and its staffing bands from the job's latest backtest; run
by hand, that backtest only ages. The deployment in prefect.yaml refreshes it weekly, hours before that night's
forecast. It does not hold the nightly run's output lock while it computes: it publishes atomically into its own
folder (`backtests/<as-of>/`, own `latest`, under that folder's lock), so a nightly run beside it reads either the
old backtest or the new one, never half of one.
"""

from datetime import date
from typing import Any

from prefect import flow, get_run_logger, task

from flows.nightly import IN_MEMORY, RETRY_IO, resolve_job
from forecasting.backtest import backtest_job
from forecasting.config import DEFAULT_JOB, JobSpec


@task(name="backtest", **RETRY_IO, **IN_MEMORY)
def backtest_task(job: JobSpec, as_of: date | None, windows: int | None, step: int | None) -> dict[str, Any]:
    """Load, cross-validate every model, reconcile every window, publish; progress to the run's log."""
    logger = get_run_logger()
    folder, result = backtest_job(job, as_of, windows, step, progress=logger.info)
    cutoffs = sorted(result.reconciled["cutoff"].unique().to_list())
    return {"folder": str(folder), "cutoffs": [c.isoformat() for c in cutoffs], "base_models": result.base_models}


@flow(name="backtest", persist_result=False)
def scheduled_backtest(
    job: str | JobSpec = DEFAULT_JOB, as_of: date | None = None, windows: int | None = None, step: int | None = None
) -> dict[str, Any]:
    """Backtest ``job`` (a bundled job name or a full job spec) over ``windows`` rolling origins ``step`` periods
    apart (default: the job's `backtest` settings), as of ``as_of`` (default: the last day the source covers), and
    publish it where the nightly run looks for it. Returns the backtest folder, its cutoffs and Base per level."""
    spec = resolve_job(job)
    if windows is not None and windows < 1:
        raise ValueError("windows must be at least 1")  # here, not in the task: its retries are for I/O errors
    get_run_logger().info(
        "job %s, %s windows, as of %s", spec.name, windows or spec.backtest.windows, as_of or "the newest data"
    )
    return {"job": spec.name, **backtest_task(spec, as_of, windows, step)}


if __name__ == "__main__":
    scheduled_backtest()
