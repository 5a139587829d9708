"""The reconciliation methods of the catalogue (forecasting.job.catalogue.RECONCILERS) as hierarchicalforecast
reconcilers: BottomUp and MinTrace (every variant, non-negative as the job says). MiddleOut is its own module
(forecasting.reconcile.middle_out). The contract tests (tests/reconcile/test_method_contract.py) run the same checks
over every method label a job can name."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any, TypeVar

from hierarchicalforecast.methods import BottomUp, BottomUpSparse, MinTrace, MinTraceSparse

from forecasting.job.catalogue import RECONCILERS
from forecasting.job.errors import NOT_THE_DATA
from forecasting.job.reconciliation import MIDDLE_OUT
from forecasting.job.schema import JobSpec

T = TypeVar("T")
DENSE_ONLY = {"mint_shrink"}  # the library has no sparse version: an n x n shrunk covariance
MAX_DENSE_SERIES = 5000  # 5,000^2 doubles = 200 MB per covariance; M5 monthly's 30,504 series would need 7.4 GB


def family(label: str) -> str:
    """The catalogue family of a method label: BottomUp, MinTrace (MinTrace_<variant>) or MiddleOut."""
    return "MiddleOut" if label.startswith(MIDDLE_OUT) else label.partition("_")[0]


def builder(label: str) -> Callable[..., Any]:
    """The function registered for a method label's family."""
    module, _, function = RECONCILERS[family(label)].builder.partition(":")
    return getattr(import_module(module), function)


def bottom_up(label: str, job: JobSpec, sparse: bool, n_series: int = 0) -> BottomUp:
    return BottomUpSparse() if sparse else BottomUp()


def min_trace(label: str, job: JobSpec, sparse: bool, n_series: int = 0) -> MinTrace:
    """The library's MinTrace for `MinTrace_<variant>`; refused where its dense covariance would not fit."""
    variant = label.removeprefix("MinTrace_")
    dense_only = variant in DENSE_ONLY
    if dense_only and n_series > MAX_DENSE_SERIES:
        raise ValueError(
            f"reconciliation {label} needs a dense {n_series} x {n_series} covariance; "
            f"use wls_var or wls_struct above {MAX_DENSE_SERIES} series"
        )
    # One thread for mint_shrink: the library's covariance sums over OpenMP threads in no fixed order, and
    # reruns of the same backtest differed by up to 7e-10.
    threads = 1 if dense_only else job.n_jobs
    return library_min_trace(variant, job, sparse=sparse and not dense_only, threads=threads)


def reconcilers(job: JobSpec, sparse: bool, n_series: int = 0) -> list[tuple[str, object]]:
    """(output label, hierarchicalforecast reconciler) per configured method other than middle-out ones (those
    reconcile in two steps: forecasting.reconcile.middle_out)."""
    spec = job.reconciliation
    labels = [spec.label(method) for method in spec.methods]
    return [(label, builder(label)(label, job, sparse, n_series)) for label in labels if family(label) != "MiddleOut"]


def library_min_trace(variant: str, job: JobSpec, sparse: bool, threads: int = 1) -> MinTrace:
    """The library's MinTrace for a variant, non-negative as the job says: sparse with the QP or the clip heuristic,
    dense with the QP (the library's dense MinTrace has only the QP)."""
    how = job.reconciliation.nonnegative_method
    if sparse:
        return MinTraceSparse(variant, nonnegative=how is not None, num_threads=threads, qp=how != "clip")
    return MinTrace(method=variant, nonnegative=how is not None, num_threads=threads)


def fallbacks(label: str, job: JobSpec, sparse: bool) -> list[tuple[str, object]]:
    """What to try, in order, when `label`'s own reconciler fails (the library refuses an ill-conditioned or
    infeasible problem): the same variant with the clip heuristic instead of the non-negative QP (sparse only: the
    library's dense MinTrace has only the QP), then MinTrace wls_struct, with the QP and then with clip. BottomUp
    cannot fail and has none."""
    if family(label) != "MinTrace":
        return []
    variant = label.removeprefix("MinTrace_")
    clip = job.reconciliation.nonnegative_method == "qp"
    out = []
    if clip and sparse and variant not in DENSE_ONLY:
        out.append((f"{label} with clip", MinTraceSparse(variant, nonnegative=True, num_threads=job.n_jobs, qp=False)))
    if variant != "wls_struct":
        out.append(("MinTrace_wls_struct", library_min_trace("wls_struct", job, sparse=sparse, threads=job.n_jobs)))
        if clip and sparse:
            out.append(
                (
                    "MinTrace_wls_struct with clip",
                    MinTraceSparse("wls_struct", nonnegative=True, num_threads=job.n_jobs, qp=False),
                )
            )
    return out


def with_fallbacks(
    label: str, reconciler: object, run: Callable[[object], T], job: JobSpec, sparse: bool, notes: list[str]
) -> T:
    """run(reconciler), or on the library's refusal run() of the fallbacks in order, saying which was used."""
    try:
        return run(reconciler)
    except NOT_THE_DATA:
        raise
    except Exception as exc:  # the library raises plain Exception / LinAlgError / ValueError for these
        first = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        for what, fallback in fallbacks(label, job, sparse):
            try:
                result = run(fallback)
            except Exception:
                continue
            notes.append(f"{label}: the library refused it ({first}); {what} was used instead")
            return result
        raise ValueError(f"reconciliation {label} failed ({first}) and so did every fallback") from exc
