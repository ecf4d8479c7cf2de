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
    """``N (..., 2, P, S)`` people and ``A (..., 2, K, P, S)`` total exposure memory."""

    N: Any
    A: Any


def initial_twin_state(params: Params, structure: Structure) -> TwinState:
    """People by persona and stage from the initial shares; memory empty."""
    st = structure
    init = np.asarray(params.initial, float)  # (..., P, S)
    people = st.population * st.persona_share[:, None] * init
    cust = st.customer_stages.astype(float)
    N = np.stack([people * (1 - cust), people * cust], axis=-3)  # (..., 2, P, S)
    A = np.zeros(N.shape[:-3] + (2, st.n_sources) + N.shape[-2:])
    return TwinState(N, A)


def twin_step(xp, state: TwinState, touches_c, params: Params, structure: Structure, edge_mult, chan_mult,
              dt: float):
    """One step of ``dt`` days of expected dynamics.

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
    N, A = state.N, state.A
    Ntot = N[..., 0, :, :] + N[..., 1, :, :]  # (..., P, S)
    wom = wom_touches(xp, Ntot, st, params.wom_rate)  # (...)
    touches = xp.concatenate([touches_c + 0.0 * wom[..., None], wom[..., None]], axis=-1)  # (..., K)
    lam, q = delivery(xp, touches, Ntot, st, params.fhalf)
    decay = params.carryover ** dt  # (..., K)
    gain = lam * (q * dt)[..., None, None]  # (..., K, P, S)
    N_ = xp.expand_dims(N, -3)  # (..., 2, 1, P, S)
    A = decay[..., None, :, None, None] * A + N_ * xp.expand_dims(gain, -4)
    abar = A / xp.maximum(N_, TINY)
    src_T = st.src_matrix.T
    abar_src = abar @ src_T  # (..., 2, K, P, E)
    base_eff, B = hazard_terms(xp, params, st, edge_mult, chan_mult)
    h = edge_hazards(xp, xp.expand_dims(base_eff, -3), xp.expand_dims(B, -4), abar_src)  # (..., 2, P, E)
    frac = exit_fractions(xp, h, st, dt)
    flow = (N @ src_T) * frac  # (..., 2, P, E)
    buy = st.purchase_edges.astype(float)
    keep = 1.0 - buy
    src_m, dst_m = st.src_matrix, st.dst_matrix

    # people
    out_n = flow @ src_m
    stay_n = (flow * keep) @ dst_m
    buy_n = (flow * buy) @ dst_m
    N0 = N[..., 0, :, :] - out_n[..., 0, :, :] + stay_n[..., 0, :, :]
    N1 = N[..., 1, :, :] - out_n[..., 1, :, :] + stay_n[..., 1, :, :] + buy_n[..., 0, :, :] + buy_n[..., 1, :, :]
    # memory travels with the flows at the group mean
    aflow = abar_src * xp.expand_dims(flow, -3)  # (..., 2, K, P, E)
    out_a = aflow @ src_m
    stay_a = (aflow * keep) @ dst_m
    buy_a = (aflow * buy) @ dst_m
    A0 = A[..., 0, :, :, :] - out_a[..., 0, :, :, :] + stay_a[..., 0, :, :, :]
    A1 = A[..., 1, :, :, :] - out_a[..., 1, :, :, :] + stay_a[..., 1, :, :, :] + buy_a[..., 0, :, :, :] + buy_a[..., 1, :, :, :]
    new_state = TwinState(xp.stack([N0, N1], axis=-3), xp.stack([A0, A1], axis=-4))
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
