"""Imported by statsforecast's forkserver (its preload list, forecasting.models.statistical) and by nothing else.

A run killed with SIGKILL or SIGTERM runs no clean-up of its own, and statsforecast's forkserver waits for its
workers while they wait for work: both stayed alive for minutes (750 MB) after the run was gone. Importing this
module ties the forkserver to the run, and every worker it forks to the forkserver, with the kernel's parent-death
signal (prctl PR_SET_PDEATHSIG): when the parent dies, the kernel kills the child. No process of ours watches.
Then the last holder of the resource tracker's pipe is gone and it exits too. Linux only; elsewhere a no-op.
The kernel sends the signal when the *thread* that started the forkserver ends: should that be a worker thread
that ends before the process, multiprocessing finds its forkserver gone and starts a new one when next asked.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies; exit at once if `parent` is already gone."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _guard_forkserver() -> None:
    if not any("multiprocessing.forkserver import main" in arg for arg in sys.orig_argv):
        return  # imported anywhere but in a forkserver: do nothing
    die_with_parent(os.getppid())
    server = os.getpid()
    os.register_at_fork(after_in_child=lambda: die_with_parent(server))


_guard_forkserver()
