"""Path-level attribution: share a path table's conversions among its channels.

Every method takes a path table (see :mod:`journeysim.paths`) and gives one credit per channel;
the credits of a method add up to the table's total conversions (or, with
``measure="value"``, to its total conversion value). Channels are the distinct touchpoint names,
in sorted order; ``"(direct)"`` (a conversion with no touch) is a channel like any other.

Methods
-------
``first``, ``last``
    All of a path's conversions go to its first (last) touchpoint.
``linear``
    A path's conversions are split equally among its touches; a channel touched twice on a path
    gets two shares.
``markov<k>`` (``markov1``, ``markov2``, ``markov3``, ...)
    Removal effects of an absorbing Markov chain of order ``k``, solved exactly
    (:func:`markov_removal_effects`).
``shapley``
    Shapley values of the game "conversions of the paths whose channels are all in the
    coalition" (:func:`shapley_values`).

Examples
--------
>>> import pandas as pd
>>> table = pd.DataFrame({
...     "path": ["tv > search", "search", "tv"],
...     "total_conversions": [3, 1, 0],
...     "total_null": [7, 4, 5],
... })
>>> attribute(table, methods=("first", "last", "linear", "shapley"))  # doctest: +NORMALIZE_WHITESPACE
method   first  last  linear  shapley
channel
search     1.0   4.0     2.5      2.5
tv         3.0   0.0     1.5      1.5
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import xarray as xr

from journeysim.errors import InputError, did_you_mean
from journeysim.paths import SEPARATOR, _atomic_output, check_path_table, read_path_table

__all__ = [
    "DEFAULT_METHODS",
    "MarkovResult",
    "ShapleyResult",
    "attribute",
    "attribution_to_xarray",
    "first_touch",
    "last_touch",
    "linear_touch",
    "markov_removal_effects",
    "run_attribute",
    "shapley_values",
]

DEFAULT_METHODS = ("first", "last", "linear", "markov1", "markov2", "markov3", "shapley")
"""The methods :func:`attribute` computes unless told otherwise."""

Measure = Literal["conversions", "value"]
Seed = int | np.random.Generator | None

_MAX_EXACT_LIMIT = 22
_MARKOV = re.compile(r"markov(\d+)")


# --------------------------------------------------------------------------------------------
# shared preparation


@dataclass(frozen=True)
class _PathData:
    """A path table as flat integer arrays (what every method works on)."""

    channels: np.ndarray  # sorted channel names (object array of str)
    codes: np.ndarray  # channel code of every touch, path after path
    offsets: np.ndarray  # touches of path p are codes[offsets[p]:offsets[p + 1]]
    conversions: np.ndarray
    value: np.ndarray
    null: np.ndarray

    @property
    def n_paths(self) -> int:
        return int(self.conversions.size)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def path_of_touch(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_paths), self.lengths)

    def weights(self, measure: Measure) -> np.ndarray:
        return self.value if measure == "value" else self.conversions

    def series(self, values: np.ndarray, name: str) -> pd.Series:
        index = pd.Index(self.channels.tolist(), name="channel", dtype=str)
        return pd.Series(np.asarray(values, dtype=np.float64), index=index, name=name)


def _prepare(table: pd.DataFrame | _PathData) -> _PathData:
    """Validate a path table and turn it into flat arrays."""
    if isinstance(table, _PathData):
        return table
    clean = check_path_table(table)
    if len(clean) == 0:
        raise InputError("path table has no rows: nothing to attribute", where="path table")
    tokens = clean["path"].str.split(SEPARATOR, regex=False).explode()
    lengths = np.bincount(tokens.index.to_numpy(), minlength=len(clean))
    names = tokens.to_numpy(dtype=object)
    channels, codes = np.unique(names, return_inverse=True)
    offsets = np.zeros(len(clean) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return _PathData(
        channels=channels.astype(object),
        codes=codes.astype(np.int64).ravel(),
        offsets=offsets,
        conversions=clean["total_conversions"].to_numpy(dtype=np.float64),
        value=clean["total_conversion_value"].to_numpy(dtype=np.float64),
        null=clean["total_null"].to_numpy(dtype=np.float64),
    )


def _check_measure(measure: str) -> None:
    if measure not in ("conversions", "value"):
        raise InputError(
            f"measure must be 'conversions' or 'value', got {measure!r}"
            f"{did_you_mean(measure, ['conversions', 'value'])}",
            where="measure",
        )


# --------------------------------------------------------------------------------------------
# heuristics


def first_touch(table: pd.DataFrame, *, measure: Measure = "conversions") -> pd.Series:
    """Credit every path's conversions to its first touchpoint.

    Parameters
    ----------
    table
        A path table.
    measure
        ``"conversions"`` or ``"value"`` (conversion value) to share.

    Returns
    -------
    pandas.Series
        Credit per channel (index ``channel``), summing to the total of ``measure``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [2, 1], "total_null": [0, 0]})
    >>> first_touch(t).to_dict()
    {'a': 2.0, 'b': 1.0}
    """
    _check_measure(measure)
    data = _prepare(table)
    first = data.codes[data.offsets[:-1]]
    credit = np.bincount(first, weights=data.weights(measure), minlength=data.channels.size)
    return data.series(credit, "first")


def last_touch(table: pd.DataFrame, *, measure: Measure = "conversions") -> pd.Series:
    """Credit every path's conversions to its last touchpoint.

    Parameters and result as in :func:`first_touch`.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [2, 1], "total_null": [0, 0]})
    >>> last_touch(t).to_dict()
    {'a': 0.0, 'b': 3.0}
    """
    _check_measure(measure)
    data = _prepare(table)
    last = data.codes[data.offsets[1:] - 1]
    credit = np.bincount(last, weights=data.weights(measure), minlength=data.channels.size)
    return data.series(credit, "last")


def linear_touch(table: pd.DataFrame, *, measure: Measure = "conversions") -> pd.Series:
    """Split every path's conversions equally among its touches.

    A channel that appears twice on a path gets two shares (``a > b > a`` gives ``a`` two
    thirds). Parameters and result as in :func:`first_touch`.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"path": ["a > b > a"], "total_conversions": [3], "total_null": [0]})
    >>> linear_touch(t).to_dict()
    {'a': 2.0, 'b': 1.0}
    """
    _check_measure(measure)
    data = _prepare(table)
    share = data.weights(measure) / data.lengths
    credit = np.bincount(
        data.codes, weights=share[data.path_of_touch], minlength=data.channels.size
    )
    return data.series(credit, "linear")


# --------------------------------------------------------------------------------------------
# Markov chains


@dataclass(frozen=True)
class MarkovResult:
    """Removal-effect attribution from an absorbing Markov chain.

    Attributes
    ----------
    order
        Memory of the chain: states are the last ``order`` touchpoints.
    conversion_probability
        Probability that a walk from the start state is absorbed in *conversion*.
    removal_effects
        Per channel, ``1 - P(conversion without the channel) / P(conversion)``.
    credits
        Per channel, ``total * removal_effect / sum(removal_effects)``.
    n_states
        Number of transient states, the start state included.
    """

    order: int
    conversion_probability: float
    removal_effects: pd.Series
    credits: pd.Series
    n_states: int


def _state_components(data: _PathData, order: int, alive: np.ndarray) -> np.ndarray:
    """For every touch of the kept paths, the last ``order`` channel codes + 1 (0 = before start).

    Returns an ``(n_touches, order)`` array; column ``j`` is the touch ``j`` steps back.
    """
    touch_path = data.path_of_touch
    keep = alive[touch_path]
    position = (np.arange(data.codes.size) - data.offsets[touch_path])[keep]
    index = np.flatnonzero(keep)
    comps = np.zeros((index.size, order), dtype=np.int64)
    for lag in range(order):
        ok = position >= lag
        comps[ok, lag] = data.codes[index[ok] - lag] + 1
    return comps


def _solve_absorption(a: sp.csr_matrix, r: np.ndarray) -> float:
    """Probability of absorption in conversion from state 0: solve ``(I - Q) x = r``."""
    if r.size == 1:
        return float(r[0] / a[0, 0])
    x = spla.spsolve(a.tocsc(), r)
    return float(np.atleast_1d(x)[0])


def markov_removal_effects(
    table: pd.DataFrame, order: int = 1, *, measure: Measure = "conversions"
) -> MarkovResult:
    """Removal effects of the absorbing Markov chain of a path table, computed exactly.

    Parameters
    ----------
    table
        A path table.
    order
        Memory of the chain (1, 2, 3, ...).
    measure
        What the credits share: ``"conversions"`` or ``"value"``. The chain and the removal
        effects are the same either way; only the total being shared changes.

    Returns
    -------
    MarkovResult

    Notes
    -----
    Conventions (those of Anderl et al. 2016 and of the ChannelAttribution package):

    * Each journey is the walk ``start -> s_1 -> ... -> s_n -> conversion`` (or ``-> null``);
      a path row contributes ``total_conversions + total_null`` walks, of which
      ``total_conversions`` end in *conversion* and ``total_null`` in *null*. Rows with no
      journeys are ignored.
    * The state after the ``i``-th touch is the tuple of the last ``min(i, order)`` touchpoints,
      so the first ``order - 1`` states of a path remember that the path just began (this is
      padding with the start state). Repeated touches are kept (``a > a`` has a self-loop).
    * Transition probabilities are the observed transition counts divided by the counts out of
      each state (maximum likelihood).
    * ``P`` is the probability of absorption into *conversion* from *start*, found by solving the
      fundamental-matrix system ``(I - Q) x = r`` with :func:`scipy.sparse.linalg.spsolve`
      (``Q``: transient-to-transient probabilities, ``r``: transient-to-conversion ones); no
      random walks are simulated.
    * Removing channel ``c`` sends every state whose tuple contains ``c`` to *null*: those
      states are dropped from the system, and ``P_{-c}`` is solved on what remains.
      ``RE_c = 1 - P_{-c} / P``.
    * ``credit_c = total * RE_c / sum(RE)``. With no conversions at all, every removal effect
      and credit is 0.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [1, 1], "total_null": [1, 1]})
    >>> res = markov_removal_effects(t, order=1)
    >>> round(res.conversion_probability, 6)
    0.5
    >>> res.removal_effects.round(6).to_dict()
    {'a': 0.5, 'b': 1.0}
    >>> res.credits.round(6).to_dict()
    {'a': 0.666667, 'b': 1.333333}
    """
    _check_measure(measure)
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise InputError(f"order must be a positive integer, got {order!r}", where="order")
    order = int(order)
    data = _prepare(table)
    n_channels = data.channels.size
    name = f"markov{order}"
    walks = data.conversions + data.null
    alive = walks > 0
    total = float(data.weights(measure).sum())
    if not np.any(data.conversions[alive] > 0):
        zeros = data.series(np.zeros(n_channels), name)
        return MarkovResult(order, 0.0, zeros.rename("removal_effect"), zeros, 1)

    comps = _state_components(data, order, alive)
    base = n_channels + 1
    if order * math.log2(base) < 62:
        key = comps @ (base ** np.arange(order, dtype=np.int64))
        uniq_key, inverse = np.unique(key, return_inverse=True)
        uniq = np.stack([(uniq_key // base**j) % base for j in range(order)], axis=1)
    else:  # too many channels to pack a state in one int64: unique rows instead
        uniq, inverse = np.unique(comps, axis=0, return_inverse=True)
    state = inverse.ravel() + 1  # 0 is the start state
    n_states = uniq.shape[0] + 1

    kept_paths = np.flatnonzero(alive)
    lengths = data.lengths[kept_paths]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ends = starts + lengths - 1
    walk_of_touch = np.repeat(walks[kept_paths], lengths)
    previous = np.empty_like(state)
    previous[0] = 0
    previous[1:] = state[:-1]
    previous[starts] = 0
    counts = sp.coo_matrix(
        (walk_of_touch, (previous, state)), shape=(n_states, n_states)
    ).tocsr()  # duplicates are summed
    to_conversion = np.bincount(
        state[ends], weights=data.conversions[kept_paths], minlength=n_states
    )
    to_null = np.bincount(state[ends], weights=data.null[kept_paths], minlength=n_states)
    out = np.asarray(counts.sum(axis=1)).ravel() + to_conversion + to_null
    scale = sp.diags(1.0 / out)
    a = (sp.identity(n_states, format="csr") - scale @ counts).tocsr()
    r = to_conversion / out

    p_all = _solve_absorption(a, r)
    contains = np.zeros((n_states, n_channels), dtype=bool)
    for j in range(order):
        rows = np.flatnonzero(uniq[:, j] > 0)
        contains[rows + 1, uniq[rows, j] - 1] = True
    effects = np.zeros(n_channels)
    for c in range(n_channels):
        keep = np.flatnonzero(~contains[:, c])
        p_without = _solve_absorption(a[keep][:, keep], r[keep])
        effects[c] = max(0.0, 1.0 - p_without / p_all)
    credits = total * effects / effects.sum()
    return MarkovResult(
        order=order,
        conversion_probability=p_all,
        removal_effects=data.series(effects, "removal_effect"),
        credits=data.series(credits, name),
        n_states=n_states,
    )


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
    _check_measure(measure)
    for label, number, low in (("max_exact", max_exact, 0), ("n_permutations", n_permutations, 2)):
        if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or number < low:
            raise InputError(f"must be an integer >= {low}, got {number!r}", where=label)
    if max_exact > _MAX_EXACT_LIMIT:
        raise InputError(
            f"exact Shapley values need 2**n coalitions; at most {_MAX_EXACT_LIMIT} channels "
            f"are allowed, got {max_exact}",
            where="max_exact",
        )
    data = _prepare(table)
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


# --------------------------------------------------------------------------------------------
# all methods together


def _parse_methods(methods: str | Iterable[str]) -> list[str]:
    """Validate method names; returns them without repeats, in the given order."""
    if isinstance(methods, str):
        methods = [methods]
    out: list[str] = []
    for raw in methods:
        name = str(raw).strip().lower()
        match = _MARKOV.fullmatch(name)
        ok = name in ("first", "last", "linear", "shapley") or (match and int(match[1]) >= 1)
        if not ok:
            raise InputError(
                f"unknown attribution method {raw!r}{did_you_mean(name, DEFAULT_METHODS)}; "
                "choose from first, last, linear, markov1, markov2, markov3 (any markovK), shapley",
                where="methods",
            )
        if name not in out:
            out.append(name)
    if not out:
        raise InputError("no attribution method given", where="methods")
    return out


def _compute(
    data: _PathData,
    methods: Sequence[str],
    *,
    measure: Measure,
    max_exact: int,
    n_permutations: int,
    seed: Seed,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, float]]:
    """Run the methods; return credits, per-method details, and per-method seconds."""
    columns: dict[str, pd.Series] = {}
    details: dict[str, Any] = {}
    timings: dict[str, float] = {}
    simple = {"first": first_touch, "last": last_touch, "linear": linear_touch}
    for name in methods:
        start = time.perf_counter()
        if name in simple:
            columns[name] = simple[name](data, measure=measure)  # type: ignore[arg-type]
        elif name == "shapley":
            res = shapley_values(
                data,  # type: ignore[arg-type]
                measure=measure,
                max_exact=max_exact,
                n_permutations=n_permutations,
                seed=seed,
            )
            columns[name] = res.credits
            details[name] = res
        else:
            order = int(name.removeprefix("markov"))
            mres = markov_removal_effects(data, order, measure=measure)  # type: ignore[arg-type]
            columns[name] = mres.credits
            details[name] = mres
        timings[name] = time.perf_counter() - start
    frame = pd.DataFrame({k: v.to_numpy() for k, v in columns.items()}, index=columns[methods[0]].index)
    frame.columns.name = "method"
    frame.attrs["measure"] = measure
    return frame, details, timings


def attribute(
    table: pd.DataFrame,
    methods: str | Iterable[str] = DEFAULT_METHODS,
    *,
    measure: Measure = "conversions",
    max_exact: int = 12,
    n_permutations: int = 2000,
    seed: Seed = 0,
) -> pd.DataFrame:
    """Attribute a path table's conversions to channels with several methods.

    Parameters
    ----------
    table
        A path table (:mod:`journeysim.paths`).
    methods
        Any of ``"first"``, ``"last"``, ``"linear"``, ``"markov1"``, ``"markov2"``,
        ``"markov3"`` (any ``"markov<k>"``) and ``"shapley"``.
    measure
        ``"conversions"`` (default) or ``"value"``: what is shared.
    max_exact, n_permutations, seed
        Passed to :func:`shapley_values`.

    Returns
    -------
    pandas.DataFrame
        Index ``channel`` (sorted), one column per method; every column adds up to the total of
        ``measure``. ``frame.attrs["measure"]`` records the measure.
        :func:`attribution_to_xarray` gives the same as a labelled array.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [1, 1], "total_null": [1, 1]})
    >>> attribute(t, methods=["last", "markov1"]).round(4)  # doctest: +NORMALIZE_WHITESPACE
    method   last  markov1
    channel
    a         0.0   0.6667
    b         2.0   1.3333
    """
    _check_measure(measure)
    names = _parse_methods(methods)
    frame, _, _ = _compute(
        _prepare(table),
        names,
        measure=measure,
        max_exact=max_exact,
        n_permutations=n_permutations,
        seed=seed,
    )
    return frame


def attribution_to_xarray(frame: pd.DataFrame) -> xr.DataArray:
    """Turn the result of :func:`attribute` into a DataArray with dims ``(channel, method)``.

    The DataArray is named ``credit`` and ``attrs["measure"]`` says what was shared. Because
    :meth:`xarray.DataArray.sel` has its own ``method`` argument, select a method with a dict:
    ``da.sel({"method": "linear"})``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"path": ["a > b"], "total_conversions": [2], "total_null": [0]})
    >>> da = attribution_to_xarray(attribute(t, methods=["first", "linear"]))
    >>> da.dims, da.sel({"channel": "a", "method": "linear"}).item()
    (('channel', 'method'), 1.0)
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"expected a DataFrame, got {type(frame).__name__}", where="frame")
    return xr.DataArray(
        frame.to_numpy(dtype=np.float64),
        dims=("channel", "method"),
        coords={
            "channel": [str(c) for c in frame.index],
            "method": [str(m) for m in frame.columns],
        },
        name="credit",
        attrs={"measure": str(frame.attrs.get("measure", "conversions"))},
    )


# --------------------------------------------------------------------------------------------
# command-line entry


def _to_dict(series: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in series.items()}


def run_attribute(
    paths_csv: str | Path,
    out_dir: str | Path,
    methods: str | Iterable[str] = DEFAULT_METHODS,
    seed: int | None = 0,
    *,
    measure: Measure = "conversions",
    max_exact: int = 12,
    n_permutations: int = 2000,
    plots: bool = True,
) -> dict[str, Any]:
    """Read a path table, attribute it, and write the results to a directory.

    This is what ``journeysim attribute PATHS.csv --out DIR`` runs.

    Parameters
    ----------
    paths_csv
        Path-table CSV (see :func:`journeysim.paths.read_path_table`).
    out_dir
        Output directory, created if needed.
    methods
        Attribution methods (see :func:`attribute`).
    seed
        Seed of the Shapley sampling (used only beyond ``max_exact`` channels).
    measure, max_exact, n_permutations
        See :func:`attribute`.
    plots
        Whether to draw the PNG charts.

    Returns
    -------
    dict
        The summary also written to ``summary.json``: input, measure, totals, channels,
        ``credit`` (method -> channel -> credit), ``markov`` details (conversion probability,
        removal effects, number of states), ``shapley`` details (exact or sampled, standard
        errors), ``timings_seconds`` and the names of the written ``files``.

    Notes
    -----
    Writes, each atomically (temporary file then rename), into ``out_dir``:
    ``attribution.csv`` (one row per channel, one column per method),
    ``attribution_<method>.png`` per method, ``attribution_comparison.png``, and last
    ``summary.json``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     csv = pathlib.Path(d) / "paths.csv"
    ...     _ = csv.write_text("path,total_conversions,total_null\\na > b,1,1\\nb,1,1\\n")
    ...     summary = run_attribute(csv, pathlib.Path(d) / "out", methods=["last"], plots=False)
    ...     sorted(p.name for p in (pathlib.Path(d) / "out").iterdir())
    ['attribution.csv', 'summary.json']
    >>> summary["credit"]["last"]
    {'a': 0.0, 'b': 2.0}
    """
    import json

    from journeysim import __version__
    from journeysim.attribution_plots import plot_comparison, plot_credit, save_figure

    _check_measure(measure)
    names = _parse_methods(methods)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", where=str(out))
    started = time.perf_counter()
    table = read_path_table(paths_csv)
    read_seconds = time.perf_counter() - started
    t0 = time.perf_counter()
    data = _prepare(table)
    prepare_seconds = time.perf_counter() - t0
    frame, details, timings = _compute(
        data, names, measure=measure, max_exact=max_exact, n_permutations=n_permutations, seed=seed
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create directory: {exc.strerror or exc}", where=str(out)) from exc

    files: dict[str, Any] = {"table": "attribution.csv", "summary": "summary.json", "plots": []}
    with _atomic_output(out / "attribution.csv") as tmp:
        frame.to_csv(tmp, lineterminator="\n")

    t0 = time.perf_counter()
    shapley = details.get("shapley")
    if plots:
        label = "conversions credited" if measure == "conversions" else "conversion value credited"
        for name in names:
            errors = shapley.standard_errors if name == "shapley" and not shapley.exact else None
            fig = plot_credit(frame[name], errors=errors, title=f"Attribution: {name}", xlabel=label)
            file = f"attribution_{name}.png"
            save_figure(fig, out / file)
            files["plots"].append(file)
        save_figure(plot_comparison(frame, xlabel=label), out / "attribution_comparison.png")
        files["plots"].append("attribution_comparison.png")
    plot_seconds = time.perf_counter() - t0

    summary: dict[str, Any] = {
        "journeysim_version": __version__,
        "input": str(paths_csv),
        "measure": measure,
        "n_paths": data.n_paths,
        "n_channels": int(data.channels.size),
        "channels": [str(c) for c in data.channels],
        "totals": {
            "conversions": float(data.conversions.sum()),
            "conversion_value": float(data.value.sum()),
            "null": float(data.null.sum()),
            "journeys": float(data.conversions.sum() + data.null.sum()),
        },
        "methods": names,
        "credit": {name: _to_dict(frame[name]) for name in names},
        "markov": {
            name: {
                "order": res.order,
                "conversion_probability": res.conversion_probability,
                "removal_effects": _to_dict(res.removal_effects),
                "n_states": res.n_states,
            }
            for name, res in details.items()
            if isinstance(res, MarkovResult)
        },
        "timings_seconds": {
            "read": read_seconds,
            "prepare": prepare_seconds,
            **timings,
            "plots": plot_seconds,
        },
        "files": files,
    }
    if shapley is not None:
        summary["shapley"] = {
            "exact": shapley.exact,
            "max_exact": max_exact,
            "n_permutations": shapley.n_permutations,
            "seed": seed if seed is None or isinstance(seed, int) else repr(seed),
            "standard_errors": _to_dict(shapley.standard_errors),
        }
    summary["timings_seconds"]["total"] = time.perf_counter() - started
    with _atomic_output(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
