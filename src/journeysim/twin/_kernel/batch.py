"""The numpy twin's batched run (:class:`journeysim.twin.run.Twin`) as one compiled loop over the batch.

Planning runs the twin for every (plan, posterior draw) pair: thousands of small independent
trajectories. The numpy twin steps them together as arrays, which moves tens of megabytes per step
through memory; here each trajectory runs on its own, in registers and cache, with the step of
:mod:`journeysim.inference.ops` (the compiled implementation of :func:`journeysim.twin.step.twin_step`,
tested against it), and the batch is split over the cores (threads: the kernel releases the GIL). Each trajectory's
numbers depend only on its own inputs, never on the thread that runs it or the batch around it:
an identical plan gives exactly the same numbers, whatever the batch.

:func:`run_weekly` returns what :meth:`journeysim.twin.run.Twin.run_arrays` records each week.
"""

from __future__ import annotations

import numpy as np

from journeysim._util.cpu import default_workers
from journeysim._util.numba import njit
from journeysim.model.dynamics import TINY
from journeysim.twin._kernel.forward import step_forward, workspace
from journeysim.twin._kernel.layout import kernel_structure, struct_args

__all__ = ['run_weekly']


@njit
def _run_weekly(lo, hi, X0, touches, em, cm, base, beta, carryover, fhalf, cap, wom_rate, dt, subs, C,
                srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                flow_w, new_w, rep_w, ref_w, imp_w, N_end, reach_w):  # pragma: no cover - compiled
    R = X0.shape[1]
    cols = X0.shape[2]
    W = touches.shape[1]
    K = fhalf.shape[1]
    RE = srow.shape[0]
    P = base.shape[1]
    E = base.shape[2]
    per_draw = em.shape[0] > 1
    for i in range(lo, hi):
        emi = em[i] if per_draw else em[0]
        # a workspace per trajectory: it caches hazard coefficients that depend on this trajectory's beta
        ws = workspace(R, RE, K, P, E)
        sc = ws[0]  # [N @ wom_from, wom]
        pw = ws[3]  # touches per unit of targeting weight
        tgt = ws[2]  # targeted people (weighted)
        phi = ws[44]  # touches delivered per touch bought (1: no demand cap binds)
        X = X0[i].copy()
        Xn = np.empty((R, cols))
        fo = np.empty(P * E)
        no = np.empty(P)
        ro = np.empty(P)
        mu = np.empty((R, K))
        for w in range(W):
            for j in range(P * E):
                flow_w[i, w, j] = 0.0
            for p in range(P):
                new_w[i, w, p] = 0.0
                rep_w[i, w, p] = 0.0
            ref_w[i, w] = 0.0
            for k in range(C):
                imp_w[i, w, k] = 0.0
            for r in range(R):
                for k in range(K):
                    mu[r, k] = 0.0
            for s in range(subs.shape[0]):
                n = subs[s]
                tau = dt * n
                step_forward(X, touches[i, w], emi[w], cm[w], base[i], beta[i], carryover[i], fhalf[i], cap[i],
                                 wom_rate[i], dt, n, srow, drow, pe, pidx, eidx, kind, optr, oidx, targ, womf, aff,
                                 ws, Xn, fo, no, ro, True)
                for j in range(P * E):
                    flow_w[i, w, j] += fo[j]
                for p in range(P):
                    new_w[i, w, p] += no[p]
                    rep_w[i, w, p] += ro[p]
                ref_w[i, w] += sc[1] * tau
                for k in range(C):
                    sent = touches[i, w, k] if phi[k] == 1.0 else pw[k] * max(tgt[k], TINY)
                    imp_w[i, w, k] += sent * tau
                # touches per person in the step: targeting * (per_weight * tau)
                for r in range(R):
                    for k in range(K):
                        mu[r, k] += targ[r, k] * (pw[k] * tau)
                X, Xn = Xn, X
            for r in range(R):
                N_end[i, w, r] = X[r, 0]
            # reach = sum over rows of N (1 - exp(-mu summed over the week)), channels only
            for k in range(C):
                acc = 0.0
                for r in range(R):
                    acc += X[r, 0] * (1.0 - np.exp(-mu[r, k]))
                reach_w[i, w, k] = acc
        X0[i, :, :] = X  # the final state, in place


def run_weekly(structure, X0, touches, em, cm, params, dt: int, subs: tuple, mats=None, threads: int | None = None):
    """Run ``B`` independent trajectories for ``W`` weeks, each of the steps ``subs`` (the memory steps
    of ``dt`` days of each: :attr:`~journeysim.model.dynamics.Structure.substeps`).

    Parameters
    ----------
    X0 : (B, R, 1 + 2K) initial states (not modified)
    touches : (B, W, C) daily touches of each channel, per week
    em : (W, P, E) or (B, W, P, E) multipliers of the base hazards per week (events and demand;
        per trajectory when demand terms differ between draws)
    cm : (W, K, P) event multipliers of the channel effects per week
    params : :class:`~journeysim.model.dynamics.Params` with every field broadcast to a leading ``B``

    Returns ``(X_end, out)``: the final states ``(B, R, 1 + 2K)`` and weekly sums ``flow (B, W,
    P*E)``, ``new``, ``repeat (B, W, P)``, ``referrals (B, W)``, ``impressions (B, W, C)``, the
    people reached ``reach (B, W, C)`` and the people per state row at the end of each week
    ``N_end (B, W, R)``. ``threads`` (default: the cores this process may use) share the batch.
    """
    ks = kernel_structure(structure, mats)
    X = np.array(X0, dtype=np.float64, order="C", copy=True)
    B, R = X.shape[0], X.shape[1]
    W = touches.shape[1]
    P, E = np.asarray(params.base).shape[-2:]
    C = touches.shape[2]
    out = {"flow": np.empty((B, W, P * E)), "new": np.empty((B, W, P)), "repeat": np.empty((B, W, P)),
           "referrals": np.empty((B, W)), "impressions": np.empty((B, W, C)), "N_end": np.empty((B, W, R)),
           "reach": np.empty((B, W, C))}

    def f(x):
        return np.ascontiguousarray(x, dtype=np.float64)

    em = np.asarray(em, float)
    em = em[None] if em.ndim == 3 else em
    if em.shape[0] not in (1, B):
        raise ValueError(f"em has {em.shape[0]} trajectories, expected 1 or {B}")

    cap = np.full(np.asarray(params.fhalf).shape, np.inf) if params.cap is None else params.cap
    args = (X, f(touches), f(em), f(cm), f(params.base), f(params.beta), f(params.carryover), f(params.fhalf), f(cap),
            f(params.wom_rate), float(dt), np.asarray(subs, np.int64), int(C), *struct_args(ks),
            out["flow"], out["new"], out["repeat"], out["referrals"], out["impressions"], out["N_end"], out["reach"])
    # the kernel releases the GIL: threads share the batch (each trajectory writes only its own rows)
    n = max(1, min(threads or default_workers(), B // 4))
    if n == 1:
        _run_weekly(0, B, *args)
    else:
        from concurrent.futures import ThreadPoolExecutor

        cuts = np.linspace(0, B, n + 1).round().astype(int)
        with ThreadPoolExecutor(n) as pool:
            for fut in [pool.submit(_run_weekly, int(a), int(b), *args) for a, b in zip(cuts[:-1], cuts[1:])]:
                fut.result()
    return X, out
