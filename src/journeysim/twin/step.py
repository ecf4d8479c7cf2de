"""THE equations of the mean-field twin: one step of expected flows between stages."""

from __future__ import annotations

import numpy as np

from journeysim.model.dynamics import (
    TINY,
    Params,
    Structure,
    competing_exit,
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


def twin_step(xp, state: TwinState, touches_c, params: Params, structure: Structure, edge_mult, chan_mult,
              dt: float, mats: TwinMatrices):
    """One step of ``dt`` days of expected dynamics.

    Exposure memory is followed by its first two moments per group. People who leave a group
    carry memory in proportion to how much it raised their chance to leave (a first-order
    expansion of the exit probability around the group mean, with a scaled-Poisson closure for
    the third moment), and the mean exit probability gets its second-order (Jensen) correction:
    this keeps the twin close to the agents when a channel's effect on one person is strong
    (search, store visits).

    Parameters
    ----------
    touches_c : (..., C) daily touches of each channel (from the plan)
    edge_mult, chan_mult : the step's event multipliers
    mats : :class:`TwinMatrices` of the structure

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
    # delivery: a' = d a + q n, n ~ Poisson(mu) per person
    wom = params.wom_rate * (N @ m.wom_from)  # (...)
    touches = xp.concatenate([touches_c + 0.0 * wom[..., None], wom[..., None] + 0.0 * xp.sum(touches_c, axis=-1, keepdims=True)], axis=-1)
    targeted = N @ m.targeting
    per_weight, q = effectiveness(xp, touches, targeted, params.fhalf, params.cap)  # (..., K)
    mu = m.targeting * (per_weight * dt)[..., None, :]  # (..., R, K)
    d = (params.carryover ** dt)[..., None, :]
    qq = q[..., None, :]
    N_ = N[..., None] + 0.0 * mu[..., :1]  # broadcast over plan/draw batch dimensions
    Q = d * d * Q + 2.0 * d * qq * mu * A + qq * qq * N_ * (mu + mu * mu)
    A = d * A + qq * mu * N_
    abar = A / xp.maximum(N_, TINY)
    V = xp.maximum(Q - A * abar, 0.0)  # sum of squared deviations
    # everything at each edge's source
    Ns = N @ m.src.T
    As, Qs, Vs, abars = (_lmul(xp, m.src, Z) for Z in (A, Q, V, abar))  # (..., R_E, K)
    base_eff, B = hazard_terms(xp, params, structure, edge_mult, chan_mult)
    b_rows, B_rows = _rows(xp, base_eff, B, m.P, m.E, K)
    h = b_rows + xp.sum(B_rows * abars, axis=-1)  # (..., R_E) hazard at the group mean
    H = xp.maximum(h @ m.same_src.T, TINY)  # total hazard of the source state
    frac, L = competing_exit(xp, h, H, dt)
    r = h / H
    Bstage = _lmul(xp, m.same_src, B_rows)  # (..., R_E, K)
    slope = dt * (1.0 - L) - L / H
    G = (r * slope)[..., None] * Bstage + (L / H)[..., None] * B_rows  # d frac / d a_k
    # second-order (Jensen) correction of the mean exit probability
    dr = (B_rows - r[..., None] * Bstage) / H[..., None]
    curv = (r * (-dt * dt * (1.0 - L)))[..., None] * Bstage * Bstage + 2.0 * Bstage * dr * slope[..., None]
    var = Vs / xp.maximum(Ns, TINY)[..., None]
    frac = xp.clip(frac + 0.5 * xp.sum(curv * var, axis=-1), 0.0, L)
    flow = Ns * frac  # (..., R_E)
    T = 2.0 * abars * Vs + Vs * Vs / xp.maximum(As, TINY)
    a_out = xp.maximum(frac[..., None] * As + G * Vs, 0.0)
    q_out = xp.maximum(frac[..., None] * Qs + G * T, 0.0)
    # no group gives away more memory than it has
    src_T = m.src.T
    a_out = a_out * _lmul(xp, m.src, xp.minimum(1.0, A / xp.maximum(_lmul(xp, src_T, a_out), TINY)))
    q_out = q_out * _lmul(xp, m.src, xp.minimum(1.0, Q / xp.maximum(_lmul(xp, src_T, q_out), TINY)))
    F = xp.concatenate([flow[..., None], a_out, q_out], axis=-1)  # (..., R_E, 1 + 2K)
    X_new = xp.concatenate([N_, A, Q], axis=-1) + _lmul(xp, m.move, F)
    out = {
        "flow": flow @ m.edge_out.T,
        "new": flow @ m.new_sel.T,
        "repeat": flow @ m.repeat_sel.T,
        "referrals": wom * dt,
        "mu": mu,
        "touches": _sent(xp, touches_c, per_weight, targeted, params.cap, m.K) * dt,
    }
    return TwinState(X_new), out
