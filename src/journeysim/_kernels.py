"""Hot loops of the agent engine: one pass over agents per step.

Compiled with numba when it is importable (it is installed with pytensor), with a vectorised numpy
fallback that gives the same numbers (tested). Set ``JOURNEYSIM_NO_NUMBA=1`` to force the fallback.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["advance_clocks", "deliver", "HAVE_NUMBA"]

try:
    if os.environ.get("JOURNEYSIM_NO_NUMBA"):
        raise ImportError
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised with JOURNEYSIM_NO_NUMBA
    HAVE_NUMBA = False


def _advance_clocks_numpy(group, clock, memory, htab, coef, dt, active):
    H = np.take(htab, group)
    tmp = np.empty_like(H)
    for k in active:
        np.take(coef[k], group, out=tmp)
        tmp *= memory[k]
        H += tmp
    H *= np.float32(dt)
    clock -= H
    return np.flatnonzero(clock <= 0)


def _deliver_numpy(idx, mem_k, last_k, val, week):
    np.add.at(mem_k, idx, np.float32(val))
    fresh = idx[last_k[idx] != week]
    last_k[fresh] = week
    return int(np.unique(fresh).size)


if HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True)
    def _advance_clocks_numba(group, clock, memory, htab, coef, dt, active):  # pragma: no cover - compiled
        n = group.shape[0]
        moved = np.empty(n, dtype=np.bool_)
        na = active.shape[0]
        dt32 = np.float32(dt)
        for i in range(n):
            g = group[i]
            H = htab[g]
            for j in range(na):
                k = active[j]
                H += coef[k, g] * memory[k, i]
            c = clock[i] - H * dt32
            clock[i] = c
            moved[i] = c <= 0
        return np.flatnonzero(moved)

    @numba.njit(cache=True, nogil=True)
    def _deliver_numba(idx, mem_k, last_k, val, week):  # pragma: no cover - compiled
        v = np.float32(val)
        fresh = 0
        for j in range(idx.shape[0]):
            i = idx[j]
            mem_k[i] += v
            if last_k[i] != week:
                last_k[i] = week
                fresh += 1
        return fresh


def advance_clocks(group, clock, memory, htab, coef, dt, active, use_numba: bool | None = None):
    """Decrement each agent's clock by its hazard times ``dt``; return the agents whose clock ran out.

    ``H_i = htab[group_i] + sum_{k in active} coef[k, group_i] * memory[k, i]`` (float32).
    """
    active = np.asarray(active, dtype=np.int64)
    if (HAVE_NUMBA if use_numba is None else use_numba):
        return _advance_clocks_numba(group, clock, memory, htab, coef, dt, active)
    return _advance_clocks_numpy(group, clock, memory, htab, coef, dt, active)


def deliver(idx, mem_k, last_k, val, week, use_numba: bool | None = None) -> int:
    """Add ``val`` to the memory of each touched agent (repeats add again); mark them reached this week.

    Returns the number of agents reached for the first time this week.
    """
    if (HAVE_NUMBA if use_numba is None else use_numba):
        return int(_deliver_numba(idx, mem_k, last_k, val, week))
    return _deliver_numpy(idx, mem_k, last_k, val, week)
