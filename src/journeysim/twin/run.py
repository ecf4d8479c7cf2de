"""The mean-field twin: expected flows between stages, deterministic and vectorised.

The twin moves *expected* numbers of people through the same dynamics as the agents
(:mod:`journeysim.model.dynamics`). Its state per persona and stage is the number of people ``N`` and
their total exposure memory ``A`` per source, split by purchase history (``h = 0`` never bought,
``h = 1`` bought before) so that new and repeat purchases are told apart.

Where it approximates the agents:

* **Memory travels at the group mean.** People who leave a stage carry the group's *mean*
  exposure memory; in the agents, those who move are the more exposed ones. When one channel
  pushes two consecutive transitions, the twin under-counts the second push.
* **Steps of several days.** Daily scenarios run two steps a week (3 and 4 days): memory is
  followed day by day inside a step, the flows once per step with the step's average memory, and
  a group's exits average ``1 - exp(-H_i tau)`` over its people as if each source's memory were
  gamma-distributed across them (:func:`journeysim.twin.step.twin_step`).
* **Finite populations.** Word of mouth is fed by the expected, not the realised, recommenders.

``tests/twin/test_twin.py`` measures the agreement on the example scenarios.

Every array may carry leading batch dimensions (posterior draws, plans): the step broadcasts.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from journeysim.model.dynamics import Params, edge_multipliers
from journeysim.model.output import WeeklyRecord, to_dataset
from journeysim.twin.state import TwinMatrices, TwinState, initial_twin_state
from journeysim.twin.step import twin_step

__all__ = ['run_twin', 'Twin', 'COMPILED_MIN_BATCH']


#: With ``compiled=None``, a :class:`Twin` batch of at least this many trajectories (plans x
#: posterior draws) runs compiled; smaller ones, where numpy's per-call overhead is small, with numpy.
COMPILED_MIN_BATCH = 8


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
        Run each trajectory with the compiled step (:mod:`journeysim.twin._kernel.batch`, the batch split
        over the cores) instead of numpy arrays. ``None`` (default): compiled when numba is
        available and the batch has at least :data:`COMPILED_MIN_BATCH` trajectories. The two give
        the same numbers to rounding (``tests/twin/test_twin.py``).
    """

    def __init__(self, scenario, *, params: Params | None = None, plan=None, initial_state: TwinState | None = None,
                 start_week: int = 0, compiled: bool | None = None, edge_mult=None):
        self.edge_mult = edge_mult  # (..., weeks, P, E) base multipliers, instead of the scenario's (plan controls)
        self.scenario = scenario
        self.params = params if params is not None else scenario.params
        self.plan = plan
        self.initial_state = initial_state
        self.start_week = start_week
        self.compiled = compiled

    def run_arrays(self) -> tuple[WeeklyRecord, TwinState]:
        """Weekly records as arrays (batch dims first), and the final state."""
        from threadpoolctl import threadpool_limits

        from journeysim._util.numba import HAVE_NUMBA

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
        from journeysim.twin._kernel.batch import run_weekly

        st = self.scenario.structure
        B = int(np.prod(bshape))
        weeks = spend.shape[-2]
        P, S, E, C = len(st.personas), len(st.stages), len(st.edges), len(st.channels)
        wide = params.broadcast(bshape)
        fparams = Params(**{k: v.reshape((B,) + v.shape[len(bshape):]) for k, v in wide.as_dict().items()})
        X = np.asarray(state.X, float)
        X0 = np.broadcast_to(X, bshape + X.shape[-2:]).reshape((B,) + X.shape[-2:])
        touches = np.broadcast_to(st.touches(spend), bshape + (weeks, C)).reshape(B, weeks, C)
        if self.edge_mult is not None:
            em = np.broadcast_to(self.edge_mult, bshape + self.edge_mult.shape[-3:]).reshape((B,) + self.edge_mult.shape[-3:])
        else:
            em = edge_multipliers(np, st, fparams.demand, np.arange(weeks) + self.start_week)  # ([B,] W, P, E)
        cm = np.stack([st.event_multipliers(w + self.start_week)[1] for w in range(weeks)])
        X_end, out = run_weekly(st, X0, touches, em, cm, fparams, st.dt, st.substeps)
        sums = {"flow": out["flow"].reshape(bshape + (weeks, P, E)),
                "new": out["new"].reshape(bshape + (weeks, P)),
                "repeat": out["repeat"].reshape(bshape + (weeks, P)),
                "referrals": out["referrals"].reshape(bshape + (weeks,)),
                "impressions": out["impressions"].reshape(bshape + (weeks, C)),
                "stage_size": out["N_end"].reshape(bshape + (weeks, 2, P, S)).sum(axis=-3),
                "reach": out["reach"].reshape(bshape + (weeks, C))}
        return record_weeks(st, bshape, spend, sums), TwinState(X_end.reshape(bshape + X.shape[-2:]))

    def _run_arrays(self, spend, params, state) -> tuple[WeeklyRecord, TwinState]:
        st = self.scenario.structure
        weeks = spend.shape[-2]
        dt = st.dt
        mats = TwinMatrices.build(st)
        P, S, E = len(st.personas), len(st.stages), len(st.edges)
        sums = None
        for w in range(weeks):
            touches_c = st.touches(spend[..., w, :])
            cm = st.event_multipliers(w + self.start_week)[1]
            em = (self.edge_mult[..., w, :, :] if self.edge_mult is not None
                  else edge_multipliers(np, st, params.demand, [w + self.start_week])[..., 0, :, :])
            mu_sum = 0.0
            for sub in st.substeps:
                state, out = twin_step(np, state, touches_c, params, st, em, cm, dt, mats, sub)
                if sums is None:
                    batch = out["flow"].shape[:-1]
                    C = out["touches"].shape[-1]
                    sums = {"flow": np.zeros(batch + (weeks, P, E)), "new": np.zeros(batch + (weeks, P)),
                            "repeat": np.zeros(batch + (weeks, P)), "referrals": np.zeros(batch + (weeks,)),
                            "impressions": np.zeros(batch + (weeks, C)),
                            "stage_size": np.zeros(batch + (weeks, P, S)), "reach": np.zeros(batch + (weeks, C))}
                sums["flow"][..., w, :, :] += out["flow"].reshape(batch + (P, E))
                sums["new"][..., w, :] += out["new"]
                sums["repeat"][..., w, :] += out["repeat"]
                sums["referrals"][..., w] += out["referrals"]
                sums["impressions"][..., w, :] += out["touches"]
                mu_sum = mu_sum + out["mu"]
            sums["stage_size"][..., w, :, :] = state.people(P, S)
            reach = (state.X[..., 0][..., None] * (1.0 - np.exp(-mu_sum))).sum(axis=-2)  # (..., K)
            sums["reach"][..., w, :] = reach[..., :-1]
        return record_weeks(st, batch, spend, sums), state

    def run(self, batch_dims: tuple[str, ...] = (), batch_coords: dict | None = None) -> xr.Dataset:
        """Weekly dataset with the same variables as :func:`journeysim.simulate`."""
        rec, state = self.run_arrays()
        self.state_ = state
        plan = self.plan if self.plan is not None else self.scenario.plan
        return to_dataset(rec, self.scenario, engine="twin", plan_name=getattr(plan, "name", "plan"),
                          start_day=self.start_week * 7, batch_dims=batch_dims, batch_coords=batch_coords)


def record_weeks(structure, batch: tuple[int, ...], spend, sums: dict) -> WeeklyRecord:
    """THE weekly record of a twin run, the same for the numpy and the compiled twin.

    ``sums`` holds each week's totals over its steps: ``flow (..., W, P, E)``, ``new`` and
    ``repeat (..., W, P)``, ``referrals (..., W)``, ``impressions`` and ``reach (..., W, C)``, and
    ``stage_size (..., W, P, S)``, the people per stage at the end of each week. Revenue and the
    spend actually run are derived here, once.
    """
    weeks = spend.shape[-2]
    rec = WeeklyRecord(weeks, structure, batch)
    rec.flow[...] = sums["flow"]
    rec.purchases_new[...] = sums["new"]
    rec.purchases_repeat[...] = sums["repeat"]
    rec.referrals[...] = sums["referrals"]
    rec.impressions[...] = sums["impressions"]
    rec.stage_size[...] = sums["stage_size"]
    rec.reach[...] = sums["reach"]
    rec.revenue[...] = rec.purchases_new * structure.value + rec.purchases_repeat * structure.value
    rec.spend[...] = np.broadcast_to(spend, batch + (weeks, spend.shape[-1]))
    return rec


def run_twin(scenario, *, params: Params | None = None, plan=None, **kw) -> xr.Dataset:
    """Run the twin and return its weekly dataset (see :class:`Twin`)."""
    return Twin(scenario, params=params, plan=plan, **kw).run()
