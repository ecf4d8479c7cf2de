"""Shapley-value attribution: each channel's average marginal contribution over coalitions, exact or sampled."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from journeysim.errors import InputError
from journeysim.paths.pathdata import Measure, Seed, _PathData, check_measure, prepare_paths

__all__ = ['ShapleyResult', 'shapley_values']

_MAX_EXACT_LIMIT = 22



# --------------------------------------------------------------------------------------------
# Shapley values


@dataclass(frozen=True)
class ShapleyResult:
    """Shapley attribution.

    Attributes
    ----------
    credits
        Shapley value per channel; they add up to ``v(all channels)``, the total of the measure.
    standard_errors
        Monte Carlo standard error per channel (0 when ``exact``).
    exact
        Whether the values were computed over all coalitions.
    n_permutations
        Number of sampled permutations (0 when ``exact``).
    """

    credits: pd.Series
    standard_errors: pd.Series
    exact: bool
    n_permutations: int = 0


def _channel_sets(data: _PathData, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (path, channel) pairs of the paths with positive weight.

    Returns ``(pair_codes, pair_starts, path_weights)``: the channels of kept path ``q`` are
    ``pair_codes[pair_starts[q]:pair_starts[q + 1]]``.
    """
    n_channels = data.channels.size
    keep = weights[data.path_of_touch] > 0
    key = np.unique(data.path_of_touch[keep] * n_channels + data.codes[keep])
    path = key // n_channels
    pair_codes = key % n_channels
    kept, pair_starts = np.unique(path, return_index=True)
    return pair_codes, pair_starts, weights[kept]


def _shapley_exact(pair_codes: np.ndarray, pair_starts: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """Exact Shapley values over all ``2**n`` coalitions, as bitmasks."""
    size = 1 << n
    if pair_codes.size == 0:
        return np.zeros(n)
    masks = np.bitwise_or.reduceat(np.left_shift(1, pair_codes), pair_starts)
    v = np.bincount(masks, weights=w, minlength=size).astype(np.float64)
    for i in range(n):  # zeta transform: v(S) = sum of w(T) over T subset of S
        view = v.reshape(-1, 2, 1 << i)
        view[:, 1, :] += view[:, 0, :]
    coalition = np.arange(size)
    popcount = np.zeros(size, dtype=np.int64)
    for i in range(n):
        popcount += (coalition >> i) & 1
    fact = [math.factorial(k) for k in range(n + 1)]
    weight = np.array([fact[s] * fact[n - s - 1] / fact[n] for s in range(n)])
    phi = np.empty(n)
    for i in range(n):
        without = coalition[((coalition >> i) & 1) == 0]
        phi[i] = np.sum(weight[popcount[without]] * (v[without | (1 << i)] - v[without]))
    return phi


def _shapley_sampled(
    pair_codes: np.ndarray,
    pair_starts: np.ndarray,
    w: np.ndarray,
    n: int,
    n_permutations: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo Shapley values from random channel orders, with standard errors.

    In an order ``pi``, a path's weight enters ``v`` when the last of its channels (in ``pi``)
    joins, so that channel's marginal contribution gets the whole weight.
    """
    mean = np.zeros(n)
    m2 = np.zeros(n)
    done = 0
    batch = max(1, min(n_permutations, 4_000_000 // max(pair_codes.size, n, 1)))
    rows_all = np.arange(batch)[:, None]
    while done < n_permutations:
        b = min(batch, n_permutations - done)
        perm = np.argsort(rng.random((b, n)), axis=1)  # perm[k, position] = channel
        rank = np.empty_like(perm)
        rank[rows_all[:b], perm] = np.arange(n)
        if pair_codes.size:
            last = np.maximum.reduceat(rank[:, pair_codes], pair_starts, axis=1)
            winner = np.take_along_axis(perm, last, axis=1)
            flat = (np.arange(b)[:, None] * n + winner).ravel()
            contrib = np.bincount(flat, weights=np.tile(w, b), minlength=b * n).reshape(b, n)
        else:
            contrib = np.zeros((b, n))
        # Chan et al. parallel update of mean and sum of squared deviations
        bmean = contrib.mean(axis=0)
        bm2 = ((contrib - bmean) ** 2).sum(axis=0)
        total = done + b
        delta = bmean - mean
        mean = mean + delta * b / total
        m2 = m2 + bm2 + delta**2 * done * b / total
        done = total
    se = np.sqrt(m2 / (n_permutations - 1) / n_permutations)
    return mean, se


def shapley_values(
    table: pd.DataFrame,
    *,
    measure: Measure = "conversions",
    max_exact: int = 12,
    n_permutations: int = 2000,
    seed: Seed = None,
) -> ShapleyResult:
    """Shapley values of the channels, exactly or by sampling channel orders.

    Parameters
    ----------
    table
        A path table.
    measure
        ``"conversions"`` or ``"value"``: what the characteristic function counts.
    max_exact
        Up to this many channels (at most 22), the values are computed exactly over all
        ``2**n`` coalitions; beyond it they are estimated from ``n_permutations`` random orders.
    n_permutations
        Number of random channel orders when sampling.
    seed
        Seed or :class:`numpy.random.Generator` for the sampling.

    Returns
    -------
    ShapleyResult

    Notes
    -----
    The characteristic function is the usual "simple" one for channel attribution:
    ``v(S)`` = conversions (or value) of the paths whose *set* of channels is a subset of
    ``S``. Order and repetitions within a path do not matter, and ``v(all channels)`` is the
    total, so the values add up to it exactly (efficiency), equal channels get equal values
    (symmetry) and a channel only on non-converting paths gets 0 (null player).

    This game is a sum of unanimity games, one per path, so its Shapley value equals splitting
    each path's conversions equally among its *distinct* channels; the exact and sampled
    computations here do not rely on that identity (it is used to test them).

    *Exact*: coalitions are bitmasks; ``v`` is tabulated with a subset-sum (zeta) transform and
    ``phi_i = sum_S |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S))``, costing ``O(n 2**n)``.

    *Sampled*: ``phi_i`` is the mean of ``i``'s marginal contribution over ``n_permutations``
    uniformly random channel orders. The reported standard error is that of this mean,
    ``s_i / sqrt(n_permutations)`` with ``s_i`` the sample standard deviation (``ddof=1``) of
    the contributions. The sampled values still add up to the total exactly, since the
    contributions in every order do.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"path": ["a", "a > b"], "total_conversions": [3, 2], "total_null": [0, 0]})
    >>> shapley_values(t).credits.to_dict()
    {'a': 4.0, 'b': 1.0}
    """
    check_measure(measure)
    for label, number, low in (("max_exact", max_exact, 0), ("n_permutations", n_permutations, 2)):
        if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or number < low:
            raise InputError(f"must be an integer >= {low}, got {number!r}", where=label)
    if max_exact > _MAX_EXACT_LIMIT:
        raise InputError(
            f"exact Shapley values need 2**n coalitions; at most {_MAX_EXACT_LIMIT} channels "
            f"are allowed, got {max_exact}",
            where="max_exact",
        )
    data = prepare_paths(table)
    n = data.channels.size
    pair_codes, pair_starts, w = _channel_sets(data, data.weights(measure))
    if n <= max_exact:
        phi = _shapley_exact(pair_codes, pair_starts, w, n)
        return ShapleyResult(
            credits=data.series(phi, "shapley"),
            standard_errors=data.series(np.zeros(n), "standard_error"),
            exact=True,
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    phi, se = _shapley_sampled(pair_codes, pair_starts, w, n, int(n_permutations), rng)
    return ShapleyResult(
        credits=data.series(phi, "shapley"),
        standard_errors=data.series(se, "standard_error"),
        exact=False,
        n_permutations=int(n_permutations),
    )
