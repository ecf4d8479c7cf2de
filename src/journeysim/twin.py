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
    delivery,
    edge_hazards,
    exit_fractions,
    hazard_terms,
    wom_touches,
)
from journeysim.output import WeeklyRecord, to_dataset

__all__ = ["TwinState", "twin_step", "initial_twin_state", "run_twin", "Twin"]


@dataclass(frozen=True)
class TwinState:
    """Expected stocks, split by purchase history ``h`` (0 never bought, 1 bought before).

    ``N (..., 2, P, S)`` people; ``A (..., 2, K, P, S)`` their total exposure memory per source;
    ``Q (..., 2, K, P, S)`` the total of its square (for the spread of memory within a group).
    """

    N: Any
    A: Any
    Q: Any


def initial_twin_state(params: Params, structure: Structure) -> TwinState:
    """People by persona and stage from the initial shares; memory empty."""
    st = structure
    init = np.asarray(params.initial, float)  # (..., P, S)
    people = st.population * st.persona_share[:, None] * init
    cust = st.customer_stages.astype(float)
    N = np.stack([people * (1 - cust), people * cust], axis=-3)  # (..., 2, P, S)
    A = np.zeros(N.shape[:-3] + (2, st.n_sources) + N.shape[-2:])
    return TwinState(N, A, A.copy())


def twin_step(xp, state: TwinState, touches_c, params: Params, structure: Structure, edge_mult, chan_mult,
              dt: float):
    """One step of ``dt`` days of expected dynamics.

    Exposure memory is followed by its first two moments per group. People who leave a group
    carry memory in proportion to how much it raised their chance to leave (a first-order
    expansion of the exit probability around the group mean, with a scaled-Poisson closure for
    the third moment): this is what keeps the twin close to the agents when a channel's effect on
    one person is strong (search, store visits).

    Parameters
    ----------
    touches_c : (..., C) daily touches of each channel (from the plan)
    edge_mult, chan_mult : the step's event multipliers

    Returns
    -------
    state : TwinState
    out : dict of per-step flows: ``flow (..., P, E)``, ``new (..., P)``, ``repeat (..., P)``,
        ``referrals (...)``, ``lam (..., K, P, S)`` (touches per person per day)
    """
    st = structure
    N, A, Q = state.N, state.A, state.Q
    Ntot = N[..., 0, :, :] + N[..., 1, :, :]  # (..., P, S)
    wom = wom_touches(xp, Ntot, st, params.wom_rate)  # (...)
    wom_k = wom[..., None] + 0.0 * touches_c[..., :1]
    touches = xp.concatenate([touches_c + 0.0 * wom[..., None], wom_k], axis=-1)  # (..., K)
    lam, q = delivery(xp, touches, Ntot, st, params.fhalf)
    # delivery: a' = d a + q n with n ~ Poisson(mu) per person
    d = (params.carryover ** dt)[..., None, :, None, None]  # (..., 1, K, 1, 1)
    qq = q[..., None, :, None, None]
    mu = xp.expand_dims(lam * dt, -4)  # (..., 1, K, P, S)
    N_ = xp.expand_dims(N, -3)  # (..., 2, 1, P, S)
    Q = d * d * Q + 2.0 * d * qq * mu * A + qq * qq * N_ * (mu + mu * mu)
    A = d * A + qq * mu * N_
    Nsafe = xp.maximum(N_, TINY)
    abar = A / Nsafe
    V = xp.maximum(Q - A * abar, 0.0)  # sum of squared deviations
    src_m, dst_m = st.src_matrix, st.dst_matrix
    src_T = src_m.T
    A_src, Q_src, V_src = A @ src_T, Q @ src_T, V @ src_T  # (..., 2, K, P, E)
    abar_src = abar @ src_T
    # hazards at the group mean and the exit probabilities
    base_eff, B = hazard_terms(xp, params, st, edge_mult, chan_mult)
    h = edge_hazards(xp, xp.expand_dims(base_eff, -3), xp.expand_dims(B, -4), abar_src)  # (..., 2, P, E)
    H = xp.maximum((h @ src_m) @ src_T, TINY)
    L = 1.0 - xp.exp(-H * dt)
    frac = L * h / H  # == exit_fractions(...)
    # d frac_e / d a_k at the group mean
    Bstage = (B @ src_m) @ src_T  # (..., K, P, E)
    Bstage_ = xp.expand_dims(Bstage, -4)
    Bstage_2 = Bstage_ * Bstage_
    G = (xp.expand_dims(h / H * (dt * (1.0 - L) - L / H), -3) * xp.expand_dims(Bstage, -4)
         + xp.expand_dims(L / H, -3) * xp.expand_dims(B, -4))  # (..., 2, K, P, E)
    # second-order (Jensen) correction of the mean exit probability: 0.5 sum_k d2frac/da_k2 var_k
    r = h / H
    dr = (xp.expand_dims(B, -4) - xp.expand_dims(r, -3) * xp.expand_dims(Bstage, -4)) / xp.expand_dims(H, -3)
    L2 = -dt * dt * (1.0 - L)
    curv = (xp.expand_dims(r * L2, -3) * Bstage_2 + 2.0 * Bstage_ * dr * xp.expand_dims(dt * (1.0 - L) - L / H, -3))
    var_src = V_src / xp.maximum(xp.expand_dims(N @ src_T, -3), TINY)
    frac = xp.clip(frac + 0.5 * xp.sum(curv * var_src, axis=-3), 0.0, L)
    flow = (N @ src_T) * frac  # (..., 2, P, E)
    frac_ = xp.expand_dims(frac, -3)
    T_src = 2.0 * abar_src * V_src + V_src * V_src / xp.maximum(A_src, TINY)
    a_out = xp.maximum(frac_ * A_src + G * V_src, 0.0)
    q_out = xp.maximum(frac_ * Q_src + G * T_src, 0.0)
    # no group gives away more memory than it has
    a_scale = xp.minimum(1.0, A / xp.maximum(a_out @ src_m, TINY)) @ src_T
    q_scale = xp.minimum(1.0, Q / xp.maximum(q_out @ src_m, TINY)) @ src_T
    a_out = a_out * a_scale
    q_out = q_out * q_scale
    buy = st.purchase_edges.astype(float)
    keep = 1.0 - buy

    def route(stock, f):
        """Stocks ``(..., 2, ...)`` after flows ``f``: purchases promote history 0 to 1."""
        out = f @ src_m
        stay = (f * keep) @ dst_m
        promote = (f * buy) @ dst_m
        s0 = stock[..., 0, :, :] if stock.ndim == f.ndim and f.shape[-2:] != () and stock.shape[-3] == 2 else None
        del s0
        return out, stay, promote

    def update(stock, f, hax):
        out, stay, promote = route(stock, f)
        take = lambda x, i: x[(Ellipsis, i) + (slice(None),) * (hax - 1)]  # noqa: E731
        s0 = take(stock, 0) - take(out, 0) + take(stay, 0)
        s1 = take(stock, 1) - take(out, 1) + take(stay, 1) + take(promote, 0) + take(promote, 1)
        return xp.stack([s0, s1], axis=-hax)

    new_state = TwinState(update(N, flow, 3), update(A, a_out, 4), update(Q, q_out, 4))
    out = {
        "flow": flow[..., 0, :, :] + flow[..., 1, :, :],
        "new": (flow[..., 0, :, :] * buy).sum(axis=-1),
        "repeat": (flow[..., 1, :, :] * buy).sum(axis=-1),
        "referrals": wom * dt,
        "lam": lam,
        "touches": touches_c * dt,
    }
    return new_state, out


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
    """

    def __init__(self, scenario, *, params: Params | None = None, plan=None, initial_state: TwinState | None = None,
                 start_week: int = 0):
        self.scenario = scenario
        self.params = params if params is not None else scenario.params
        self.plan = plan
        self.initial_state = initial_state
        self.start_week = start_week

    def run_arrays(self) -> tuple[WeeklyRecord, TwinState]:
        """Weekly records as arrays (batch dims first), and the final state."""
        sc = self.scenario
        st = sc.structure
        plan = self.plan if self.plan is not None else sc.plan
        spend = plan.aligned(st.channels) if hasattr(plan, "aligned") else np.asarray(plan, float)
        weeks = spend.shape[-2]
        state = self.initial_state if self.initial_state is not None else initial_twin_state(self.params, st)
        p = self.params
        params = Params(*(np.asarray(v, float) for v in p.as_dict().values()))
        dt = st.dt
        steps_per_week = 7 // dt
        batch = None
        rec = None
        for w in range(weeks):
            touches_c = st.touches(spend[..., w, :])
            em, cm = st.event_multipliers(w + self.start_week)
            lam_sum = 0.0
            for _ in range(steps_per_week):
                state, out = twin_step(np, state, touches_c, params, st, em, cm, dt)
                if rec is None:
                    batch = out["flow"].shape[:-2]
                    rec = WeeklyRecord(weeks, st, batch)
                rec.flow[..., w, :, :] += out["flow"]
                rec.purchases_new[..., w, :] += out["new"]
                rec.purchases_repeat[..., w, :] += out["repeat"]
                rec.referrals[..., w] += out["referrals"]
                rec.impressions[..., w, :] += out["touches"]
                lam_sum = lam_sum + out["lam"] * dt
            Ntot = state.N.sum(axis=-3)
            rec.stage_size[..., w, :, :] = Ntot
            rec.revenue[..., w, :] = rec.purchases_new[..., w, :] * st.value + rec.purchases_repeat[..., w, :] * st.value
            reach = (Ntot[..., None, :, :] * (1.0 - np.exp(-lam_sum))).sum(axis=(-2, -1))  # (..., K)
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
