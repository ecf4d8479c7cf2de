"""The mean-field twin: expected flows between stages, deterministic and vectorised.

The twin moves *expected* numbers of people through the same dynamics as the agents
(:mod:`journeysim.dynamics`). Its state per persona and stage is the number of people ``N`` and
their total exposure memory ``A`` per source, split by purchase history (``h = 0`` never bought,
``h = 1`` bought before) so that new and repeat purchases are told apart.

Where it approximates the agents:

* **Memory travels at the group mean.** People who leave a stage carry the group's *mean*
  exposure memory; in the agents, those who move are the more exposed ones. When one channel
  pushes two consecutive transitions, the twin under-counts the second push.
* **Jensen.** A group leaves at ``1 - exp(-H dt)`` of its mean hazard; agents average the
  non-linear ``1 - exp(-H_i dt)`` over their own hazards. Negligible for daily steps.
* **Finite populations.** Word of mouth is fed by the expected, not the realised, recommenders.

``tests/test_twin.py`` measures the agreement on the example scenarios.

Every array may carry leading batch dimensions (posterior draws, plans): the step broadcasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from journeysim.dynamics import (
    TINY,
    Params,
    Structure,
    competing_exit,
    effectiveness,
    hazard_terms,
)
from journeysim.output import WeeklyRecord, to_dataset

__all__ = ["TwinState", "TwinMatrices", "twin_step", "initial_twin_state", "run_twin", "Twin", "COMPILED_MIN_BATCH"]

#: With ``compiled=None``, a :class:`Twin` batch of at least this many trajectories (plans x
#: posterior draws) runs compiled; smaller ones, where numpy's per-call overhead is small, with numpy.
COMPILED_MIN_BATCH = 8


@dataclass(frozen=True)
class TwinMatrices:
    """Constant 0/1 matrices that let one step work on 2-D arrays (few, larger operations).

    State rows ``r = (h, p, s)`` (history, persona, stage), ``R = 2 P S``; edge rows
    ``(h, p, e)``, ``R_E = 2 P E``. State columns: ``N``, then ``A`` per source, then ``Q`` per source.
    """

    P: int
    S: int
    E: int
    K: int
    src: np.ndarray  # (R_E, R) edge row -> its source state row
    same_src: np.ndarray  # (R_E, R_E) edges sharing a source state
    move: np.ndarray  # (R, R_E) destination (purchases promote h=0 to h=1) minus source
    targeting: np.ndarray  # (R, K)
    wom_from: np.ndarray  # (R,)
    edge_out: np.ndarray  # (P*E, R_E) sum over history
    new_sel: np.ndarray  # (P, R_E) purchases by people who never bought
    repeat_sel: np.ndarray  # (P, R_E)
    stage_out: np.ndarray  # (P*S, R) sum over history

    @classmethod
    def build(cls, st: Structure) -> "TwinMatrices":
        P, S, E, K = len(st.personas), len(st.stages), len(st.edges), st.n_sources
        R, RE = 2 * P * S, 2 * P * E
        src = np.zeros((RE, R))
        dst = np.zeros((R, RE))
        buy = st.purchase_edges
        new_sel = np.zeros((P, RE))
        repeat_sel = np.zeros((P, RE))
        edge_out = np.zeros((P * E, RE))
        for h in range(2):
            for p in range(P):
                for e in range(E):
                    re = (h * P + p) * E + e
                    src[re, (h * P + p) * S + st.src[e]] = 1.0
                    h2 = 1 if buy[e] else h
                    dst[(h2 * P + p) * S + st.dst[e], re] = 1.0
                    edge_out[p * E + e, re] = 1.0
                    if buy[e]:
                        (new_sel if h == 0 else repeat_sel)[p, re] = 1.0
        targeting = np.tile(st.targeting.reshape(K, P * S).T, (2, 1))
        wom_from = np.tile(np.tile(st.wom_from, P), 2)
        stage_out = np.tile(np.eye(P * S), (1, 2))
        return cls(P, S, E, K, src, src @ src.T, dst - src.T, targeting, wom_from, edge_out, new_sel, repeat_sel,
                   stage_out)


@dataclass(frozen=True)
class TwinState:
    """Expected stocks ``X (..., R, 1 + 2K)``: per state row ``(h, p, s)`` (``h = 0`` never bought,
    ``h = 1`` bought before) the people ``N``, their total exposure memory ``A`` per source and
    the total of its square ``Q`` per source (the spread of memory within a group)."""

    X: Any

    def people(self, P: int, S: int) -> np.ndarray:
        """People per persona and stage, ``(..., P, S)`` (numpy states only)."""
        X = np.asarray(self.X)
        N = X[..., 0]
        return N.reshape(N.shape[:-1] + (2, P, S)).sum(axis=-3)


def initial_twin_state(params: Params, structure: Structure) -> TwinState:
    """People by persona and stage from the initial shares; memory empty."""
    st = structure
    init = np.asarray(params.initial, float)  # (..., P, S)
    people = st.population * st.persona_share[:, None] * init
    cust = st.customer_stages.astype(float)
    N = np.concatenate([(people * (1 - cust)).reshape(people.shape[:-2] + (-1,)),
                        (people * cust).reshape(people.shape[:-2] + (-1,))], axis=-1)  # (..., R)
    X = np.zeros(N.shape + (1 + 2 * st.n_sources,))
    X[..., 0] = N
    return TwinState(X)


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
    per_weight, q = effectiveness(xp, touches, N @ m.targeting, params.fhalf)  # (..., K)
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
        "touches": touches_c * dt,
    }
    return TwinState(X_new), out


class Twin:
    """Run the mean-field twin of a scenario (``run`` returns the same Dataset layout as the agents).

    Parameters
    ----------
    scenario
        The scenario.
    params
        Parameters; arrays may have a leading ``draw`` dimension.
    plan
        A :class:`~journeysim.Plan`, or spend ``(..., weeks, C)`` with leading plan dimensions.
    initial_state
        Continue from a :class:`TwinState` (e.g. the end of a calibrated history).
    start_week
        Week index of the first simulated week (selects scheduled events).
    compiled
        Run each trajectory with the compiled step (:mod:`journeysim._twin_batch`, the batch split
        over the cores) instead of numpy arrays. ``None`` (default): compiled when numba is
        available and the batch has at least :data:`COMPILED_MIN_BATCH` trajectories. The two give
        the same numbers to rounding (``tests/test_twin.py``).
    """

    def __init__(self, scenario, *, params: Params | None = None, plan=None, initial_state: TwinState | None = None,
                 start_week: int = 0, compiled: bool | None = None):
        self.scenario = scenario
        self.params = params if params is not None else scenario.params
        self.plan = plan
        self.initial_state = initial_state
        self.start_week = start_week
        self.compiled = compiled

    def run_arrays(self) -> tuple[WeeklyRecord, TwinState]:
        """Weekly records as arrays (batch dims first), and the final state."""
        from threadpoolctl import threadpool_limits

        from journeysim._twin_kernel import HAVE_NUMBA

        sc = self.scenario
        plan = self.plan if self.plan is not None else sc.plan
        spend = plan.aligned(sc.structure.channels) if hasattr(plan, "aligned") else np.asarray(plan, float)
        params = Params(*(np.asarray(v, float) for v in self.params.as_dict().values()))
        state = self.initial_state if self.initial_state is not None else initial_twin_state(params, sc.structure)
        bshape = np.broadcast_shapes(spend.shape[:-2], params.batch_shape(), np.shape(state.X)[:-2])
        compiled = self.compiled if self.compiled is not None else int(np.prod(bshape)) >= COMPILED_MIN_BATCH
        if compiled and HAVE_NUMBA:
            return self._run_compiled(spend, params, state, bshape)
        # the step's matrix products are small: one BLAS thread is several times faster than many
        with threadpool_limits(limits=1, user_api="blas"):
            return self._run_arrays(spend, params, state)

    def _run_compiled(self, spend, params, state, bshape) -> tuple[WeeklyRecord, TwinState]:
        from journeysim._twin_batch import run_weekly

        st = self.scenario.structure
        B = int(np.prod(bshape))
        weeks = spend.shape[-2]
        P, S, E, C = len(st.personas), len(st.stages), len(st.edges), len(st.channels)
        wide = params.broadcast(bshape)
        fparams = Params(**{k: v.reshape((B,) + v.shape[len(bshape):]) for k, v in wide.as_dict().items()})
        X = np.asarray(state.X, float)
        X0 = np.broadcast_to(X, bshape + X.shape[-2:]).reshape((B,) + X.shape[-2:])
        touches = np.broadcast_to(st.touches(spend), bshape + (weeks, C)).reshape(B, weeks, C)
        em = np.stack([st.event_multipliers(w + self.start_week)[0] for w in range(weeks)])
        cm = np.stack([st.event_multipliers(w + self.start_week)[1] for w in range(weeks)])
        X_end, out = run_weekly(st, X0, touches, em, cm, fparams, st.dt, 7 // st.dt)
        rec = WeeklyRecord(weeks, st, bshape)
        rec.flow[...] = out["flow"].reshape(bshape + (weeks, P, E))
        rec.purchases_new[...] = out["new"].reshape(bshape + (weeks, P))
        rec.purchases_repeat[...] = out["repeat"].reshape(bshape + (weeks, P))
        rec.referrals[...] = out["referrals"].reshape(bshape + (weeks,))
        rec.impressions[...] = out["impressions"].reshape(bshape + (weeks, C))
        rec.stage_size[...] = out["N_end"].reshape(bshape + (weeks, 2, P, S)).sum(axis=-3)
        rec.revenue[...] = rec.purchases_new * st.value + rec.purchases_repeat * st.value
        rec.reach[...] = out["reach"].reshape(bshape + (weeks, C))
        rec.spend[...] = np.broadcast_to(spend, bshape + (weeks, C))
        return rec, TwinState(X_end.reshape(bshape + X.shape[-2:]))

    def _run_arrays(self, spend, params, state) -> tuple[WeeklyRecord, TwinState]:
        st = self.scenario.structure
        weeks = spend.shape[-2]
        dt = st.dt
        steps_per_week = 7 // dt
        mats = TwinMatrices.build(st)
        P, S, E = len(st.personas), len(st.stages), len(st.edges)
        batch = None
        rec = None
        for w in range(weeks):
            touches_c = st.touches(spend[..., w, :])
            em, cm = st.event_multipliers(w + self.start_week)
            mu_sum = 0.0
            for _ in range(steps_per_week):
                state, out = twin_step(np, state, touches_c, params, st, em, cm, dt, mats)
                if rec is None:
                    batch = out["flow"].shape[:-1]
                    rec = WeeklyRecord(weeks, st, batch)
                rec.flow[..., w, :, :] += out["flow"].reshape(batch + (P, E))
                rec.purchases_new[..., w, :] += out["new"]
                rec.purchases_repeat[..., w, :] += out["repeat"]
                rec.referrals[..., w] += out["referrals"]
                rec.impressions[..., w, :] += out["touches"]
                mu_sum = mu_sum + out["mu"]
            Ntot = state.people(P, S)
            rec.stage_size[..., w, :, :] = Ntot
            rec.revenue[..., w, :] = rec.purchases_new[..., w, :] * st.value + rec.purchases_repeat[..., w, :] * st.value
            reach = (state.X[..., 0][..., None] * (1.0 - np.exp(-mu_sum))).sum(axis=-2)  # (..., K)
            rec.reach[..., w, :] = reach[..., :-1]
            rec.spend[..., w, :] = np.broadcast_to(spend[..., w, :], rec.spend[..., w, :].shape)
        return rec, state

    def run(self, batch_dims: tuple[str, ...] = (), batch_coords: dict | None = None) -> xr.Dataset:
        """Weekly dataset with the same variables as :func:`journeysim.simulate`."""
        rec, state = self.run_arrays()
        self.state_ = state
        plan = self.plan if self.plan is not None else self.scenario.plan
        return to_dataset(rec, self.scenario, engine="twin", plan_name=getattr(plan, "name", "plan"),
                          start_day=self.start_week * 7, batch_dims=batch_dims, batch_coords=batch_coords)


def run_twin(scenario, *, params: Params | None = None, plan=None, **kw) -> xr.Dataset:
    """Run the twin and return its weekly dataset (see :class:`Twin`)."""
    return Twin(scenario, params=params, plan=plan, **kw).run()
