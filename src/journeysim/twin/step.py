"""THE equations of the mean-field twin: one step of expected flows between stages."""

from __future__ import annotations

import numpy as np

from journeysim.model.dynamics import (
    SERIES_BELOW,
    TINY,
    Params,
    Structure,
    delivered,
    effectiveness,
    hazard_terms,
)
from journeysim.twin.state import TwinMatrices, TwinState

__all__ = ['twin_step']


def _rows(xp, base_eff, B, P, E, K):
    """Per edge row: base hazards ``(..., R_E)`` and memory coefficients ``(..., R_E, K)``."""
    if xp is np:
        b = base_eff.reshape(base_eff.shape[:-2] + (P * E,))
        c = np.moveaxis(B, -3, -1).reshape(B.shape[:-3] + (P * E, K))
        return np.concatenate([b, b], axis=-1), np.concatenate([c, c], axis=-2)
    b = base_eff.reshape((P * E,))
    c = B.transpose((1, 2, 0)).reshape((P * E, K))
    return xp.concatenate([b, b], axis=-1), xp.concatenate([c, c], axis=-2)


def _lmul(xp, M, A):
    """``M @ A`` for a constant matrix ``M (m, n)`` and ``A (..., n, k)``.

    With numpy and batch dimensions, ``M @ A`` runs one small product per batch element; here the
    batch is folded into a single matrix product instead (same numbers, one BLAS call).
    """
    if xp is not np or A.ndim <= 2:
        return M @ A
    At = np.swapaxes(A, -1, -2)  # (..., k, n)
    out = np.ascontiguousarray(At).reshape(-1, At.shape[-1]) @ M.T  # (... k, m)
    return np.swapaxes(out.reshape(At.shape[:-1] + (M.shape[0],)), -1, -2)


def _sent(xp, touches_c, per_weight, targeted, cap, K: int):
    """Touches the channels delivered: those bought, or fewer where a demand cap binds."""
    if cap is None:
        return touches_c
    uncapped = xp.isinf(cap[..., :K - 1])  # (word of mouth, the last source, is no channel)
    return xp.where(uncapped, touches_c, delivered(xp, per_weight, targeted)[..., :K - 1])


def log1p_ratio(xp, x):
    """``log1p(x) / x`` for ``x >= 0`` (1 at 0), smooth and safe to differentiate at 0.

    Above :data:`~journeysim.model.dynamics.SERIES_BELOW` as ``log(u) / (u - 1)`` with ``u = 1 + x``
    (Kahan's way to ``log1p``: the rounding of ``u`` cancels between the two, so it is as accurate as
    ``log1p(x) / x``, 3e-16 relative, and a ``log`` costs half a ``log1p`` in the compiled kernels);
    below, the series to ``x^6``.
    """
    big = x > SERIES_BELOW
    u = 1.0 + xp.where(big, x, 1.0)
    series = 1.0 + x * (-1.0 / 2 + x * (1.0 / 3 + x * (-1.0 / 4 + x * (1.0 / 5 + x * (-1.0 / 6 + x / 7.0)))))
    return xp.where(big, xp.log(u) / (u - 1.0), series)


def twin_step(xp, state: TwinState, touches_c, params: Params, structure: Structure, edge_mult, chan_mult,
              dt: float, mats: TwinMatrices, sub: int = 1):
    """One step of ``sub * dt`` days of expected dynamics: ``sub`` memory steps of ``dt`` days, one of flows.

    Exposure memory is followed by its first two moments per group, ``dt`` days at a time with the
    step's people held fixed; the step's hazards use the memory's moments averaged over its memory
    steps, and the state carries the moments at the step's end. People who leave a group carry
    memory in proportion to how much it raised their chance to leave (a first-order expansion of
    the exit probability around the group mean, with a scaled-Poisson closure for the third
    moment), in the shares the step's average memory gives, of the memory at its end. The share
    of a group still in its stage at the end of the step averages ``exp(-tau H_i)`` over the
    group's people as if each source's memory were gamma-distributed across them with the group's
    mean and variance (a gamma closure: the Laplace transform, exact for any step length, where a
    second-order expansion overshoots at a week); the exits split among the edges in proportion to
    their hazards at the group mean. This keeps the twin close to the agents when a channel's
    effect on one person is strong (search, store visits) and lets daily scenarios take steps of
    several days (:attr:`~journeysim.model.dynamics.Structure.substeps`).

    Parameters
    ----------
    touches_c : (..., C) daily touches of each channel (from the plan)
    edge_mult, chan_mult : the step's event multipliers
    dt : days of a memory step (the scenario's ``dt``)
    mats : :class:`TwinMatrices` of the structure
    sub : memory steps in this step (``tau = sub * dt`` days)

    Returns
    -------
    state : TwinState
    out : dict of per-step results: ``flow (..., P*E)``, ``new (..., P)``, ``repeat (..., P)``,
        ``referrals (...)``, ``mu (..., R, K)`` (touches per person in the step)
    """
    m = mats
    K = m.K
    X = state.X
    N = X[..., 0]  # (..., R)
    A = X[..., 1:1 + K]
    Q = X[..., 1 + K:]
    tau = dt * sub
    # delivery: a' = d a + q n, n ~ Poisson(mu) per person and memory step
    wom = params.wom_rate * (N @ m.wom_from)  # (...)
    touches = xp.concatenate([touches_c + 0.0 * wom[..., None], wom[..., None] + 0.0 * xp.sum(touches_c, axis=-1, keepdims=True)], axis=-1)
    targeted = N @ m.targeting
    per_weight, q = effectiveness(xp, touches, targeted, params.fhalf, params.cap)  # (..., K)
    mu = m.targeting * (per_weight * dt)[..., None, :]  # (..., R, K)
    d = (params.carryover ** dt)[..., None, :]
    qq = q[..., None, :]
    N_ = N[..., None] + 0.0 * mu[..., :1]  # broadcast over plan/draw batch dimensions
    A_sum = Q_sum = 0.0
    for _ in range(sub):
        Q = d * d * Q + 2.0 * d * qq * mu * A + qq * qq * N_ * (mu + mu * mu)
        A = d * A + qq * mu * N_
        A_sum = A_sum + A
        Q_sum = Q_sum + Q
    A_end, Q_end = A, Q
    A = A_sum / sub  # the step's average moments
    Q = Q_sum / sub
    abar = A / xp.maximum(N_, TINY)
    V = xp.maximum(Q - A * abar, 0.0)  # sum of squared deviations
    # everything at each edge's source
    Ns = N @ m.src.T
    As, Qs, Vs, abars = (_lmul(xp, m.src, Z) for Z in (A, Q, V, abar))  # (..., R_E, K)
    base_eff, B = hazard_terms(xp, params, structure, edge_mult, chan_mult)
    b_rows, B_rows = _rows(xp, base_eff, B, m.P, m.E, K)
    h = b_rows + xp.sum(B_rows * abars, axis=-1)  # (..., R_E) hazard at the group mean
    H = xp.maximum(h @ m.same_src.T, TINY)  # total hazard of the source state
    L = 1.0 - xp.exp(-H * tau)
    r = h / H
    Bstage = _lmul(xp, m.same_src, B_rows)  # (..., R_E, K)
    slope = tau * (1.0 - L) - L / H
    G = (r * slope)[..., None] * Bstage + (L / H)[..., None] * B_rows  # d frac / d a_k at the mean
    # gamma closure of the share that stays: E exp(-tau (b + sum_k Bstage_k a_k)), a_k ~ gamma(mean, var)
    var = Vs / xp.maximum(Ns, TINY)[..., None]
    c = tau * Bstage
    x = xp.where(abars > TINY, c * var / xp.maximum(abars, TINY), 0.0)
    stay = xp.exp(-tau * (b_rows @ m.same_src.T) - xp.sum(c * abars * log1p_ratio(xp, x), axis=-1))
    frac = r * (1.0 - stay)
    flow = Ns * frac  # (..., R_E)
    T = 2.0 * abars * Vs + Vs * Vs / xp.maximum(As, TINY)
    # the shares of the average memory that leave, of the memory at the step's end
    a_out = xp.maximum(frac[..., None] * As + G * Vs, 0.0) * _lmul(xp, m.src, A_end / xp.maximum(A, TINY))
    q_out = xp.maximum(frac[..., None] * Qs + G * T, 0.0) * _lmul(xp, m.src, Q_end / xp.maximum(Q, TINY))
    # no group gives away more memory than it has
    src_T = m.src.T
    a_out = a_out * _lmul(xp, m.src, xp.minimum(1.0, A_end / xp.maximum(_lmul(xp, src_T, a_out), TINY)))
    q_out = q_out * _lmul(xp, m.src, xp.minimum(1.0, Q_end / xp.maximum(_lmul(xp, src_T, q_out), TINY)))
    F = xp.concatenate([flow[..., None], a_out, q_out], axis=-1)  # (..., R_E, 1 + 2K)
    X_new = xp.concatenate([N_, A_end, Q_end], axis=-1) + _lmul(xp, m.move, F)
    out = {
        "flow": flow @ m.edge_out.T,
        "new": flow @ m.new_sel.T,
        "repeat": flow @ m.repeat_sel.T,
        "referrals": wom * tau,
        "mu": mu * sub,
        "touches": _sent(xp, touches_c, per_weight, targeted, params.cap, m.K) * tau,
    }
    return TwinState(X_new), out
