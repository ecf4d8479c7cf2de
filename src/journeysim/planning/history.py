"""The handle planning functions take: posterior draws with the end-of-history state, and running plans from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from journeysim._util.stats import thin

__all__ = ['History', 'prepare', 'planning_inputs', 'run_plans', 'plan_edge_multipliers', 'totals']


@dataclass
class History:
    """Posterior draws and the twin's state at the end of the observed history, one per draw."""

    scenario: Any
    params: Any  # batched Params, leading draw axis
    state: Any  # TwinState, (draw, R, cols)
    draws: np.ndarray  # indices of the posterior draws used (chains stacked)
    weeks: int  # observed weeks
    data: Any

    @property
    def n_draws(self) -> int:
        return int(self.draws.size)

    def subset(self, n: int) -> History:
        """The first ``n`` draws (evenly spread over the posterior already)."""
        if n >= self.n_draws:
            return self
        idx = thin(self.n_draws, n)
        from journeysim.model.dynamics import Params
        from journeysim.twin.state import TwinState

        params = Params(**{k: np.asarray(v)[idx] for k, v in self.params.as_dict().items()})
        return History(self.scenario, params, TwinState(np.asarray(self.state.X)[idx]), self.draws[idx], self.weeks,
                       self.data)


def prepare(scenario, fit, data, *, max_draws: int = 500, allow_unconverged: bool = False) -> History:
    """Run the observed history with the twin for ``max_draws`` posterior draws; keep the end state.

    Refuses a fit that did not converge unless ``allow_unconverged``.
    """
    from journeysim.inference.posterior import posterior_params, require_converged
    from journeysim.twin.run import Twin

    require_converged(fit, allow_unconverged)
    scenario = scenario.with_data(data)
    params, _ = posterior_params(scenario, fit, max_draws=max_draws)
    post = fit.idata.posterior
    n_all = post.sizes["chain"] * post.sizes["draw"]
    n = np.asarray(params.wom_rate).shape[0]
    draws = thin(n_all, n)
    scenario, params = _continue_latent_demand(scenario, params, data.weeks)
    hist = scenario.over(data)
    twin = Twin(hist, params=params, plan=data.plan)
    _, state = twin.run_arrays()
    return History(scenario, params, state, draws, data.weeks, data)


#: Weeks after the history that a latent demand's random walk is drawn for (forecasts, optimisation).
LATENT_WEEKS_AHEAD = 260


def _continue_latent_demand(scenario, params, weeks: int):
    """A latent demand goes on as a random walk after the horizon: its future standard-normal steps,
    one path per posterior draw, drawn once here (from the scenario's seed) so that every plan run
    from this history meets the same demand."""
    d = scenario.structure.demand
    if d is None or d.latent_sd <= 0:
        return scenario, params
    from dataclasses import replace

    steps = int(np.ceil((weeks + LATENT_WEEKS_AHEAD - d.horizon) / d.latent_every)) + 1
    rng = np.random.default_rng([scenario.seed, 0x1A7E])
    dem = np.asarray(params.demand, float)
    z = rng.standard_normal(dem.shape[:-1] + (steps,))
    sc = replace(scenario, structure=replace(scenario.structure, demand=d.with_future(steps)))
    sc = replace(sc, params=replace(sc.params, demand=np.concatenate([np.asarray(sc.params.demand, float),
                                                                       np.zeros(steps)])))
    return sc, replace(params, demand=np.concatenate([dem, z], axis=-1))


def planning_inputs(args: tuple, what: str, n_rest: int, *, allow_unconverged: bool = False):
    """Read a planning function's positional arguments: ``(history, *rest)`` or ``(scenario, fit, data, *rest)``.

    Returns ``(scenario, data, history_of, rest)``: ``history_of(max_draws)`` gives the
    :class:`History` (the one passed, thinned to ``max_draws``, or one prepared from the fit the
    first time it is asked for), so that a caller checks its other inputs before any twin runs.
    """
    if args and isinstance(args[0], History):
        given, rest = args[0], tuple(args[1:])

        def history_of(max_draws: int) -> History:
            return given.subset(max_draws)

        scenario, data = given.scenario, given.data
    elif len(args) >= 3:
        scenario, fit, data = args[:3]
        rest = tuple(args[3:])
        made: dict = {}

        def history_of(max_draws: int) -> History:
            if max_draws not in made:
                made[max_draws] = prepare(scenario, fit, data, max_draws=max_draws,
                                          allow_unconverged=allow_unconverged)
            return made[max_draws]
    else:
        raise TypeError(f"{what}() takes a History (journeysim.prepare(scenario, fit, data)) or "
                        f"scenario, fit, data as its first arguments")
    if len(rest) != n_rest:
        raise TypeError(f"{what}() takes {n_rest} argument(s) after the history, got {len(rest)}")
    return scenario, data, history_of, rest


def run_plans(history: History, spend: np.ndarray, *, tail: int = 0, controls=None) -> tuple[Any, Any]:
    """Twin runs of spend ``(n_plans, weeks, C)`` for every draw, plus ``tail`` weeks with no spend;
    ``controls`` (one per plan) are demand controls the plans set (:func:`plan_edge_multipliers`).

    Returns the :class:`~journeysim.model.output.WeeklyRecord` with batch ``(n_plans, draw)``.
    """
    from journeysim.twin.run import Twin

    spend = np.asarray(spend, float)
    if tail:
        spend = np.concatenate([spend, np.zeros(spend.shape[:-2] + (tail, spend.shape[-1]))], axis=-2)
    em = None
    if controls is not None and any(controls):
        em = plan_edge_multipliers(history, controls, spend.shape[-2])
    twin = Twin(history.scenario, params=history.params, plan=spend[:, None], initial_state=history.state,
                start_week=history.weeks, edge_mult=em)
    return twin.run_arrays()


def plan_edge_multipliers(history: History, controls, weeks: int) -> np.ndarray:
    """Base multipliers ``(n_plans, draw, weeks, P, E)`` of plans that set demand controls (one
    dict of raw weekly values, or ``None``, per plan; controls not set keep their recent level)."""
    from dataclasses import replace

    from journeysim.model.dynamics import edge_multipliers

    st = history.scenario.structure
    out = []
    for c in controls:
        st_p = replace(st, demand=st.demand.extended(c or {}, history.weeks))
        em = edge_multipliers(np, st_p, history.params.demand, np.arange(weeks) + history.weeks)
        out.append(np.broadcast_to(em, (history.n_draws,) + em.shape[-3:]))
    return np.stack(out)


def totals(rec) -> dict[str, np.ndarray]:
    new = rec.purchases_new.sum(axis=(-1, -2))
    rep = rec.purchases_repeat.sum(axis=(-1, -2))
    return {"purchases_new": new, "purchases_repeat": rep, "purchases": new + rep, "new_customers": new,
            "revenue": rec.revenue.sum(axis=(-1, -2)), "referrals": rec.referrals.sum(axis=-1)}
