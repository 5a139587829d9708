"""Cache statsforecast's normal quantiles: the same z-values, without building a scipy distribution per series.

Why: statsforecast 2.1.1 computes the z-values of every prediction interval through
`frozen_error_distribution(1.0, "normal").ppf(p)`, and freezing a scipy distribution formats its docstring and
inspects signatures: about 1.2 ms per series, model and call (forecast and fitted). Profiled on 10,000 synthetic
weekly series with SeasonalNaive + Naive and 4 interval levels: 63 of 79 seconds went there. The z-values depend only
on the levels, so they are computed once per set of levels here and reused; other distributions (t, laplace, ...)
still go through the library. Installed in this process on import and in statsforecast's worker processes through
the forkserver preload list (forecasting.models.statistical.worker_processes_from_forkserver). If a statsforecast
release renames the function, `install` does nothing.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

import numpy as np
from scipy.stats import norm

MODULES = ("statsforecast.utils", "statsforecast.distributions", "statsforecast.models", "statsforecast.arima")
_original = None


@lru_cache(maxsize=256)
def _normal(shape: tuple[int, ...], levels: tuple[float, ...]) -> np.ndarray:
    return norm.ppf(0.5 + np.asarray(levels, dtype=float).reshape(shape) / 200)


def quantiles(level, distribution: str = "normal", dist_params=None) -> np.ndarray:
    """Drop-in for statsforecast.utils._quantiles (same arguments, same values)."""
    if distribution == "normal" and dist_params is None and _original is not None:
        arr = np.asarray(level, dtype=float)
        return _normal(arr.shape, tuple(arr.ravel().tolist())).copy()
    return _original(level, distribution=distribution, dist_params=dist_params)


def install() -> bool:
    """Point statsforecast's modules at the cached version; True when it did."""
    global _original
    try:
        utils = importlib.import_module("statsforecast.utils")
    except ImportError:
        return False
    current = getattr(utils, "_quantiles", None)
    if current is None:
        return False
    if current is not quantiles:
        _original = current
    for name in MODULES:
        module = importlib.import_module(name)
        if getattr(module, "_quantiles", None) is _original:
            module._quantiles = quantiles
    return True


install()
