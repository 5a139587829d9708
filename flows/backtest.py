"""The backtest the nightly run reads, as a scheduled Prefect 3 flow: the same `forecasting.pipeline.backtest_job`
the CLI's `forecasting backtest` calls, with the job's `backtest` settings (windows, step) unless the run says
otherwise.

Why a schedule: with `choose_from_backtest`, `calibration: backtest` or `staffing.demand_uncertainty: backtest` the
nightly run takes its models, its reconciled intervals and its staffing bands from the job's latest backtest; run
by hand, that backtest only ages. The deployment in prefect.yaml refreshes it weekly, hours before that night's
forecast. The backtest computes without any lock and publishes under the job's output lock, which a nightly run
holds from its first read of the backtest to its publish, so a nightly run reads one backtest throughout.
"""

from datetime import date
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import Task

from flows.nightly import IN_MEMORY, resolve_job
from forecasting.job.loading import DEFAULT_JOB
from forecasting.job.schema import JobSpec
from forecasting.outputs.runs import read_manifest
from forecasting.pipeline import backtest_job


def retry_io_only(task: Task[..., Any], task_run: TaskRun, state: State) -> bool:
    """Retry a failed backtest on an I/O error only: any other error would recompute for minutes and fail the same
    way (the nightly's load and write tasks retry more, since they are cheap)."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:
        return False
    return True


@task(name="backtest", retries=2, retry_delay_seconds=30, retry_condition_fn=retry_io_only, **IN_MEMORY)
def backtest_task(job: JobSpec, as_of: date | None, windows: int | None, step: int | None) -> dict[str, Any]:
    """One task, not one per stage: the backtest's stages share in-memory frames and the CLI runs them as one call;
    its progress lines go to the run's log."""
    folder, result = backtest_job(job, as_of, windows, step, progress=get_run_logger().info)
    manifest = read_manifest(folder)
    return {k: manifest[k] for k in ("as_of", "windows", "step", "cutoffs")} | {
        "folder": str(folder),
        "base_models": result.base_models,
    }


@flow(name="backtest", persist_result=False)
def scheduled_backtest(
    job: str | JobSpec = DEFAULT_JOB, as_of: date | None = None, windows: int | None = None, step: int | None = None
) -> dict[str, Any]:
    """Backtest ``job`` (a bundled job name or a full job spec) over ``windows`` rolling origins ``step`` periods
    apart (default: the job's `backtest` settings), as of ``as_of`` (default: the last day the source covers), and
    publish it where the nightly run looks for it. Returns the backtest folder, its windows, step and cutoffs, and
    Base per level."""
    spec = resolve_job(job)
    get_run_logger().info(
        "job %s, %s windows, as of %s",
        spec.name,
        spec.backtest.windows if windows is None else windows,
        as_of or "the newest data",
    )
    return {"job": spec.name, **backtest_task(spec, as_of, windows, step)}


if __name__ == "__main__":
    scheduled_backtest()
