"""Hierarchical demand and manpower forecasting. Subpackages follow a run's data path and import only downward:
job -> data -> models -> reconcile -> evaluate -> staffing -> outputs; pipeline and cli on top (docs/design.md).

LightGBM's OpenMP threads wait for each other at every barrier of a tree. By default (libgomp's ACTIVE policy) a
waiting thread spins on its core; on a machine whose cores are shared with other work, the spinning thread holds a
core the thread it waits for needs, and a 2-thread fit of the daily SKU job's LightGBM took 8x the CPU seconds and
9x the wall seconds of a 1-thread fit (docs/scale.md, issue 38). PASSIVE makes waiting threads sleep; the trees are
the same. Set here, before any module loads LightGBM's OpenMP runtime (which reads it once); a value the user set
is kept."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
