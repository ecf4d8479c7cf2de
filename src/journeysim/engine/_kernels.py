"""Hot loops of the agent engine: passes over agents (clocks, touches) and over movers (edge choice).

Compiled with numba when it is importable (it is installed with pytensor), with a vectorised numpy
fallback that gives the same numbers (tested). Set ``JOURNEYSIM_NO_NUMBA=1`` to force the fallback.
The kernels draw no random numbers (the engine draws them with numpy and passes them in) and run
on one thread: results do not depend on threads.

Every public function takes ``use_numba`` (``None``: numba when available).
"""

from __future__ import annotations

import numpy as np

from journeysim._util.numba import HAVE_NUMBA, njit, use_numba as _numba

__all__ = ['advance_clocks', 'choose_edges', 'deliver', 'targeted']


# ---------------------------------------------------------------------------------------------
# numpy fallbacks (the reference: the compiled kernels give the same numbers)


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


def _choose_edges_numpy(movers, group, memory, scale, out_tab, base_eff, B, use_b, S, r):
    g = group[movers].astype(np.intp)
    p, s = g // S, g % S
    cand = out_tab[s]  # (n, width) edges out of each mover's stage, padded with -1
    valid = cand >= 0
    c = np.where(valid, cand, 0)
    h = base_eff[p[:, None], c]
    for k in np.flatnonzero(use_b):
        mem_k = memory[k, movers] * scale[k]  # float32, as in the compiled kernel
        h = h + B[k][p[:, None], c] * mem_k[:, None]
    h = np.where(valid, h, 0.0)
    cum = np.cumsum(h, axis=1)
    total = cum[:, -1]
    choice = np.minimum((cum <= (r * total)[:, None]).sum(axis=1), cand.shape[1] - 1)
    return cand[np.arange(movers.size), choice], total


def _deliver_numpy(cand, u, group, w, need, mem_k, reached, bit, val):
    if u is None:
        got = min(cand.size, need)
    else:
        acc = cand[u < w[group[cand]]][:need]
        got = acc.size
        cand[:got] = acc
    idx = cand[:got]
    np.add.at(mem_k, idx, np.float32(val))  # unbuffered: repeats add again, in order
    new = idx[(reached[idx] & bit) == 0]
    reached[new] |= np.uint8(bit)
    return got, int(np.unique(new).size)


def _targeted_numpy(group, mask):
    return np.flatnonzero(mask[group]).astype(np.int32)


# ---------------------------------------------------------------------------------------------
# compiled kernels


if HAVE_NUMBA:

    @njit(contract=False)
    def _advance_clocks_numba(group, clock, memory, htab, coef, dt, active):  # pragma: no cover - compiled
        # One pass over the agents per source, each a gather-multiply-add that vectorises (faster
        # than one pass with a loop over sources per agent, and than blocks of agents). Per agent
        # the float32 operations and their order are those of the fallback.
        n = group.shape[0]
        H = np.empty(n, np.float32)
        for i in range(n):
            H[i] = htab[group[i]]
        for j in range(active.shape[0]):
            ck = coef[active[j]]
            mk = memory[active[j]]
            for i in range(n):
                H[i] += ck[group[i]] * mk[i]
        dt32 = np.float32(dt)
        moved = np.empty(n, np.intp)
        n_moved = 0
        for i in range(n):
            c = clock[i] - H[i] * dt32
            clock[i] = c
            if c <= 0:
                moved[n_moved] = i
                n_moved += 1
        return moved[:n_moved].copy()

    @njit(contract=False)
    def _choose_edges_numba(movers, group, memory, scale, out_tab, base_eff, B, use_b, S, r):  # pragma: no cover
        n = movers.shape[0]
        width = out_tab.shape[1]
        sources = np.flatnonzero(use_b)
        # gather the movers' memory first: independent loads, so their cache misses overlap
        mem = np.empty((sources.shape[0], n), np.float32)
        for kk in range(sources.shape[0]):
            k = sources[kk]
            for j in range(n):
                mem[kk, j] = memory[k, movers[j]] * scale[k]
        edge = np.empty(n, np.intp)
        total = np.empty(n, np.float64)
        cum = np.empty(width, np.float64)
        for j in range(n):
            g = np.intp(group[movers[j]])
            p = g // S
            s = g - p * S
            acc = 0.0
            for c in range(width):
                e = out_tab[s, c]
                h = 0.0
                if e >= 0:
                    h = base_eff[p, e]
                    for kk in range(sources.shape[0]):
                        h = h + B[sources[kk], p, e] * mem[kk, j]
                acc += h
                cum[c] = acc
            u = r[j] * acc
            choice = 0
            for c in range(width):
                if cum[c] <= u:
                    choice += 1
            edge[j] = out_tab[s, min(choice, width - 1)]
            total[j] = acc
        return edge, total

    @njit(contract=False)
    def _deliver_numba(cand, u, group, w, need, mem_k, reached, bit, val):  # pragma: no cover - compiled
        # two passes: compact the accepted candidates (without branches), then touch them
        n = cand.shape[0]
        if u is None:  # (numba compiles one version for u=None, one for arrays)
            got = min(n, need)
        else:
            got = 0
            for j in range(n):
                i = cand[j]
                cand[got] = i
                got += u[j] < w[group[i]]
                if got == need:
                    break
        v = np.float32(val)
        b = np.uint8(bit)
        fresh = 0
        for j in range(got):
            i = cand[j]
            mem_k[i] += v
            r = reached[i]
            fresh += (r & b) == 0
            reached[i] = r | b
        return got, fresh

    @njit(contract=False)
    def _targeted_numba(group, mask):  # pragma: no cover - compiled
        n = group.shape[0]
        out = np.empty(n, np.int32)
        m = 0
        for i in range(n):
            out[m] = i
            m += mask[group[i]]
        return out[:m].copy()


# ---------------------------------------------------------------------------------------------
# public entry points


def advance_clocks(group, clock, memory, htab, coef, dt, active, use_numba: bool | None = None):
    """Decrement each agent's clock by its hazard times ``dt``; return the agents whose clock ran out.

    ``H_i = htab[group_i] + sum_{k in active} coef[k, group_i] * memory[k, i]`` (float32, summed
    in the order of ``active``); ``clock_i -= H_i * dt`` in place. Returns the indices (``intp``,
    ascending) of the agents with ``clock_i <= 0``.
    """
    active = np.asarray(active, dtype=np.int64)
    if _numba(use_numba):
        return _advance_clocks_numba(group, clock, memory, htab, coef, dt, active)
    return _advance_clocks_numpy(group, clock, memory, htab, coef, dt, active)


def choose_edges(movers, group, memory, scale, out_tab, base_eff, B, r, use_numba: bool | None = None):
    """Competing risks: the edge each mover takes out of its stage, drawn with uniforms ``r``.

    For mover ``i`` in persona ``p`` and stage ``s``, the hazards of the edges ``out_tab[s]``
    (padded with ``-1``) are ``h_e = base_eff[p, e] + sum_k B[k, p, e] * (memory[k, i] * scale[k])``
    (float64; sources with ``B[k] == 0`` skipped). With ``cum`` their running sum and
    ``total = cum[-1]``, the choice is the first ``e`` with ``cum_e > r_i * total``.

    Returns ``(edge, total)``: ``edge`` is ``-1`` if the choice fell on padding (only possible
    when ``total`` is 0, i.e. the mover has nowhere to go).
    """
    S = out_tab.shape[0]
    scale = np.asarray(scale, dtype=np.float32)
    base_eff = np.ascontiguousarray(base_eff, dtype=np.float64)
    B = np.ascontiguousarray(B, dtype=np.float64)
    use_b = np.any(B.reshape(B.shape[0], -1) != 0, axis=1)
    r = np.asarray(r, dtype=np.float64)
    if _numba(use_numba):
        return _choose_edges_numba(movers, group, memory, scale, out_tab, base_eff, B, use_b, S, r)
    return _choose_edges_numpy(movers, group, memory, scale, out_tab, base_eff, B, use_b, S, r)


def deliver(cand, u, group, w, need, mem_k, reached, bit, val, use_numba: bool | None = None) -> tuple[int, int]:
    """Accept candidate agents in order and give each accepted one a touch, up to ``need`` of them.

    ``cand[j]`` is accepted when ``u`` is ``None`` or ``u[j] < w[group[cand[j]]]`` (rejection
    sampling); ``cand`` is compacted in place, so that ``cand[:got]`` are the accepted agents, in
    order. Each one's exposure memory ``mem_k`` grows by ``val`` (float32; again for each repeat)
    and its ``bit`` is set in ``reached`` (``uint8``, one per agent).

    Returns ``(got, fresh)``: touches delivered, and agents whose ``bit`` was not set before.
    """
    if _numba(use_numba):
        got, fresh = _deliver_numba(cand, u, group, w, need, mem_k, reached, bit, val)
        return int(got), int(fresh)
    return _deliver_numpy(cand, u, group, w, need, mem_k, reached, bit, val)


def targeted(group, mask, use_numba: bool | None = None) -> np.ndarray:
    """Indices (``int32``, ascending) of the agents whose group is flagged in ``mask``."""
    if _numba(use_numba):
        return _targeted_numba(group, mask)
    return _targeted_numpy(group, mask)
