"""Markov-chain attribution: each channel's removal effect on the probability of converting."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from journeysim.errors import InputError
from journeysim.paths.pathdata import Measure, _PathData, check_measure, prepare_paths

__all__ = ['MarkovResult', 'markov_removal_effects']



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
    check_measure(measure)
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise InputError(f"order must be a positive integer, got {order!r}", where="order")
    order = int(order)
    data = prepare_paths(table)
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
