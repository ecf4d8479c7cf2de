"""The twin over a whole history as one compiled kernel, with its hand-derived gradient (PyTensor Ops).

:func:`journeysim.twin.twin_step` is THE definition of the twin's equations (one definition of the
dynamics). This module is a compiled implementation of exactly that function, looped over the
steps of a history the way :func:`journeysim.calibrate.build_model`'s ``pytensor.scan`` loops it,
and nothing else: it adds no equation. ``tests/test_twin_kernel.py`` verifies it against
``twin_step`` (forward: numpy ``twin_step`` looped; gradients: ``pytensor.grad`` through the scan,
and finite differences). :func:`_step_forward_ws` mirrors ``twin_step``'s statements in the same
order, each under a comment quoting the statement it implements, so a reader can check it line by
line; :func:`_step_backward` runs the same statements in reverse (reverse-mode adjoints).

Why: inside ``scan`` one step is a few dozen PyTensor ops on arrays of a few dozen numbers, so the
time goes to per-op overhead. Here the whole forward sweep is one numba loop, and the reverse
sweep another one that recomputes each step's intermediates from the stored state ``X_{t-1}``
(the states are outputs anyway) instead of storing them. Within a step the kernels save work
without changing the equations (the numbers agree to rounding; the tests reach every shortcut):
quantities of a source state row are computed once for the edge rows leaving it, and divisions
by them become products with reciprocals; the hazard coefficients ``B`` are rebuilt only when
the event multipliers change (weekly), and the gradients of ``base`` and ``beta`` are summed
over the steps of a week before the multipliers are applied; sums over memory sources skip the
sources whose ``B`` terms are all zero; state rows with no people and no memory move nothing.
Retail example, 728 steps: about 2.4 ms forward, 5.6 ms reverse (recomputation included), on
one core of the development machine, against about 48-66 ms for scan's logp and gradient.

Layout (as :class:`journeysim.twin.TwinMatrices`): state rows ``r = (h, p, s)``, edge rows
``(h, p, e)``; the dense 0/1 matrices are replaced by index arrays (:class:`KernelStructure`):
each edge row's source and destination state row, its ``p * E + e`` output column, whether it is a
new or a repeat purchase, and the edge rows leaving each state row (CSR).

Non-smooth operations take PyTensor's gradient convention: ``maximum(x, y)`` / ``minimum(x, y)``
send the gradient to ``x`` when the output equals ``x`` (ties go to the first argument), else to
``y``; ``clip(x, lo, hi)`` sends it to ``x`` when ``lo <= x <= hi``, to ``hi`` when ``x > hi``.

Compiled with numba when it is importable (``JOURNEYSIM_NO_NUMBA=1`` or a missing numba runs the
same code as plain Python: correct, but far too slow for sampling). :class:`TwinScan` registers a
numba implementation with PyTensor's numba backend (nutpie's ``backend="numba"``), so compiled
models call the kernels directly, not through object mode. The data inputs (touches, event
multipliers) have no gradient: asking for one is an error (``grad_not_implemented``), not a
silent zero.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from journeysim._util.numba import HAVE_NUMBA
from journeysim._util.numba import njit as _njit
from journeysim.dynamics import TINY

__all__ = ["KernelStructure", "kernel_structure", "twin_scan_forward", "twin_scan_backward", "TwinScan",
           "TwinScanGrad", "twin_scan", "HAVE_NUMBA"]

class KernelStructure(NamedTuple):
    """Index arrays of a structure (from :class:`~journeysim.twin.TwinMatrices`), for the kernels.

    ``srow, drow (R_E,)`` source and destination state row of each edge row; ``pe (R_E,)`` its
    column ``p * E + e`` of the per-step flows; ``pidx, eidx (R_E,)`` its persona and edge;
    ``kind (R_E,)`` 1 new purchase, 2 repeat purchase, 0 other; ``optr (R + 1,)``, ``oidx (R_E,)``
    the edge rows leaving each state row; ``targ (R, K)`` targeting weights; ``womf (R,)``
    recommendation intensity; ``aff (K, P)`` affinity; ``C`` channels (``K = C + 1``). Index
    arrays are ``uint64`` (``kind`` is ``int64``).
    """

    srow: np.ndarray
    drow: np.ndarray
    pe: np.ndarray
    pidx: np.ndarray
    eidx: np.ndarray
    kind: np.ndarray
    optr: np.ndarray
    oidx: np.ndarray
    targ: np.ndarray
    womf: np.ndarray
    aff: np.ndarray
    C: int

    def key(self) -> tuple:
        """A hashable, exact description (Op property): ints, and floats as ``float.hex`` strings."""
        out = []
        for name, v in self._asdict().items():
            if isinstance(v, np.ndarray):
                flat = v.ravel().tolist()
                out.append((name, v.shape, tuple(float(x).hex() for x in flat) if v.dtype.kind == "f"
                            else tuple(int(x) for x in flat)))
            else:
                out.append((name, int(v)))
        return tuple(out)

    @classmethod
    def from_key(cls, key: tuple) -> "KernelStructure":
        vals = {}
        for item in key:
            if len(item) == 2:
                vals[item[0]] = item[1]
                continue
            name, shape, flat = item
            if flat and isinstance(flat[0], str):
                vals[name] = np.array([float.fromhex(x) for x in flat], np.float64).reshape(shape)
            else:
                vals[name] = np.array(flat, np.int64 if name == "kind" else np.uint64).reshape(shape)
        return cls(**vals)


def kernel_structure(structure, mats=None) -> KernelStructure:
    """The kernels' index arrays, read off :class:`~journeysim.twin.TwinMatrices` (one layout)."""
    from journeysim.twin import TwinMatrices

    m = mats if mats is not None else TwinMatrices.build(structure)
    R, RE = m.src.shape[1], m.src.shape[0]
    srow = np.argmax(m.src, axis=1)
    dst = m.move + m.src.T  # (R, R_E) destination 0/1
    drow = np.argmax(dst, axis=0)
    pe = np.argmax(m.edge_out, axis=0)
    kind = np.zeros(RE, np.int64)
    kind[m.new_sel.sum(axis=0) > 0] = 1
    kind[m.repeat_sel.sum(axis=0) > 0] = 2
    order = np.argsort(srow, kind="stable")
    optr = np.zeros(R + 1, np.int64)
    np.add.at(optr, srow + 1, 1)
    optr = np.cumsum(optr)
    u = np.uint64  # (unsigned indices: the compiled code skips the check for negative ones)
    return KernelStructure(
        srow=srow.astype(u), drow=drow.astype(u), pe=pe.astype(u), pidx=(pe // m.E).astype(u),
        eidx=(pe % m.E).astype(u), kind=kind, optr=optr.astype(u), oidx=order.astype(u),
        targ=np.ascontiguousarray(m.targeting, dtype=np.float64), womf=np.ascontiguousarray(m.wom_from, np.float64),
        aff=np.ascontiguousarray(np.asarray(structure.affinity, float)), C=len(structure.channels))


# ---------------------------------------------------------------------------------------------
# one step, forward and reverse


@_njit
def _workspace(R, RE, K, P, E):  # pragma: no cover - compiled
    """Intermediates of one step (filled by :func:`_step_forward_ws`, read by :func:`_step_backward`)."""
    return (np.empty(2),  # sc: N @ wom_from, wom
            np.empty(K), np.empty(K), np.empty(K), np.empty(K), np.empty(K),  # touch, targeted, per_weight, q, d
            np.empty((R, K)), np.empty((R, K)), np.empty((R, K)), np.empty((R, K)),  # A, Q (updated), abar, V
            np.empty(R), np.empty((R, K)), np.empty((R, K)), np.empty((R, K)),  # 1/max(N, TINY), var, 1/max(A, TINY), T
            np.empty(R, np.bool_),  # empty: N, A and Q all zero (nothing leaves the row)
            np.empty(RE), np.empty((RE, K)), np.empty(RE),  # b_rows, B_rows, h
            np.empty(R), np.empty((R, K)), np.empty(R), np.empty(R),  # h @ same_src, Bstage, L, 1/H
            np.empty(RE), np.empty(RE), np.empty(RE), np.empty(RE),  # frac before clip, frac, flow, r * slope
            np.empty((RE, K)), np.empty((RE, K)),  # a_out, q_out before the cap
            np.empty((R, K)), np.empty((R, K)), np.empty((R, K)), np.empty((R, K)),  # their sums by source; caps
            np.empty((R, K)), np.empty((R, K)), np.empty((R, K)), np.empty((R, K)),  # ratios A (Q) / max(sum, TINY); 1 / max(sum, TINY)
            np.empty((RE, K), np.uint64), np.empty(RE, np.int64),  # sources with B_rows != 0, per edge row; count
            np.empty((R, K), np.uint64), np.empty(R, np.int64),  # sources with Bstage terms, per state row; count
            np.zeros((P, E)), np.zeros((K, P)), np.zeros(1, np.int64))  # event multipliers of B_rows; valid


@_njit
def _differ(a, b):  # pragma: no cover - compiled
    """Whether two 2-D arrays of the same shape differ."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            if a[i, j] != b[i, j]:
                return True
    return False


@_njit
def _changed(a, b):  # pragma: no cover - compiled
    """Whether two 2-D arrays of the same shape differ (and copy ``a`` into ``b`` if they do)."""
    if _differ(a, b):
        b[:, :] = a
        return True
    return False


@_njit(inline=True)
def _step_forward_ws(X, tc, em_t, cm_t, base, beta, carryover, fhalf, wom_rate, dt,
                     srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                     ws, Xn, flow_o, new_o, rep_o, full):  # pragma: no cover - compiled
    """``twin_step`` from state ``X (R, 1 + 2K)``: fills the workspace ``ws`` (:func:`_workspace`)
    and (if ``full``; the reverse sweep only needs the workspace) the outputs ``Xn (R, 1 + 2K)``,
    ``flow_o (P*E)``, ``new_o (P)``, ``rep_o (P)``.

    Same equations, organised for speed (each shortcut gives the same numbers up to rounding):
    quantities that depend only on an edge row's source state row (``var``, ``T``, ``H``, ``L``)
    are computed once per state row (hoisted) and divisions by them become products with
    reciprocals; ``B`` is rebuilt only when the event multipliers change (weekly), and sums over
    memory sources skip the sources whose ``B`` terms are all zero; edge rows leaving a row with no
    people and no memory move nothing (only their ``frac`` is computed).
    """
    (sc, touch, tgt, pw, q, d, A1, Q1, abar, V, invN, var, invA, Tm, empty, b, Brow, hh, Hs, BstR, rowL, invH,
     fx, frac, flow, rsl, aout0, qout0, sa, sq, ma, mq, ra, rq, isa, isq, nzk, nnz, actk, nact, em_prev, cm_prev,
     valid) = ws
    R = X.shape[0]
    K = fhalf.shape[0]
    C = tc.shape[0]
    RE = srow.shape[0]
    # N = X[..., 0]; A = X[..., 1:1 + K]; Q = X[..., 1 + K:]   (read from X below)
    # wom = params.wom_rate * (N @ m.wom_from)
    wsum = 0.0
    for r in range(R):
        wsum += X[r, 0] * womf[r]
    wom = wom_rate * wsum
    sc[0] = wsum
    sc[1] = wom
    # touches = concatenate([touches_c, wom])
    for k in range(C):
        touch[k] = tc[k]
    touch[K - 1] = wom
    # per_weight, q = effectiveness(xp, touches, N @ m.targeting, params.fhalf)
    #   per_weight = touches / maximum(targeted, TINY); q = 1.0 / (1.0 + 7.0 * per_weight / fhalf)
    for k in range(K):
        acc = 0.0
        for r in range(R):
            acc += X[r, 0] * targ[r, k]
        tgt[k] = acc
        pw[k] = touch[k] / max(acc, TINY)
        q[k] = 1.0 / (1.0 + 7.0 * pw[k] / fhalf[k])
    if valid[0] == 0:  # (first step: constant over the history)
        for k in range(K):
            # d = params.carryover ** dt
            d[k] = carryover[k] ** dt
    for r in range(R):
        N = X[r, 0]
        iN = 1.0 / max(N, TINY)
        invN[r] = iN
        nothing = N == 0.0
        for k in range(K):
            nothing = nothing and X[r, 1 + k] == 0.0 and X[r, 1 + K + k] == 0.0
        empty[r] = nothing
        if nothing:  # no people, no memory: A = Q = abar = V = var = T = 0
            for k in range(K):
                A1[r, k] = 0.0
                Q1[r, k] = 0.0
                abar[r, k] = 0.0
                V[r, k] = 0.0
                var[r, k] = 0.0
                invA[r, k] = 1.0 / TINY
                Tm[r, k] = 0.0
            continue
        for k in range(K):
            # mu = m.targeting * (per_weight * dt)
            mu = targ[r, k] * (pw[k] * dt)
            A0 = X[r, 1 + k]
            Q0 = X[r, 1 + K + k]
            dk = d[k]
            qk = q[k]
            # Q = d * d * Q + 2.0 * d * qq * mu * A + qq * qq * N_ * (mu + mu * mu)
            Qn = dk * dk * Q0 + 2.0 * dk * qk * mu * A0 + qk * qk * N * (mu + mu * mu)
            # A = d * A + qq * mu * N_
            An = dk * A0 + qk * mu * N
            # abar = A / maximum(N_, TINY)
            ab = An * iN
            # V = maximum(Q - A * abar, 0.0)
            v = max(Qn - An * ab, 0.0)
            A1[r, k] = An
            Q1[r, k] = Qn
            abar[r, k] = ab
            V[r, k] = v
            # (hoisted from below, per source row) var = Vs / maximum(Ns, TINY)
            var[r, k] = v * iN
            # (hoisted from below, per source row) T = 2.0 * abars * Vs + Vs * Vs / maximum(As, TINY)
            iA = 1.0 / max(An, TINY)
            invA[r, k] = iA
            Tm[r, k] = 2.0 * ab * v + v * v * iA
    # Ns, As, Qs, Vs, abars = the source row's values (read through srow below)
    # base_eff, B = hazard_terms(...): base_eff = params.base * edge_mult; B = beta[k, e] * (affinity * chan_mult)[k, p]
    # b_rows, B_rows = _rows(...)      (rebuilt when the multipliers differ from the previous step's)
    ch_e = _changed(em_t, em_prev)  # (both compared, so that both copies stay current)
    ch_c = _changed(cm_t, cm_prev)
    if ch_e or ch_c or valid[0] == 0:
        valid[0] = 1
        for j in range(RE):
            p = pidx[j]
            e = eidx[j]
            b[j] = base[p, e] * em_t[p, e]
            n = 0
            for k in range(K):
                v = beta[k, e] * (aff[k, p] * cm_t[k, p])
                Brow[j, k] = v
                if v != 0.0:
                    nzk[j, n] = k
                    n += 1
            nnz[j] = n
        # (from below) Bstage = _lmul(xp, m.same_src, B_rows): sums over the edge rows leaving each state row
        for r in range(R):
            n = 0
            for k in range(K):
                acc = 0.0
                nz = False
                for i in range(optr[r], optr[r + 1]):
                    acc += Brow[oidx[i], k]
                    nz = nz or Brow[oidx[i], k] != 0.0
                BstR[r, k] = acc
                if nz:
                    actk[r, n] = k
                    n += 1
            nact[r] = n
    # h = b_rows + xp.sum(B_rows * abars, axis=-1)
    for j in range(RE):
        s = srow[j]
        acc = 0.0
        for i in range(nnz[j]):
            kk = nzk[j, i]
            acc += Brow[j, kk] * abar[s, kk]
        hh[j] = b[j] + acc
    for r in range(R):
        # H = xp.maximum(h @ m.same_src.T, TINY): the sum over the edge rows leaving the state row
        acc = 0.0
        for i in range(optr[r], optr[r + 1]):
            acc += hh[oidx[i]]
        Hs[r] = acc
        H = max(acc, TINY)
        invH[r] = 1.0 / H
        # frac, L = competing_exit(xp, h, H, dt): safe = maximum(H, TINY) (= H); L = 1 - exp(-safe * dt)
        rowL[r] = 1.0 - np.exp(-max(H, TINY) * dt)
    for j in range(RE):
        s = srow[j]
        Ns = X[s, 0]
        L = rowL[s]
        iH = invH[s]
        # (competing_exit) frac = L * h / safe
        f0 = L * hh[j] * iH
        # r = h / H
        rr = hh[j] * iH
        # slope = dt * (1.0 - L) - L / H
        slope = dt * (1.0 - L) - L * iH
        # Bstage (above); G (below)
        # dr = (B_rows - r[..., None] * Bstage) / H[..., None]
        # curv = (r * (-dt * dt * (1.0 - L)))[..., None] * Bstage * Bstage + 2.0 * Bstage * dr * slope[..., None]
        # var (hoisted above)    (terms with Bstage = B_rows = 0, or var = 0, are 0)
        c2 = rr * (-dt * dt * (1.0 - L))
        acc = 0.0
        if not empty[s]:
            for i in range(nact[s]):
                kk = actk[s, i]
                Bst = BstR[s, kk]
                dr = (Brow[j, kk] - rr * Bst) * iH
                curv = c2 * Bst * Bst + 2.0 * Bst * dr * slope
                acc += curv * var[s, kk]
        # frac = xp.clip(frac + 0.5 * xp.sum(curv * var, axis=-1), 0.0, L)
        x = f0 + 0.5 * acc
        fx[j] = x
        fr = min(max(x, 0.0), L)
        frac[j] = fr
        # flow = Ns * frac
        flow[j] = Ns * fr
        rsl[j] = rr * slope  # (in G, below)
    # by source row (its values are loaded once for the edge rows leaving it):
    for r in range(R):
        if empty[r]:  # As = Qs = Vs = T = 0: a_out = q_out = 0
            for i in range(optr[r], optr[r + 1]):
                for k in range(K):
                    aout0[oidx[i], k] = 0.0
                    qout0[oidx[i], k] = 0.0
            for k in range(K):
                sa[r, k] = 0.0
                sq[r, k] = 0.0
                ra[r, k] = 0.0
                rq[r, k] = 0.0
                ma[r, k] = 0.0  # = minimum(1, 0 / TINY)
                mq[r, k] = 0.0
            continue
        LH = rowL[r] * invH[r]
        for k in range(K):
            As = A1[r, k]
            Qs = Q1[r, k]
            Vs = V[r, k]
            T_ = Tm[r, k]
            Bst = BstR[r, k]
            acc_a = 0.0
            acc_q = 0.0
            for i in range(optr[r], optr[r + 1]):
                j = oidx[i]
                fr = frac[j]
                # G = (r * slope)[..., None] * Bstage + (L / H)[..., None] * B_rows
                G = rsl[j] * Bst + LH * Brow[j, k]
                # T (hoisted above)
                # a_out = xp.maximum(frac[..., None] * As + G * Vs, 0.0)
                a = max(fr * As + G * Vs, 0.0)
                # q_out = xp.maximum(frac[..., None] * Qs + G * T, 0.0)
                qo = max(fr * Qs + G * T_, 0.0)
                aout0[j, k] = a
                qout0[j, k] = qo
                acc_a += a
                acc_q += qo
            # a_out = a_out * _lmul(xp, m.src, xp.minimum(1.0, A / xp.maximum(_lmul(xp, src_T, a_out), TINY)))
            # q_out = q_out * _lmul(xp, m.src, xp.minimum(1.0, Q / xp.maximum(_lmul(xp, src_T, q_out), TINY)))
            sa[r, k] = acc_a
            sq[r, k] = acc_q
            # (the ratio is at least 1 when A >= the denominator: no division needed)
            den = max(acc_a, TINY)
            if A1[r, k] >= den:
                ra[r, k] = 1.0
                ma[r, k] = 1.0
            else:
                ia = 1.0 / den
                isa[r, k] = ia
                ra[r, k] = A1[r, k] * ia
                ma[r, k] = min(1.0, ra[r, k])
            den = max(acc_q, TINY)
            if Q1[r, k] >= den:
                rq[r, k] = 1.0
                mq[r, k] = 1.0
            else:
                iq = 1.0 / den
                isq[r, k] = iq
                rq[r, k] = Q1[r, k] * iq
                mq[r, k] = min(1.0, rq[r, k])
    if not full:
        return
    # F = concatenate([flow, a_out, q_out]); X_new = concatenate([N_, A, Q]) + _lmul(xp, m.move, F)
    #   (move = destination - source: each edge row's F leaves its source row and enters its destination;
    #    what leaves a row is the sum of its edge rows': flows, sa * ma, sq * mq)
    for r in range(R):
        out = 0.0
        for i in range(optr[r], optr[r + 1]):
            out += flow[oidx[i]]
        Xn[r, 0] = X[r, 0] - out
        for k in range(K):
            Xn[r, 1 + k] = A1[r, k] - sa[r, k] * ma[r, k]
            Xn[r, 1 + K + k] = Q1[r, k] - sq[r, k] * mq[r, k]
    for j in range(RE):
        s = srow[j]
        t = drow[j]
        Xn[t, 0] += flow[j]
        if not empty[s]:
            for k in range(K):
                Xn[t, 1 + k] += aout0[j, k] * ma[s, k]
                Xn[t, 1 + K + k] += qout0[j, k] * mq[s, k]
    # out: "flow": flow @ m.edge_out.T, "new": flow @ m.new_sel.T, "repeat": flow @ m.repeat_sel.T
    #      ("referrals": wom * dt, by the caller)
    flow_o[:] = 0.0
    new_o[:] = 0.0
    rep_o[:] = 0.0
    for j in range(RE):
        flow_o[pe[j]] += flow[j]
        if kind[j] == 1:
            new_o[pidx[j]] += flow[j]
        elif kind[j] == 2:
            rep_o[pidx[j]] += flow[j]


@_njit
def _grad_workspace(R, RE, K):  # pragma: no cover - compiled
    """Adjoints of one step's intermediates (:func:`_step_backward`)."""
    return (np.empty((R, K)), np.empty((R, K)), np.empty((R, K)), np.empty((R, K)),  # A, Q (updated), abar, V
            np.empty((R, K)), np.empty((R, K)), np.empty((R, K)),  # var, T, Bstage
            np.empty(R), np.empty(R),  # H (incl. through L), L
            np.empty((R, K)), np.empty((R, K)),  # a_out0, q_out0: the part through the cap's ratio (per source)
            np.empty((RE, K)), np.empty(RE),  # B_rows, h
            np.empty(K), np.empty(K), np.empty(K),  # q, d, per_weight
            np.empty(RE), np.empty(RE), np.empty(RE),  # per edge row: frac, r * slope, L / H
            np.zeros(RE), np.zeros((RE, K)))  # base_eff, B_rows: sums over steps with the same multipliers


@_njit
def _flush_hazard_grads(gbw, gBw, em_t, cm_t, pidx, eidx, aff, gbase, gbeta):  # pragma: no cover - compiled
    """Add the sums of the cotangents of ``base_eff`` and ``B_rows`` over steps with the event
    multipliers ``em_t, cm_t`` into ``gbase``, ``gbeta`` (``base_eff = base * edge_mult``, ``B =
    beta * (affinity * chan_mult)``), and reset them."""
    K = gBw.shape[1]
    for j in range(gbw.shape[0]):
        p = pidx[j]
        e = eidx[j]
        gbase[p, e] += gbw[j] * em_t[p, e]
        gbw[j] = 0.0
        for k in range(K):
            gbeta[k, e] += gBw[j, k] * (aff[k, p] * cm_t[k, p])
            gBw[j, k] = 0.0


@_njit(inline=True)
def _step_backward(X, em_t, cm_t, beta, carryover, fhalf, wom_rate, dt,
                   srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                   ws, gws, gXn, gflow_o, gnew_o, grep_o, gref,
                   gX, gcarry, gfhalf):  # pragma: no cover - compiled
    """Reverse of :func:`_step_forward_ws` (whose workspace ``ws`` holds the step's intermediates).

    Given the cotangents of the step's outputs (``gXn`` on the new state, ``gflow_o``, ``gnew_o``,
    ``grep_o``, ``gref`` on referrals), writes the cotangent of the old state into ``gX`` and adds
    the parameters' into ``gcarry, gfhalf`` and the workspace's sums for ``base`` and ``beta`` (see
    :func:`_flush_hazard_grads`); returns that of ``wom_rate``. The
    statements of ``twin_step`` are visited in reverse order (hoisted ones where they were
    computed). Terms skipped by the forward's shortcuts are zero here too, except the gradient with
    respect to ``B_rows`` entries that are 0 (a ``beta`` of 0 still has a gradient): kept.
    """
    (sc, touch, tgt, pw, q, d, A1, Q1, abar, V, invN, var, invA, Tm, empty, b, Brow, hh, Hs, BstR, rowL, invH,
     fx, frac, flow, rsl, aout0, qout0, sa, sq, ma, mq, ra, rq, isa, isq, nzk, nnz, actk, nact, em_prev, cm_prev,
     valid) = ws
    (gA1, gQ1, gabar, gV, gvar, gTm, gBstR, gH, gL, gsa, gsq, gBrow, ghh, gq, gd, gpw, gfr, grs, gLH, gbw, gBw) = gws
    R = X.shape[0]
    K = fhalf.shape[0]
    RE = srow.shape[0]
    # "referrals": wom * dt
    gwom = gref * dt
    # X_new = [N_, A, Q] + move @ F: the old stocks get gXn, each edge row's F the difference dst - src
    gX[:, 0] = gXn[:, 0]  # (N_ = N; more terms below)
    gA1[:, :] = gXn[:, 1:1 + K]
    gQ1[:, :] = gXn[:, 1 + K:]
    gH[:] = 0.0
    gL[:] = 0.0
    gabar[:, :] = 0.0
    gV[:, :] = 0.0
    gvar[:, :] = 0.0
    gTm[:, :] = 0.0
    # a_out = a_out0 * src(ma), ma = minimum(1.0, A / maximum(sum of a_out0, TINY)) (and q_out):
    # through ma, to the ratio only when it is below 1 (minimum's gradient goes to its first argument,
    # the constant, when the output equals it); gsa: what each a_out0 of the row gets through the sum
    for r in range(R):
        for k in range(K):
            gsa[r, k] = 0.0
            gsq[r, k] = 0.0
        if empty[r]:  # a_out0 = q_out0 = 0, and ma = mq = 0 (ratio 0 / TINY): nothing
            continue
        for k in range(K):
            if ra[r, k] < 1.0 and sa[r, k] != 0.0:  # (sa = 0: every a_out0 is 0, gma = 0)
                gma = 0.0
                for i in range(optr[r], optr[r + 1]):
                    jj = oidx[i]
                    gma += (gXn[drow[jj], 1 + k] - gXn[r, 1 + k]) * aout0[jj, k]
                gA1[r, k] += gma * isa[r, k]
                if sa[r, k] >= TINY:
                    gsa[r, k] = -gma * ra[r, k] * isa[r, k]
            if rq[r, k] < 1.0 and sq[r, k] != 0.0:
                gmq = 0.0
                for i in range(optr[r], optr[r + 1]):
                    jj = oidx[i]
                    gmq += (gXn[drow[jj], 1 + K + k] - gXn[r, 1 + K + k]) * qout0[jj, k]
                gQ1[r, k] += gmq * isq[r, k]
                if sq[r, k] >= TINY:
                    gsq[r, k] = -gmq * rq[r, k] * isq[r, k]
    # per edge row: flow (into X_new (move @ F), "flow" (edge_out), "new" (new_sel), "repeat" (repeat_sel))
    for j in range(RE):
        s = srow[j]
        t = drow[j]
        gf = gXn[t, 0] - gXn[s, 0] + gflow_o[pe[j]]
        if kind[j] == 1:
            gf += gnew_o[pidx[j]]
        elif kind[j] == 2:
            gf += grep_o[pidx[j]]
        # flow = Ns * frac
        gX[s, 0] += gf * frac[j]
        gfr[j] = gf * X[s, 0]
        grs[j] = 0.0
        gLH[j] = 0.0
    # a_out = maximum(frac As + G Vs, 0); q_out = maximum(frac Qs + G T, 0); G = (r slope) Bstage + (L / H) B_rows
    #   (by source row: its values are loaded once for the edge rows leaving it)
    for r in range(R):
        if empty[r]:
            # Ns = As = Qs = Vs = T = 0 and the cotangents of a_out0, q_out0 are 0 (ma = mq = 0, gsa = gsq = 0):
            # nothing reaches frac, G, or the hazards
            for k in range(K):
                gBstR[r, k] = 0.0
            for i in range(optr[r], optr[r + 1]):
                for k in range(K):
                    gBrow[oidx[i], k] = 0.0
            continue
        LH = rowL[r] * invH[r]
        for k in range(K):
            As = A1[r, k]
            Qs = Q1[r, k]
            Vs = V[r, k]
            T_ = Tm[r, k]
            Bst = BstR[r, k]
            m_a = ma[r, k]
            m_q = mq[r, k]
            g_sa = gsa[r, k]
            g_sq = gsq[r, k]
            gx_a = gXn[r, 1 + k]
            gx_q = gXn[r, 1 + K + k]
            accA = 0.0
            accQ = 0.0
            accV = 0.0
            accT = 0.0
            accB = 0.0
            for i in range(optr[r], optr[r + 1]):
                j = oidx[i]
                t = drow[j]
                fr = frac[j]
                rs = rsl[j]
                Bj = Brow[j, k]
                G = rs * Bst + LH * Bj
                gax = 0.0
                if fr * As + G * Vs >= 0.0:
                    gax = (gXn[t, 1 + k] - gx_a) * m_a + g_sa
                gqx = 0.0
                if fr * Qs + G * T_ >= 0.0:
                    gqx = (gXn[t, 1 + K + k] - gx_q) * m_q + g_sq
                gfr[j] += gax * As + gqx * Qs
                accA += gax * fr
                accQ += gqx * fr
                accV += gax * G
                accT += gqx * G
                gG = gax * Vs + gqx * T_
                grs[j] += gG * Bst
                accB += gG * rs
                gLH[j] += gG * Bj
                gBrow[j, k] = gG * LH
            gA1[r, k] += accA
            gQ1[r, k] += accQ
            gV[r, k] += accV
            gTm[r, k] += accT
            gBstR[r, k] = accB
    # per edge row, in reverse: frac (clip), curvature, slope, r, competing_exit
    for j in range(RE):
        s = srow[j]
        if empty[s]:
            ghh[j] = 0.0
            continue
        L = rowL[s]
        iH = invH[s]
        f0 = L * hh[j] * iH
        rr = hh[j] * iH
        slope = dt * (1.0 - L) - L * iH
        c2 = rr * (-dt * dt * (1.0 - L))
        LH = L * iH
        # frac = clip(frac0 + 0.5 sum(curv var), 0, L)  (clip: to x when 0 <= x <= L, to L when x > L)
        x = fx[j]
        gx = 0.0
        g_L = 0.0
        if x >= 0.0 and x <= L:
            gx = gfr[j]
        elif x > L:
            g_L += gfr[j]
        g_f0 = gx
        gcorr = 0.5 * gx
        g_c2 = 0.0
        g_slope = grs[j] * rr  # (r slope in G)
        g_r = grs[j] * slope
        g_LH = gLH[j]
        g_H = 0.0
        if gcorr != 0.0:
            for i in range(nact[s]):  # (the other sources' terms are 0, and so are their gradients)
                kk = actk[s, i]
                Bst = BstR[s, kk]
                dr = (Brow[j, kk] - rr * Bst) * iH
                curv = c2 * Bst * Bst + 2.0 * Bst * dr * slope
                gcurv = gcorr * var[s, kk]
                gvar[s, kk] += gcorr * curv
                # curv = c2 Bstage^2 + 2 Bstage dr slope,  c2 = r (-dt^2 (1 - L))
                g_c2 += gcurv * Bst * Bst
                gBstR[s, kk] += gcurv * (2.0 * c2 * Bst + 2.0 * dr * slope)
                gdr = gcurv * 2.0 * Bst * slope
                g_slope += gcurv * 2.0 * Bst * dr
                # dr = (B_rows - r Bstage) / H
                gBrow[j, kk] += gdr * iH
                g_r -= gdr * Bst * iH
                gBstR[s, kk] -= gdr * rr * iH
                g_H -= gdr * dr * iH
        # c2 = r (-dt^2 (1 - L))
        g_r += g_c2 * (-dt * dt * (1.0 - L))
        g_L += g_c2 * rr * dt * dt
        # L / H (in G)
        g_L += g_LH * iH
        g_H -= g_LH * LH * iH
        # slope = dt (1 - L) - L / H
        g_L -= g_slope * (dt + iH)
        g_H += g_slope * L * iH * iH
        # r = h / H
        gh = g_r * iH
        g_H -= g_r * rr * iH
        # competing_exit: frac = L h / safe (safe = maximum(H, TINY) = H, its gradient goes to H)
        g_L += g_f0 * hh[j] * iH
        gh += g_f0 * L * iH
        g_H -= g_f0 * f0 * iH
        ghh[j] = gh
        gH[s] += g_H
        gL[s] += g_L
    # per state row: L = 1 - exp(-safe dt); H = maximum(h @ same_src.T, TINY); Bstage = same_src @ B_rows;
    # then per edge row leaving it: h = b_rows + sum(B_rows * abars)
    for r in range(R):
        gHr = gH[r] + gL[r] * dt * (1.0 - rowL[r])
        if Hs[r] < TINY:
            gHr = 0.0
        for i in range(optr[r], optr[r + 1]):
            j = oidx[i]
            g = ghh[j] + gHr
            # base_eff = base * edge_mult; B = beta * (affinity * chan_mult): the products with the week's
            # multipliers are taken when the week's sums are flushed (_flush_hazard_grads)
            gbw[j] += g
            for ii in range(nnz[j]):
                kk = nzk[j, ii]
                gabar[r, kk] += g * Brow[j, kk]
            for k in range(K):
                gBw[j, k] += gBrow[j, k] + gBstR[r, k] + g * abar[r, k]
    # memory update, per state row (reverse of: T, var, V, abar, A, Q, mu)
    for k in range(K):
        gq[k] = 0.0
        gd[k] = 0.0
        gpw[k] = 0.0
    for r in range(R):
        N = X[r, 0]
        iN = invN[r]
        gnN = 0.0
        gN = 0.0
        for k in range(K):
            v = V[r, k]
            ab = abar[r, k]
            # T = 2 abars Vs + Vs^2 / maximum(As, TINY)
            gT = gTm[r, k]
            iA = invA[r, k]
            gab = gabar[r, k] + 2.0 * gT * v
            gv = gV[r, k] + gT * (2.0 * ab + 2.0 * v * iA)
            ga = gA1[r, k]
            if A1[r, k] >= TINY:
                ga -= gT * v * v * iA * iA
            # var = Vs / maximum(Ns, TINY)
            gv += gvar[r, k] * iN
            gnN -= gvar[r, k] * var[r, k] * iN
            # V = maximum(Q - A abar, 0)
            gQ = gQ1[r, k]
            if Q1[r, k] - A1[r, k] * ab >= 0.0:
                gQ += gv
                ga -= gv * ab
                gab -= gv * A1[r, k]
            # abar = A / maximum(N_, TINY)
            ga += gab * iN
            gnN -= gab * ab * iN
            mu = targ[r, k] * (pw[k] * dt)
            A0 = X[r, 1 + k]
            Q0 = X[r, 1 + K + k]
            dk = d[k]
            qk = q[k]
            # A = d A + q mu N;  Q = d^2 Q + 2 d q mu A + q^2 N (mu + mu^2)
            gd[k] += ga * A0 + gQ * (2.0 * dk * Q0 + 2.0 * qk * mu * A0)
            gq[k] += ga * mu * N + gQ * (2.0 * dk * mu * A0 + 2.0 * qk * N * (mu + mu * mu))
            gmu = ga * qk * N + gQ * (2.0 * dk * qk * A0 + qk * qk * N * (1.0 + 2.0 * mu))
            gN += ga * qk * mu + gQ * qk * qk * (mu + mu * mu)
            gX[r, 1 + k] = ga * dk + gQ * 2.0 * dk * qk * mu
            gX[r, 1 + K + k] = gQ * dk * dk
            # mu = targeting * (per_weight * dt)
            gpw[k] += gmu * targ[r, k] * dt
        if N >= TINY:
            gN += gnN
        gX[r, 0] += gN
    gw = 0.0
    for k in range(K):
        # d = carryover ** dt
        gcarry[k] += gd[k] * dt * carryover[k] ** (dt - 1.0)
        # q = 1 / (1 + 7 per_weight / fhalf)   (fhalf = inf: 1 / fhalf = 0, no gradient)
        inv = 1.0 / fhalf[k]
        gz = -gq[k] * q[k] * q[k]
        gpw[k] += gz * 7.0 * inv
        gfhalf[k] -= gz * 7.0 * pw[k] * inv * inv
        # per_weight = touches / maximum(targeted, TINY);  targeted = N @ targeting
        tg = max(tgt[k], TINY)
        if k == K - 1:  # touches[K - 1] = wom
            gw += gpw[k] / tg
        if tgt[k] >= TINY:
            gt = -gpw[k] * pw[k] / tg
            for r in range(R):
                gX[r, 0] += gt * targ[r, k]
    # wom = wom_rate * (N @ wom_from)
    gwom += gw
    for r in range(R):
        gX[r, 0] += gwom * wom_rate * womf[r]
    return gwom * sc[0]


# ---------------------------------------------------------------------------------------------
# whole histories


@_njit
def twin_scan_forward(touches, em, cm, X0, base, beta, carryover, fhalf, wom_rate, dt,
                      srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff):  # pragma: no cover
    """``twin_step`` over ``T`` steps from ``X0``: what ``build_model``'s scan returns.

    ``touches (T, C)``, ``em (T, P, E)``, ``cm (T, K, P)`` per step; ``X0 (R, 1 + 2K)``; ``base
    (P, E)``, ``beta (K, E)``, ``carryover (K)``, ``fhalf (K)`` (``inf``: no saturation),
    ``wom_rate`` (float), ``dt``; then the :class:`KernelStructure` arrays. Returns ``Xs (T, R,
    1 + 2K)`` (the state after each step), ``flows (T, P*E)``, ``new (T, P)``, ``repeat (T, P)``,
    ``referrals (T,)``.
    """
    T = touches.shape[0]
    R = X0.shape[0]
    K = fhalf.shape[0]
    P = base.shape[0]
    E = base.shape[1]
    Xs = np.empty((T, R, X0.shape[1]))
    flows = np.empty((T, P * E))
    new = np.empty((T, P))
    rep = np.empty((T, P))
    refs = np.empty(T)
    ws = _workspace(R, srow.shape[0], K, P, E)
    X = np.ascontiguousarray(X0)
    for t in range(T):
        _step_forward_ws(X, touches[t], em[t], cm[t], base, beta, carryover, fhalf, wom_rate, dt,
                         srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                         ws, Xs[t], flows[t], new[t], rep[t], True)
        # "referrals": wom * dt
        refs[t] = ws[0][1] * dt
        X = Xs[t]
    return Xs, flows, new, rep, refs


@_njit
def twin_scan_backward(touches, em, cm, X0, base, beta, carryover, fhalf, wom_rate, dt,
                       srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                       Xs, gXs, gflows, gnew, grep, grefs):  # pragma: no cover - compiled
    """Reverse sweep of :func:`twin_scan_forward`.

    ``Xs`` is the forward's state output; ``gXs, gflows, gnew, grep, grefs`` the cotangents of the
    five outputs (zeros where an output is not used). Returns the gradients with respect to
    ``X0, base, beta, carryover, fhalf`` (same shapes) and ``wom_rate`` (float). Each step's
    intermediates are recomputed from ``X_{t-1}`` (``Xs[t - 1]`` or ``X0``).
    """
    T = touches.shape[0]
    R = X0.shape[0]
    cols = X0.shape[1]
    K = fhalf.shape[0]
    RE = srow.shape[0]
    P = base.shape[0]
    E = base.shape[1]
    ws = _workspace(R, RE, K, P, E)
    gws = _grad_workspace(R, RE, K)
    Xn = np.empty((R, cols))
    flow_o, new_o, rep_o = np.empty(P * E), np.empty(P), np.empty(P)
    gbase = np.zeros((P, E))
    gbeta = np.zeros((K, E))
    gcarry = np.zeros(K)
    gfhalf = np.zeros(K)
    gwr = 0.0
    carry = np.zeros((R, cols))  # cotangent of X_t from the steps after t
    gXn = np.empty((R, cols))
    X0c = np.ascontiguousarray(X0)
    for t in range(T - 1, -1, -1):
        if t < T - 1 and (_differ(em[t], em[t + 1]) or _differ(cm[t], cm[t + 1])):
            _flush_hazard_grads(gws[-2], gws[-1], em[t + 1], cm[t + 1], pidx, eidx, aff, gbase, gbeta)
        X = X0c if t == 0 else Xs[t - 1]
        _step_forward_ws(X, touches[t], em[t], cm[t], base, beta, carryover, fhalf, wom_rate, dt,
                         srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                         ws, Xn, flow_o, new_o, rep_o, False)
        for r in range(R):
            for c in range(cols):
                gXn[r, c] = gXs[t, r, c] + carry[r, c]
        gwr += _step_backward(X, em[t], cm[t], beta, carryover, fhalf, wom_rate, dt,
                              srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                              ws, gws, gXn, gflows[t], gnew[t], grep[t], grefs[t],
                              carry, gcarry, gfhalf)
    if T > 0:
        _flush_hazard_grads(gws[-2], gws[-1], em[0], cm[0], pidx, eidx, aff, gbase, gbeta)
    return carry, gbase, gbeta, gcarry, gfhalf, gwr


# ---------------------------------------------------------------------------------------------
# PyTensor Ops

_NDIM = (2, 3, 3, 2, 2, 2, 1, 1, 0)  # touches, em, cm, X0, base, beta, carryover, fhalf, wom_rate
_NAMES = ("touches", "em", "cm", "X0", "base", "beta", "carryover", "fhalf", "wom_rate")


def use_fused(fused: bool | None = None) -> bool:
    """Whether :func:`journeysim.calibrate.build_model` uses :class:`TwinScan` instead of ``scan``.

    ``None``: when numba is importable and the environment variable ``JOURNEYSIM_NO_FUSED`` is not set.
    """
    if fused is None:
        return HAVE_NUMBA and not os.environ.get("JOURNEYSIM_NO_FUSED")
    return bool(fused)


def _struct_args(ks: KernelStructure) -> tuple:
    return (ks.srow, ks.drow, ks.pe, ks.pidx, ks.eidx, ks.kind, ks.optr, ks.oidx, ks.targ, ks.womf, ks.aff)


def _f64(x):
    return np.ascontiguousarray(x, dtype=np.float64)


def _check_inputs(op, args):
    out = []
    for name, nd, x in zip(_NAMES, _NDIM, args):
        x = pt.as_tensor_variable(x)
        if x.dtype != "float64":
            x = pt.cast(x, "float64")
        if x.ndim != nd:
            raise TypeError(f"{type(op).__name__}: {name} must have {nd} dimensions, not {x.ndim}")
        out.append(x)
    return out


class TwinScan(Op):
    """``twin_step`` over a history (:func:`twin_scan_forward`) as one Op.

    Inputs ``touches, em, cm, X0, base, beta, carryover, fhalf, wom_rate``; outputs ``Xs, flows,
    new, repeat, referrals``. Properties: ``key`` (the structure, :meth:`KernelStructure.key`) and
    ``dt``. Gradients with respect to ``X0`` and the parameters come from :class:`TwinScanGrad`;
    ``touches, em, cm`` (data) have none (``grad_not_implemented``: an error if ever asked for).
    """

    __props__ = ("key", "dt")

    def __init__(self, key: tuple, dt: float):
        self.key = key
        self.dt = float(dt)
        self.ks = KernelStructure.from_key(key)

    def __str__(self):
        R, K = self.ks.targ.shape
        return f"{type(self).__name__}{{R={R}, R_E={self.ks.srow.shape[0]}, K={K}, dt={self.dt:g}}}"

    def _out_shapes(self, T):
        R, K = self.ks.targ.shape
        P = self.ks.aff.shape[1]
        PE = int(self.ks.pe.max()) + 1 if self.ks.pe.size else 0
        return [(T, R, 1 + 2 * K), (T, PE), (T, P), (T, P), (T,)]

    def make_node(self, *args):
        inputs = _check_inputs(self, args)
        shapes = self._out_shapes(inputs[0].type.shape[0])
        return Apply(self, inputs, [pt.tensor(dtype="float64", shape=s) for s in shapes])

    def perform(self, node, inputs, output_storage):
        touches, em, cm, X0, base, beta, carry, fhalf, wom = inputs
        res = twin_scan_forward(_f64(touches), _f64(em), _f64(cm), _f64(X0), _f64(base), _f64(beta),
                                _f64(carry), _f64(fhalf), float(wom), self.dt, *_struct_args(self.ks))
        for store, v in zip(output_storage, res):
            store[0] = v

    def infer_shape(self, fgraph, node, shapes):
        return self._out_shapes(shapes[0][0])

    def L_op(self, inputs, outputs, output_grads):
        gouts = [o.zeros_like() if isinstance(g.type, DisconnectedType) else g for o, g in zip(outputs, output_grads)]
        grads = TwinScanGrad(self.key, self.dt)(*inputs, outputs[0], *gouts)
        return [grad_not_implemented(self, i, inputs[i], f"{_NAMES[i]} is data: no gradient") for i in range(3)] \
            + list(grads)


class TwinScanGrad(Op):
    """Gradients of :class:`TwinScan` (:func:`twin_scan_backward`) with respect to ``X0, base, beta,
    carryover, fhalf, wom_rate``.

    Inputs: the nine inputs of :class:`TwinScan`, its output ``Xs``, and the cotangents of its five
    outputs. No second derivatives.
    """

    __props__ = ("key", "dt")

    def __init__(self, key: tuple, dt: float):
        self.key = key
        self.dt = float(dt)
        self.ks = KernelStructure.from_key(key)

    __str__ = TwinScan.__str__

    def make_node(self, *args):
        inputs = _check_inputs(self, args[:9])
        rest = [pt.as_tensor_variable(x) for x in args[9:]]
        rest = [x if x.dtype == "float64" else pt.cast(x, "float64") for x in rest]
        return Apply(self, inputs + rest, [x.type() for x in inputs[3:]])

    def perform(self, node, inputs, output_storage):
        touches, em, cm, X0, base, beta, carry, fhalf, wom, Xs, gXs, gfl, gnew, grep, gref = inputs
        res = twin_scan_backward(_f64(touches), _f64(em), _f64(cm), _f64(X0), _f64(base), _f64(beta),
                                 _f64(carry), _f64(fhalf), float(wom), self.dt, *_struct_args(self.ks),
                                 _f64(Xs), _f64(gXs), _f64(gfl), _f64(gnew), _f64(grep), _f64(gref))
        for store, v in zip(output_storage[:5], res[:5]):
            store[0] = v
        output_storage[5][0] = np.asarray(res[5], dtype=np.float64)

    def infer_shape(self, fgraph, node, shapes):
        return [tuple(s) for s in shapes[3:9]]

    def L_op(self, inputs, outputs, output_grads):
        return [grad_not_implemented(self, i, x, "second derivatives of the twin") for i, x in enumerate(inputs)]


def twin_scan(touches, em, cm, X0, base, beta, carryover, fhalf, wom_rate, *, structure, mats=None, dt=None):
    """Drop-in for the ``pytensor.scan`` of ``twin_step`` in :func:`journeysim.calibrate.build_model`.

    Returns the pytensor variables ``Xs (T, R, 1 + 2K)``, ``flows (T, P*E)``, ``new (T, P)``,
    ``repeat (T, P)``, ``referrals (T,)``.
    """
    ks = kernel_structure(structure, mats)
    op = TwinScan(ks.key(), structure.dt if dt is None else dt)
    return tuple(op(touches, em, cm, X0, base, beta, carryover, fhalf, wom_rate))


# ---------------------------------------------------------------------------------------------
# PyTensor's numba backend (nutpie backend="numba"): call the kernels from compiled code


def _source_version() -> int:
    """A number that changes with this file: part of PyTensor's cache key of the compiled Ops, which
    contain the kernels' code (without it, an edited kernel could be served from PyTensor's cache)."""
    import hashlib

    with open(__file__, "rb") as fh:
        return int(hashlib.sha256(fh.read()).hexdigest()[:12], 16)


_SOURCE_VERSION = _source_version()


def _register_numba():
    from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

    @register_funcify_default_op_cache_key(TwinScan)
    def _numba_twin_scan(op, node=None, **kwargs):
        srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff = _struct_args(op.ks)
        dt = op.dt
        fwd = twin_scan_forward

        @numba_njit
        def twin_scan_op(touches, em, cm, X0, base, beta, carryover, fhalf, wom_rate):  # pragma: no cover
            # (C-contiguous types: PyTensor may type its arrays as any layout, and the kernels index
            # C arrays faster; no copy when the data are contiguous, as they are in practice)
            c = np.ascontiguousarray
            return fwd(c(touches), c(em), c(cm), c(X0), c(base), c(beta), c(carryover), c(fhalf), wom_rate.item(), dt,
                       srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff)

        return twin_scan_op, _SOURCE_VERSION

    @register_funcify_default_op_cache_key(TwinScanGrad)
    def _numba_twin_scan_grad(op, node=None, **kwargs):
        srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff = _struct_args(op.ks)
        dt = op.dt
        bwd = twin_scan_backward

        @numba_njit
        def twin_scan_grad_op(touches, em, cm, X0, base, beta, carryover, fhalf, wom_rate, Xs, gXs, gflows,
                              gnew, grep, grefs):  # pragma: no cover
            c = np.ascontiguousarray
            gX0, gbase, gbeta, gcarry, gfhalf, gw = bwd(
                c(touches), c(em), c(cm), c(X0), c(base), c(beta), c(carryover), c(fhalf), wom_rate.item(), dt,
                srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                c(Xs), c(gXs), c(gflows), c(gnew), c(grep), c(grefs))
            gwr = np.empty(())
            gwr[()] = gw
            return gX0, gbase, gbeta, gcarry, gfhalf, gwr

        return twin_scan_grad_op, _SOURCE_VERSION


def _register_merge_rewrite():
    """One reverse sweep per history, whichever way the gradient graph was built.

    PyMC's ``model.logp()`` clones the twin once per observed variable; ``pytensor.grad`` of that
    graph, not merged first, calls :meth:`TwinScan.L_op` once per clone and so makes one
    :class:`TwinScanGrad` per observation, each with part of the cotangents. Merging the forward
    clones leaves those reverse sweeps apart (their inputs differ): 4 sweeps for the retail
    example, 29 ms per gradient instead of 8. nutpie and PyMC's samplers rewrite before taking the
    gradient and are not affected. The reverse sweep is linear in the cotangents, so the nodes
    sharing the same forward inputs are replaced by one node with the summed cotangents (the
    others by zeros: the gradients they fed are sums anyway).
    """
    from pytensor.compile import optdb
    from pytensor.graph.rewriting.basic import GraphRewriter

    class MergeTwinScanGrads(GraphRewriter):
        def apply(self, fgraph):
            groups: dict = {}
            for node in fgraph.toposort():
                if isinstance(node.op, TwinScanGrad):
                    groups.setdefault((node.op, tuple(node.inputs[:10])), []).append(node)
            for (op, ins), nodes in groups.items():
                if len(nodes) < 2:
                    continue
                cots = [pt.add(*[n.inputs[10 + i] for n in nodes]) for i in range(5)]
                merged = op(*ins, *cots)
                pairs = list(zip(nodes[0].outputs, merged))
                for n in nodes[1:]:
                    pairs += [(o, pt.zeros_like(o)) for o in n.outputs]
                fgraph.replace_all_validate(pairs, reason="merge_twin_scan_grads")

    optdb.register("journeysim_merge_twin_scan_grads", MergeTwinScanGrads(), "fast_run", "fast_compile",
                   position=1.5)  # (after merge1 and canonicalize: the forward clones are one node by then)


try:
    _register_merge_rewrite()
except (ImportError, AttributeError):  # pragma: no cover - another PyTensor's rewrite API: one sweep per clone
    pass

if HAVE_NUMBA:
    try:
        _register_numba()
    except (ImportError, AttributeError):  # pragma: no cover - another PyTensor's numba dispatch API:
        pass  # compiled models then call perform() (object mode): the same numbers, somewhat slower
