"""The compiled forward sweep of the twin over a history: each statement mirrors :func:`journeysim.twin.step.twin_step`."""

from __future__ import annotations

import numpy as np

from journeysim._util.numba import njit as _njit
from journeysim.model.dynamics import CAP_SMALL, SERIES_BELOW, TINY

__all__ = ['twin_scan_forward']


# ---------------------------------------------------------------------------------------------
# one step, forward and reverse


@_njit
def workspace(R, RE, K, P, E):  # pragma: no cover - compiled
    """Intermediates of one step (filled by :func:`step_forward`, read by :func:`step_backward`)."""
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
            np.zeros((P, E)), np.zeros((K, P)), np.zeros(1, np.int64),  # event multipliers of B_rows; valid
            np.empty(K), np.empty(K),  # demand caps: touches per weight bought; the factor delivered
            np.empty((R, K)), np.empty((R, K)),  # A, Q at the step's end (A, Q above: the step's averages)
            np.empty((R, K)), np.empty((R, K)),  # end / max(average, TINY), for A and Q
            np.empty((R, K)), np.empty(R), np.empty(R),  # the gamma closure's x; the share that stays; sum of b
            np.empty((R, K)))  # log1p_ratio(x)


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
def log1p_ratio(x):  # pragma: no cover - compiled
    """``log1p(x) / x`` for ``x >= 0`` (:func:`journeysim.twin.step.log1p_ratio`)."""
    if x > SERIES_BELOW:
        u = 1.0 + x
        return np.log(u) / (u - 1.0)
    return 1.0 + x * (-1.0 / 2 + x * (1.0 / 3 + x * (-1.0 / 4 + x * (1.0 / 5 + x * (-1.0 / 6 + x / 7.0)))))


@_njit(inline=True)
def log1p_ratio_grad(x, g):  # pragma: no cover - compiled
    """The derivative of :func:`log1p_ratio` at ``x``, given its value ``g`` there."""
    if x > SERIES_BELOW:
        return (1.0 / (1.0 + x) - g) / x
    return -1.0 / 2 + x * (2.0 / 3 + x * (-3.0 / 4 + x * (4.0 / 5 + x * (-5.0 / 6 + x * 6.0 / 7.0))))


@_njit(inline=True)
def step_forward(X, tc, em_t, cm_t, base, beta, carryover, fhalf, cap, wom_rate, dt, n,
                     srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                     ws, Xn, flow_o, new_o, rep_o, full):  # pragma: no cover - compiled
    """``twin_step`` (``n`` memory steps of ``dt`` days) from state ``X (R, 1 + 2K)``: fills the workspace ``ws`` (:func:`workspace`)
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
     valid, pw0, phi, AE, QE, rhoA, rhoQ, xg, stay, bsum, gx) = ws
    R = X.shape[0]
    tau = dt * n
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
    # per_weight, q = effectiveness(xp, touches, N @ m.targeting, params.fhalf, params.cap)
    #   per_weight = touches / maximum(targeted, TINY); capped: per_weight *= -expm1(-x) / x, x = 7 per_weight / cap
    #   (1 - x / 2 for x <= CAP_SMALL); q = 1.0 / (1.0 + 7.0 * per_weight / fhalf)
    for k in range(K):
        acc = 0.0
        for r in range(R):
            acc += X[r, 0] * targ[r, k]
        tgt[k] = acc
        p0 = touch[k] / max(acc, TINY)
        pw0[k] = p0
        x = 7.0 * p0 / cap[k]
        if x > CAP_SMALL:
            f = -np.expm1(-x) / x
        else:
            f = 1.0 - 0.5 * x
        phi[k] = f
        pw[k] = p0 * f
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
                AE[r, k] = 0.0
                QE[r, k] = 0.0
                rhoA[r, k] = 0.0
                rhoQ[r, k] = 0.0
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
            inc_q = qk * qk * N * (mu + mu * mu)
            inc_a = qk * mu * N
            A_sum = 0.0
            Q_sum = 0.0
            for _ in range(n):
                # Q = d * d * Q + 2.0 * d * qq * mu * A + qq * qq * N_ * (mu + mu * mu)
                Q0 = dk * dk * Q0 + 2.0 * dk * qk * mu * A0 + inc_q
                # A = d * A + qq * mu * N_
                A0 = dk * A0 + inc_a
                A_sum += A0
                Q_sum += Q0
            AE[r, k] = A0
            QE[r, k] = Q0
            # A = A_sum / sub; Q = Q_sum / sub
            An = A_sum / n
            Qn = Q_sum / n
            rhoA[r, k] = A0 / max(An, TINY)
            rhoQ[r, k] = Q0 / max(Qn, TINY)
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
        bs = 0.0
        for i in range(optr[r], optr[r + 1]):
            acc += hh[oidx[i]]
            bs += b[oidx[i]]
        Hs[r] = acc
        bsum[r] = bs
        H = max(acc, TINY)
        invH[r] = 1.0 / H
        # L = 1 - exp(-H * tau)
        rowL[r] = 1.0 - np.exp(-H * tau)
        # stay = exp(-tau * (b_rows @ same_src.T) - sum(c * abars * log1p_ratio(x))), c = tau * Bstage,
        #   x = c * var / abars where abars > TINY, else 0   (terms with Bstage = 0 are 0)
        S = tau * bs
        if not empty[r]:
            for i in range(nact[r]):
                kk = actk[r, i]
                c = tau * BstR[r, kk]
                ab = abar[r, kk]
                x = c * var[r, kk] / ab if ab > TINY else 0.0
                g = log1p_ratio(x)
                xg[r, kk] = x
                gx[r, kk] = g
                S += c * ab * g
        stay[r] = np.exp(-S)
    for j in range(RE):
        s = srow[j]
        Ns = X[s, 0]
        L = rowL[s]
        iH = invH[s]
        # r = h / H
        rr = hh[j] * iH
        # slope = tau * (1.0 - L) - L / H
        slope = tau * (1.0 - L) - L * iH
        # frac = r * (1.0 - stay)
        fr = rr * (1.0 - stay[s])
        fx[j] = fr
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
            pa = rhoA[r, k]
            pq = rhoQ[r, k]
            acc_a = 0.0
            acc_q = 0.0
            for i in range(optr[r], optr[r + 1]):
                j = oidx[i]
                fr = frac[j]
                # G = (r * slope)[..., None] * Bstage + (L / H)[..., None] * B_rows
                G = rsl[j] * Bst + LH * Brow[j, k]
                # T (hoisted above)
                # a_out = xp.maximum(frac[..., None] * As + G * Vs, 0.0) * (A_end / maximum(A, TINY))
                a = max(fr * As + G * Vs, 0.0) * pa
                # q_out = xp.maximum(frac[..., None] * Qs + G * T, 0.0) * (Q_end / maximum(Q, TINY))
                qo = max(fr * Qs + G * T_, 0.0) * pq
                aout0[j, k] = a
                qout0[j, k] = qo
                acc_a += a
                acc_q += qo
            # a_out = a_out * _lmul(xp, m.src, xp.minimum(1.0, A_end / xp.maximum(_lmul(xp, src_T, a_out), TINY)))
            # q_out = q_out * _lmul(xp, m.src, xp.minimum(1.0, Q_end / xp.maximum(_lmul(xp, src_T, q_out), TINY)))
            sa[r, k] = acc_a
            sq[r, k] = acc_q
            # (the ratio is at least 1 when A_end >= the denominator: no division needed)
            den = max(acc_a, TINY)
            if AE[r, k] >= den:
                ra[r, k] = 1.0
                ma[r, k] = 1.0
            else:
                ia = 1.0 / den
                isa[r, k] = ia
                ra[r, k] = AE[r, k] * ia
                ma[r, k] = min(1.0, ra[r, k])
            den = max(acc_q, TINY)
            if QE[r, k] >= den:
                rq[r, k] = 1.0
                mq[r, k] = 1.0
            else:
                iq = 1.0 / den
                isq[r, k] = iq
                rq[r, k] = QE[r, k] * iq
                mq[r, k] = min(1.0, rq[r, k])
    if not full:
        return
    # F = concatenate([flow, a_out, q_out]); X_new = concatenate([N_, A_end, Q_end]) + _lmul(xp, m.move, F)
    #   (move = destination - source: each edge row's F leaves its source row and enters its destination;
    #    what leaves a row is the sum of its edge rows': flows, sa * ma, sq * mq)
    for r in range(R):
        out = 0.0
        for i in range(optr[r], optr[r + 1]):
            out += flow[oidx[i]]
        Xn[r, 0] = X[r, 0] - out
        for k in range(K):
            Xn[r, 1 + k] = AE[r, k] - sa[r, k] * ma[r, k]
            Xn[r, 1 + K + k] = QE[r, k] - sq[r, k] * mq[r, k]
    for j in range(RE):
        s = srow[j]
        t = drow[j]
        Xn[t, 0] += flow[j]
        if not empty[s]:
            for k in range(K):
                Xn[t, 1 + k] += aout0[j, k] * ma[s, k]
                Xn[t, 1 + K + k] += qout0[j, k] * mq[s, k]
    # out: "flow": flow @ m.edge_out.T, "new": flow @ m.new_sel.T, "repeat": flow @ m.repeat_sel.T
    #      ("referrals": wom * tau, by the caller)
    flow_o[:] = 0.0
    new_o[:] = 0.0
    rep_o[:] = 0.0
    for j in range(RE):
        flow_o[pe[j]] += flow[j]
        if kind[j] == 1:
            new_o[pidx[j]] += flow[j]
        elif kind[j] == 2:
            rep_o[pidx[j]] += flow[j]


# ---------------------------------------------------------------------------------------------
# whole histories


@_njit
def twin_scan_forward(touches, em, cm, X0, base, beta, carryover, fhalf, cap, wom_rate, dt, subs,
                      srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff):  # pragma: no cover
    """``twin_step`` over ``T`` steps from ``X0``: what ``build_model``'s scan returns.

    ``touches (T, C)``, ``em (T, P, E)``, ``cm (T, K, P)`` per step; ``X0 (R, 1 + 2K)``; ``base
    (P, E)``, ``beta (K, E)``, ``carryover (K)``, ``fhalf (K)`` (``inf``: no saturation), ``cap (K)`` (``inf``: no demand cap),
    ``wom_rate`` (float), ``dt``, ``subs`` (the memory steps of each step of a week, ``int64``:
    step ``t`` has ``subs[t % len(subs)]``); then the :class:`KernelStructure` arrays. Returns ``Xs (T, R,
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
    ws = workspace(R, srow.shape[0], K, P, E)
    X = np.ascontiguousarray(X0)
    for t in range(T):
        n = subs[t % subs.shape[0]]
        step_forward(X, touches[t], em[t], cm[t], base, beta, carryover, fhalf, cap, wom_rate, dt, n,
                         srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                         ws, Xs[t], flows[t], new[t], rep[t], True)
        # "referrals": wom * tau
        refs[t] = ws[0][1] * (dt * n)
        X = Xs[t]
    return Xs, flows, new, rep, refs
