"""Two small definitions every layer shares: the credible interval, and the thinning of posterior draws."""

from __future__ import annotations

import numpy as np

__all__ = ["interval_levels", "interval", "thin"]

#: The interval every table, plot and coverage check reports, unless told otherwise.
DEFAULT_PROB = 0.9


def interval_levels(prob: float = DEFAULT_PROB) -> tuple[float, float]:
    """Quantile levels of the central (equal-tailed) ``prob`` interval: 0.9 -> (0.05, 0.95)."""
    if not 0.0 < prob < 1.0:
        raise ValueError(f"an interval's probability is between 0 and 1, got {prob}")
    return (1.0 - prob) / 2.0, 1.0 - (1.0 - prob) / 2.0


def interval(x, prob: float = DEFAULT_PROB, axis=-1) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper ends of the central ``prob`` interval of the draws ``x`` along ``axis``."""
    lo, hi = interval_levels(prob)
    q = np.quantile(np.asarray(x, float), [lo, hi], axis=axis)
    return q[0], q[1]


def thin(n_all: int, n: int | None) -> np.ndarray:
    """Indices of ``n`` draws spread evenly over ``n_all`` (all of them when ``n`` is None or larger)."""
    if n is None or n >= n_all:
        return np.arange(n_all)
    return np.linspace(0, n_all - 1, n).round().astype(int)
