"""Forecast media plans from a calibrated history, and compare them.

The calibrated history is run once per posterior draw with the twin (:class:`History`); every plan
then continues from the same end-of-history state with the same draws, over the horizon plus a
carry-over tail with no spend. Plans therefore share all their randomness (common random numbers):
a plan identical to the baseline differs from it by exactly zero.

Headline metrics per plan and draw (``forecast(...)["metrics"]``):

``purchases``, ``purchases_new``, ``purchases_repeat``, ``new_customers``, ``revenue``, ``referrals``
    totals over horizon and tail;
``spend``
    total spend over the horizon;
``media_revenue``, ``media_new_customers``
    the part due to media: the plan minus a no-media counterfactual of the same draw;
``roas``, ``cpa``
    ``media_revenue / spend`` and ``spend / media_new_customers``;
``mroas`` (per channel)
    revenue from one more unit of spend in the channel (finite difference, +1% of its spend).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from journeysim.engine.state import agent_initial_state
from journeysim.errors import InputError
from journeysim.model.plan import Plan, check_plan
from journeysim.planning.history import (
    History,
    planning_inputs,
    run_plans,
    totals,
)

__all__ = ['forecast']


#: Relative spend step of the marginal-ROAS finite difference.
MARGINAL_STEP = 0.01


def forecast(history, *args, horizon: int = 26, tail: int = 8, max_draws: int = 500,
             marginal: bool = True, marginal_draws: int = 100, engine: str = "twin", agents: int | None = None,
             agent_draws: int = 20, seed: int | None = None, executor: Any = None,
             allow_unconverged: bool = False) -> xr.Dataset:
    """Forecast each plan from the end of the observed history, per posterior draw.

    Called as ``forecast(history, plans)`` with a :class:`~journeysim.planning.history.History` from
    :func:`~journeysim.planning.history.prepare` (reused across calls), or as
    ``forecast(scenario, fit, data, plans)``, which prepares the history itself.

    Parameters
    ----------
    history
        The :class:`~journeysim.planning.history.History` (or the scenario, then the
        :class:`~journeysim.inference.posterior.Fit` and the observed data it was fitted on).
    plans
        Plans (:class:`Plan`, plan file paths, mappings, or ``"baseline"``); the baseline (average
        spend of the last 13 observed weeks) is always included, first, as ``baseline``.
    horizon, tail
        Weeks of the plans, and weeks without spend afterwards to collect carried-over effects.
    max_draws
        Posterior draws used (evenly thinned).
    marginal, marginal_draws
        Compute marginal ROAS per channel on this many draws.
    engine
        ``twin`` (default) or ``agents`` (``agent_draws`` draws, ``agents`` agents, common random
        numbers across plans; run on ``executor``).

    Returns
    -------
    xarray.Dataset
        ``metrics`` variables with dims ``(plan, draw)`` (``mroas``: ``(plan, draw, channel)``), and
        weekly series ``purchases``, ``new_customers``, ``revenue``, ``referrals``
        ``(plan, draw, time)``, ``stage_size (plan, draw, time, stage)``, ``spend (plan, time, channel)``.
    """
    from journeysim.io.planfile import baseline_plan, load_plan

    scenario, data, history_of, (plans,) = planning_inputs((history, *args), "forecast", 1,
                                                           allow_unconverged=allow_unconverged)
    if horizon < 1:
        raise InputError(f"the horizon must be at least one week, got {horizon}", "horizon")
    if tail < 0:
        raise InputError(f"the tail must be >= 0 weeks, got {tail}", "tail")
    if engine not in ("twin", "agents"):
        raise InputError(f"unknown engine '{engine}'; use twin or agents", "engine")
    base = baseline_plan(scenario, data, horizon)
    resolved = [base]
    for p in plans if isinstance(plans, (list, tuple)) else [plans]:
        q = load_plan(p, scenario, baseline=base, horizon=horizon)
        if q.name == "baseline" and not (p is None or p == "baseline"):
            raise InputError("'baseline' is the name of the reference plan; give this plan another name", str(p))
        if q.name != "baseline":
            resolved.append(q)
    names = [p.name for p in resolved]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InputError(f"two plans are named '{sorted(dup)[0]}'; plan names must differ", "plans")
    checked = [check_plan(p, scenario.structure, horizon, f"plan '{p.name}'") for p in resolved]
    spend = np.stack([c.spend[:horizon] for c in checked])  # (n_plans, H, C)
    controls = [c.controls for c in checked]
    history = history_of(max_draws)
    if engine == "agents":
        history = history.subset(agent_draws)
        if any(controls):
            raise InputError("plans that set demand controls are forecast with the twin (engine: twin)", "engine")
        return _forecast_agents(history, resolved, spend, tail=tail, agents=agents, seed=seed, executor=executor)
    return _forecast_twin(history, resolved, spend, tail=tail, marginal=marginal, marginal_draws=marginal_draws,
                          controls=controls)


def _forecast_twin(history: History, plans: list[Plan], spend: np.ndarray, *, tail: int, marginal: bool,
                   marginal_draws: int, controls=None) -> xr.Dataset:
    if controls is not None and any(controls):  # each plan's no-media counterfactual meets its own controls
        rec, _ = run_plans(history, np.concatenate([spend, np.zeros_like(spend)]), tail=tail,
                           controls=list(controls) * 2)
    else:
        rec, _ = run_plans(history, np.concatenate([spend, np.zeros_like(spend[:1])]), tail=tail)
    tot = totals(rec)
    series = {
        "purchases": rec.purchases_new.sum(-1) + rec.purchases_repeat.sum(-1),
        "new_customers": rec.purchases_new.sum(-1),
        "revenue": rec.revenue.sum(-1),
        "referrals": rec.referrals,
        "stage_size": rec.stage_size.sum(-2),
    }
    mroas = None
    if marginal:
        mroas = _marginal_roas(history, history.subset(marginal_draws), spend, tail=tail)
    return _label(history, plans, spend, tot, series, mroas, tail=tail, engine="twin", controls=controls)


def _marginal_roas(history: History, subset: History, spend: np.ndarray, *, tail: int) -> np.ndarray:
    """Revenue per extra unit of spend in each paid channel, ``(n_plans, draw, C)``.

    Computed on the draws of ``subset``; other draws and owned channels are NaN.
    """
    st = history.scenario.structure
    n_plans, H, C = spend.shape
    paid = np.flatnonzero(st.cost_per_touch > 0)
    bumped = [spend]
    steps = []
    for j in paid:
        s = spend.copy()
        step = np.maximum(spend[:, :, j] * MARGINAL_STEP, 1.0)  # at least one currency unit a week
        s[:, :, j] += step
        bumped.append(s)
        steps.append(step.sum(axis=1))
    rec, _ = run_plans(subset, np.concatenate(bumped), tail=tail)
    rev = rec.revenue.sum(axis=(-1, -2)).reshape(len(bumped), n_plans, -1)  # (1 + |paid|, n_plans, d)
    out = np.full((n_plans, history.n_draws, C), np.nan)
    at = np.searchsorted(history.draws, subset.draws)
    for i, j in enumerate(paid):
        out[:, at, j] = (rev[i + 1] - rev[0]) / steps[i][:, None]
    return out


def _label(history: History, plans, spend, tot, series, mroas, *, tail: int, engine: str,
           controls=None) -> xr.Dataset:
    import pandas as pd

    sc = history.scenario
    st = sc.structure
    n_plans = spend.shape[0]
    H = spend.shape[1]
    names = [p.name for p in plans]
    draw = history.draws
    t0 = pd.Timestamp(sc.start) + pd.Timedelta(weeks=history.weeks)
    time = pd.date_range(t0, periods=H + tail, freq="7D")
    pd_ = ("plan", "draw")
    ds = xr.Dataset(coords={"plan": names, "draw": draw, "time": time, "stage": list(st.stages),
                            "channel": list(st.channels)})
    for k, v in tot.items():
        ds[k] = (pd_, v[:n_plans])
    nomedia = {k: v[n_plans:] for k, v in tot.items()}  # (1 or n_plans, draw): the no-media counterfactual(s)
    spent = spend.sum(axis=(1, 2))
    ds["spend"] = (("plan",), spent)
    ds["spend_by_channel"] = (("plan", "channel"), spend.sum(axis=1))
    ds["weekly_spend"] = (("plan", "time", "channel"),
                          np.concatenate([spend, np.zeros((n_plans, tail, spend.shape[2]))], axis=1))
    ds["media_revenue"] = (pd_, tot["revenue"][:n_plans] - nomedia["revenue"])
    ds["media_new_customers"] = (pd_, tot["new_customers"][:n_plans] - nomedia["new_customers"])
    set_controls = {p.name: sorted(c) for p, c in zip(plans, controls or [None] * n_plans) if c}
    if set_controls:
        ds.attrs["controls_from_plans"] = "; ".join(f"{k}: {', '.join(v)}" for k, v in set_controls.items())
    with np.errstate(divide="ignore", invalid="ignore"):
        ds["roas"] = ds.media_revenue / xr.where(ds.spend > 0, ds.spend, np.nan)
        ds["cpa"] = ds.spend / xr.where(ds.media_new_customers > 0, ds.media_new_customers, np.nan)
    for k, v in series.items():
        dims = pd_ + ("time", "stage") if k == "stage_size" else pd_ + ("time",)
        ds[f"weekly_{k}" if k != "stage_size" else k] = (dims, v[:n_plans])
    if mroas is not None:
        ds["mroas"] = (pd_ + ("channel",), mroas)
    units = {"purchases": "purchases", "revenue": "currency", "spend": "currency", "roas": "currency/currency",
             "cpa": "currency/customer", "mroas": "currency/currency"}
    for k, u in units.items():
        if k in ds:
            ds[k].attrs["units"] = u
    ds.attrs.update({"scenario": sc.name, "engine": engine, "horizon_weeks": H, "tail_weeks": tail,
                     "history_weeks": history.weeks, "created_by": "journeysim",
                     "note": "totals over horizon + tail; spend over the horizon; media_* = plan minus no-media "
                             "counterfactual with the same draws"})
    return ds


def _agent_task(task):
    """One (draw, plan) agent run; top level so worker processes can run it."""
    from journeysim.engine.crn import CRNSimulation
    from journeysim.model.rng import stream

    scenario, params, X, spend, tail, agents, seed, draw, history_weeks = task
    init = agent_initial_state(X, scenario, agents, stream(seed, "forecast-init", int(draw)))
    C = spend.shape[1]
    full = np.concatenate([spend, np.zeros((tail, C))])
    sc = scenario.replace(agents=agents)
    plan = Plan(full, scenario.structure.channels, "plan")
    # agent-level common random numbers: plans differ only by what their spend changes
    sim = CRNSimulation(sc, params=params, plan=plan, seed=seed, replication=int(draw), initial_state=init,
                     start_day=history_weeks * 7)
    ds = sim.run()
    return {"purchases_new": ds.purchases_new.sum("persona").values, "purchases_repeat": ds.purchases_repeat.sum(
        "persona").values, "revenue": ds.revenue.sum("persona").values, "referrals": ds.referrals.values,
        "stage_size": ds.stage_size.sum("persona").values}


def _forecast_agents(history: History, plans, spend, *, tail: int, agents: int | None, seed: int | None,
                     executor: Any) -> xr.Dataset:
    from journeysim.model.dynamics import Params
    from journeysim.scale.executor import get_executor

    sc = history.scenario
    agents = int(agents or sc.structure.agents)
    seed = sc.seed if seed is None else int(seed)
    allspend = np.concatenate([spend, np.zeros_like(spend[:1])])
    tasks = []
    for i in range(history.n_draws):
        params = Params(**{k: np.asarray(v)[i] for k, v in history.params.as_dict().items()})
        X = np.asarray(history.state.X)[i]
        for p in range(allspend.shape[0]):
            tasks.append((sc, params, X, allspend[p], tail, agents, seed, int(history.draws[i]), history.weeks))
    secs = len(tasks) * agents * (spend.shape[1] + tail) * 7 / 2e7
    res = get_executor(executor, work_seconds=secs).map(_agent_task, tasks)
    n_p = allspend.shape[0]
    D = history.n_draws

    def stack(k):
        return np.stack([np.stack([res[i * n_p + p][k] for i in range(D)]) for p in range(n_p)])

    series = {k: stack(k) for k in ("purchases_new", "purchases_repeat", "revenue", "referrals", "stage_size")}
    new, rep = series["purchases_new"], series["purchases_repeat"]
    tot = {"purchases_new": new.sum(-1), "purchases_repeat": rep.sum(-1), "purchases": (new + rep).sum(-1),
           "new_customers": new.sum(-1), "revenue": series["revenue"].sum(-1), "referrals": series["referrals"].sum(-1)}
    out = {"purchases": new + rep, "new_customers": new, "revenue": series["revenue"],
           "referrals": series["referrals"], "stage_size": series["stage_size"]}
    ds = _label(history, plans, spend, tot, out, None, tail=tail, engine="agents")
    ds.attrs["agents"] = agents
    return ds
