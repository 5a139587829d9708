"""The job: plain, validated data that says what a run does. Imports nothing else of the project."""

from forecasting.job.common import project_root
from forecasting.job.loading import DEFAULT_JOB, JobConfigError, available_jobs, jobs_dir, load_job, parse_job
from forecasting.job.schema import PANDAS_FREQ, POLARS_FREQ, JobSpec

__all__ = [
    "DEFAULT_JOB",
    "PANDAS_FREQ",
    "POLARS_FREQ",
    "JobConfigError",
    "JobSpec",
    "available_jobs",
    "jobs_dir",
    "load_job",
    "parse_job",
    "project_root",
]
