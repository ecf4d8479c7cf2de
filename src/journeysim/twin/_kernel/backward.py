"""The compiled reverse sweep (reverse-mode adjoints) of the twin over a history, recomputing each step from its stored state."""

from __future__ import annotations

import numpy as np

from journeysim._util.numba import njit as _njit
from journeysim.model.dynamics import CAP_SMALL, TINY
from journeysim.twin._kernel.forward import _differ, log1p_ratio_grad, step_forward, workspace

__all__ = ['twin_scan_backward']


@_njit
def grad_workspace(R, RE, K):  # pragma: no cover - compiled
    """Adjoints of one step's intermediates (:func:`step_backward`)."""
    return (np.empty((R, K)), np.empty((R, K)), np.empty((R, K)), np.empty((R, K)),  # A, Q (updated), abar, V
            np.empty((R, K)), np.empty((R, K)), np.empty((R, K)),  # var, T, Bstage
            np.empty(R), np.empty(R),  # H (incl. through L), L
            np.empty((R, K)), np.empty((R, K)),  # a_out0, q_out0: the part through the cap's ratio (per source)
            np.empty((RE, K)), np.empty(RE),  # B_rows, h
            np.empty(K), np.empty(K), np.empty(K),  # q, d, per_weight
            np.empty(RE), np.empty(RE), np.empty(RE),  # per edge row: frac, r * slope, L / H
            np.empty((R, K)), np.empty((R, K)), np.empty(R), np.empty(R),  # A, Q at the step's end; stay; sum of b
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
def step_backward(X, em_t, cm_t, beta, carryover, fhalf, cap, wom_rate, dt, n,
                   srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                   ws, gws, gXn, gflow_o, gnew_o, grep_o, gref,
                   gX, gparams):  # pragma: no cover - compiled
    """Reverse of :func:`step_forward` (whose workspace ``ws`` holds the step's intermediates).

    Given the cotangents of the step's outputs (``gXn`` on the new state, ``gflow_o``, ``gnew_o``,
    ``grep_o``, ``gref`` on referrals), writes the cotangent of the old state into ``gX`` and adds
    the parameters' into ``gparams = (gcarry, gfhalf, gcap)`` and the workspace's sums for ``base`` and ``beta`` (see
    :func:`_flush_hazard_grads`); returns that of ``wom_rate``. The
    statements of ``twin_step`` are visited in reverse order (hoisted ones where they were
    computed). Terms skipped by the forward's shortcuts are zero here too, except the gradient with
    respect to ``B_rows`` entries that are 0 (a ``beta`` of 0 still has a gradient): kept.
    """
    (sc, touch, tgt, pw, q, d, A1, Q1, abar, V, invN, var, invA, Tm, empty, b, Brow, hh, Hs, BstR, rowL, invH,
     fx, frac, flow, rsl, aout0, qout0, sa, sq, ma, mq, ra, rq, isa, isq, nzk, nnz, actk, nact, em_prev, cm_prev,
     valid, pw0, phi, AE, QE, rhoA, rhoQ, xg, stay, bsum, gx) = ws
    (gA1, gQ1, gabar, gV, gvar, gTm, gBstR, gH, gL, gsa, gsq, gBrow, ghh, gq, gd, gpw, gfr, grs, gLH,
     gAE, gQE, gstay, gbs, gbw, gBw) = gws
    gcarry, gfhalf, gcap = gparams  # (one argument: a call of more than 30 arguments is not inlined)
    R = X.shape[0]
    K = fhalf.shape[0]
    RE = srow.shape[0]
    tau = dt * n
    # "referrals": wom * tau
    gwom = gref * tau
    # X_new = [N_, A_end, Q_end] + move @ F: the old stocks get gXn, each edge row's F the difference dst - src
    gX[:, 0] = gXn[:, 0]  # (N_ = N; more terms below)
    gAE[:, :] = gXn[:, 1:1 + K]
    gQE[:, :] = gXn[:, 1 + K:]
    gA1[:, :] = 0.0
    gQ1[:, :] = 0.0
    gstay[:] = 0.0
    gH[:] = 0.0
    gL[:] = 0.0
    gabar[:, :] = 0.0
    gV[:, :] = 0.0
    gvar[:, :] = 0.0
    gTm[:, :] = 0.0
    # a_out = a_out0 * src(ma), ma = minimum(1.0, A_end / maximum(sum of a_out0, TINY)) (and q_out):
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
                gAE[r, k] += gma * isa[r, k]
                if sa[r, k] >= TINY:
                    gsa[r, k] = -gma * ra[r, k] * isa[r, k]
            if rq[r, k] < 1.0 and sq[r, k] != 0.0:
                gmq = 0.0
                for i in range(optr[r], optr[r + 1]):
                    jj = oidx[i]
                    gmq += (gXn[drow[jj], 1 + K + k] - gXn[r, 1 + K + k]) * qout0[jj, k]
                gQE[r, k] += gmq * isq[r, k]
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
    # a_out = maximum(frac As + G Vs, 0) rhoA; q_out = maximum(frac Qs + G T, 0) rhoQ; G = (r slope) Bstage + (L / H) B_rows
    #   (rhoA = A_end / maximum(A, TINY), rhoQ likewise)
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
            pa = rhoA[r, k]
            pq = rhoQ[r, k]
            acc_pa = 0.0
            acc_pq = 0.0
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
                xa = fr * As + G * Vs
                if xa >= 0.0:
                    gax = (gXn[t, 1 + k] - gx_a) * m_a + g_sa
                    acc_pa += gax * xa
                    gax *= pa
                gqx = 0.0
                xq = fr * Qs + G * T_
                if xq >= 0.0:
                    gqx = (gXn[t, 1 + K + k] - gx_q) * m_q + g_sq
                    acc_pq += gqx * xq
                    gqx *= pq
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
            # rhoA = A_end / maximum(A, TINY) (and rhoQ)
            gAE[r, k] += acc_pa / max(As, TINY)
            if As >= TINY:
                gA1[r, k] -= acc_pa * pa / As
            gQE[r, k] += acc_pq / max(Qs, TINY)
            if Qs >= TINY:
                gQ1[r, k] -= acc_pq * pq / Qs
            gV[r, k] += accV
            gTm[r, k] += accT
            gBstR[r, k] = accB
    # per edge row, in reverse: frac = r (1 - stay), slope, r
    for j in range(RE):
        s = srow[j]
        if empty[s]:
            ghh[j] = 0.0
            continue
        L = rowL[s]
        iH = invH[s]
        rr = hh[j] * iH
        slope = tau * (1.0 - L) - L * iH
        LH = L * iH
        # frac = r (1 - stay)
        g_r = gfr[j] * (1.0 - stay[s])
        gstay[s] -= gfr[j] * rr
        g_slope = grs[j] * rr  # (r slope in G)
        g_r += grs[j] * slope
        g_LH = gLH[j]
        # L / H (in G)
        g_L = g_LH * iH
        g_H = -g_LH * LH * iH
        # slope = tau (1 - L) - L / H
        g_L -= g_slope * (tau + iH)
        g_H += g_slope * L * iH * iH
        # r = h / H
        gh = g_r * iH
        g_H -= g_r * rr * iH
        ghh[j] = gh
        gH[s] += g_H
        gL[s] += g_L
    # per state row: stay = exp(-S), S = tau sum(b) + sum_k c abar g(x), c = tau Bstage, x = c var / abar
    #   (x = 0 where abar <= TINY); d term / dc = abar (g + x g'), / dabar = c (g - x g'), / dvar = c^2 g'
    #   (every source: a Bstage of 0 still has a gradient)
    for r in range(R):
        gS = -gstay[r] * stay[r]
        gbs[r] = gS * tau
        if empty[r] or gS == 0.0:
            continue
        for i in range(nact[r]):  # (sources with Bstage terms: x and log1p_ratio(x) from the forward)
            kk = actk[r, i]
            c = tau * BstR[r, kk]
            ab = abar[r, kk]
            if ab > TINY:
                x = xg[r, kk]
                g = gx[r, kk]
                gp = log1p_ratio_grad(x, g)
                gBstR[r, kk] += gS * ab * (g + x * gp) * tau
                gabar[r, kk] += gS * c * (g - x * gp)
                gvar[r, kk] += gS * c * c * gp
            else:
                gBstR[r, kk] += gS * ab * tau
                gabar[r, kk] += gS * c
        if nact[r] < K:  # the others (Bstage = 0, so x = 0 and log1p_ratio(0) = 1): only d term / dc = abar
            i = 0
            for kk in range(K):
                if i < nact[r] and actk[r, i] == kk:  # (actk lists the active sources in increasing order)
                    i += 1
                else:
                    gBstR[r, kk] += gS * abar[r, kk] * tau
    # per state row: L = 1 - exp(-H tau); H = maximum(h @ same_src.T, TINY); Bstage = same_src @ B_rows;
    # then per edge row leaving it: h = b_rows + sum(B_rows * abars) (and b_rows in stay's S)
    for r in range(R):
        gHr = gH[r] + gL[r] * tau * (1.0 - rowL[r])
        if Hs[r] < TINY:
            gHr = 0.0
        for i in range(optr[r], optr[r + 1]):
            j = oidx[i]
            g = ghh[j] + gHr
            # base_eff = base * edge_mult; B = beta * (affinity * chan_mult): the products with the week's
            # multipliers are taken when the week's sums are flushed (_flush_hazard_grads)
            gbw[j] += g + gbs[r]
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
    buf = np.empty((n + 1, 2))  # one source's memory moments after each memory step
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
            dk = d[k]
            qk = q[k]
            inc_q = qk * qk * N * (mu + mu * mu)
            inc_a = qk * mu * N
            # the memory steps again: A_i = d A_{i-1} + q mu N; Q_i = d^2 Q_{i-1} + 2 d q mu A_{i-1} + q^2 N (mu + mu^2)
            buf[0, 0] = X[r, 1 + k]
            buf[0, 1] = X[r, 1 + K + k]
            for i in range(1, n + 1):
                buf[i, 1] = dk * dk * buf[i - 1, 1] + 2.0 * dk * qk * mu * buf[i - 1, 0] + inc_q
                buf[i, 0] = dk * buf[i - 1, 0] + inc_a
            # A = (sum of A_i) / n, A_end = A_n (and Q): in reverse over the memory steps
            ga_m = ga / n
            gQ_m = gQ / n
            cA = gAE[r, k]
            cQ = gQE[r, k]
            gmu = 0.0
            for i in range(n, 0, -1):
                tA = ga_m + cA
                tQ = gQ_m + cQ
                A0 = buf[i - 1, 0]
                Q0 = buf[i - 1, 1]
                gd[k] += tA * A0 + tQ * (2.0 * dk * Q0 + 2.0 * qk * mu * A0)
                gq[k] += tA * mu * N + tQ * (2.0 * dk * mu * A0 + 2.0 * qk * N * (mu + mu * mu))
                gmu += tA * qk * N + tQ * (2.0 * dk * qk * A0 + qk * qk * N * (1.0 + 2.0 * mu))
                gN += tA * qk * mu + tQ * qk * qk * (mu + mu * mu)
                cA = tA * dk + tQ * 2.0 * dk * qk * mu
                cQ = tQ * dk * dk
            gX[r, 1 + k] = cA
            gX[r, 1 + K + k] = cQ
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
        # per_weight = p0 * f(x), x = 7 p0 / cap, f = -expm1(-x) / x (1 - x / 2 for small x)
        p0 = pw0[k]
        x = 7.0 * p0 / cap[k]
        if x > CAP_SMALL:
            ex = np.exp(-x)
            df = (x * ex + np.expm1(-x)) / (x * x)  # f'(x)
        else:
            df = -0.5
        g0 = gpw[k] * (phi[k] + p0 * df * 7.0 / cap[k])  # d per_weight / d p0
        gcap[k] -= gpw[k] * p0 * df * x / cap[k]  # dx / dcap = -x / cap (0 for cap = inf)
        # p0 = touches / maximum(targeted, TINY);  targeted = N @ targeting
        tg = max(tgt[k], TINY)
        if k == K - 1:  # touches[K - 1] = wom
            gw += g0 / tg
        if tgt[k] >= TINY:
            gt = -g0 * p0 / tg
            for r in range(R):
                gX[r, 0] += gt * targ[r, k]
    # wom = wom_rate * (N @ wom_from)
    gwom += gw
    for r in range(R):
        gX[r, 0] += gwom * wom_rate * womf[r]
    return gwom * sc[0]


@_njit
def twin_scan_backward(touches, em, cm, X0, base, beta, carryover, fhalf, cap, wom_rate, dt, subs,
                       srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                       Xs, gXs, gflows, gnew, grep, grefs):  # pragma: no cover - compiled
    """Reverse sweep of :func:`twin_scan_forward`.

    ``Xs`` is the forward's state output; ``gXs, gflows, gnew, grep, grefs`` the cotangents of the
    five outputs (zeros where an output is not used). Returns the gradients with respect to
    ``X0, base, beta, carryover, fhalf, cap`` (same shapes), ``wom_rate`` (float) and the base hazards'
    multipliers ``em (T, P, E)`` (each step's own: ``base_eff = base * em[t]``). Each step's
    intermediates are recomputed from ``X_{t-1}`` (``Xs[t - 1]`` or ``X0``).
    """
    T = touches.shape[0]
    R = X0.shape[0]
    cols = X0.shape[1]
    K = fhalf.shape[0]
    RE = srow.shape[0]
    P = base.shape[0]
    E = base.shape[1]
    ws = workspace(R, RE, K, P, E)
    gws = grad_workspace(R, RE, K)
    Xn = np.empty((R, cols))
    flow_o, new_o, rep_o = np.empty(P * E), np.empty(P), np.empty(P)
    gbase = np.zeros((P, E))
    gbeta = np.zeros((K, E))
    gcarry = np.zeros(K)
    gfhalf = np.zeros(K)
    gcap = np.zeros(K)
    gwr = 0.0
    gem = np.zeros((T, P, E))
    gbw = gws[-2]  # the cotangents of base_eff summed since the last flush
    before = np.empty(RE)
    carry = np.zeros((R, cols))  # cotangent of X_t from the steps after t
    gXn = np.empty((R, cols))
    X0c = np.ascontiguousarray(X0)
    for t in range(T - 1, -1, -1):
        if t < T - 1 and (_differ(em[t], em[t + 1]) or _differ(cm[t], cm[t + 1])):
            _flush_hazard_grads(gws[-2], gws[-1], em[t + 1], cm[t + 1], pidx, eidx, aff, gbase, gbeta)
        X = X0c if t == 0 else Xs[t - 1]
        n = subs[t % subs.shape[0]]
        step_forward(X, touches[t], em[t], cm[t], base, beta, carryover, fhalf, cap, wom_rate, dt, n,
                         srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                         ws, Xn, flow_o, new_o, rep_o, False)
        for r in range(R):
            for c in range(cols):
                gXn[r, c] = gXs[t, r, c] + carry[r, c]
        for j in range(RE):
            before[j] = gbw[j]
        gwr += step_backward(X, em[t], cm[t], beta, carryover, fhalf, cap, wom_rate, dt, n,
                              srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                              ws, gws, gXn, gflows[t], gnew[t], grep[t], grefs[t],
                              carry, (gcarry, gfhalf, gcap))
        # this step's cotangent of base_eff = base * em[t]
        for j in range(RE):
            p = pidx[j]
            e = eidx[j]
            gem[t, p, e] += (gbw[j] - before[j]) * base[p, e]
    if T > 0:
        _flush_hazard_grads(gws[-2], gws[-1], em[0], cm[0], pidx, eidx, aff, gbase, gbeta)
    return carry, gbase, gbeta, gcarry, gfhalf, gcap, gwr, gem
