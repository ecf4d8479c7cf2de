"""Budget optimisation and response curves over posterior draws, with the twin.

The objective is evaluated on a fixed set of posterior draws (common across candidate
allocations), so it is a smooth deterministic function of the allocation; SLSQP maximises it with
finite-difference gradients computed in one batched twin run per iteration. The chosen allocation
is then evaluated against the baseline with more draws (and optionally checked with the agents).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from journeysim._util.stats import interval_levels
from journeysim.errors import InputError, did_you_mean
from journeysim.model.plan import Plan

__all__ = ['optimize', 'response_curves', 'parse_bounds', 'OBJECTIVES', 'MAX_CHANGE']


OBJECTIVES = ("purchases", "profit", "p10", "gain_p10")
#: ``gain_p10``'s quantile: the gain over the current mix that this share of the posterior falls below.
GAIN_QUANTILE = 0.10
#: How far from its share of the current mix the optimiser moves a channel by default (0.3: each
#: channel between 70% and 130% of what the current mix gives it at this budget). The fit learned a
#: channel's response near the spend it saw; an allocation far outside that range reads the response
#: curve where the data say little and the model's form says the rest. Meridian's fixed-budget default
#: is the same. On the test markets, an unlimited optimiser cut display or tv and lost purchases while
#: promising gains (experiments/RESULTS.md).
MAX_CHANGE = 0.3


def parse_bounds(items, channels) -> dict[str, tuple[float, float]]:
    """``["tv=0:500000", "search=100000:"]`` -> ``{"tv": (0, 500000), "search": (100000, inf)}``."""
    out = {}
    for it in items or ():
        if isinstance(items, Mapping):
            c, (lo, hi) = it, items[it]
        else:
            if "=" not in it or ":" not in it.split("=", 1)[1]:
                raise InputError(f"'{it}' is not channel=low:high (e.g. tv=0:500000)", "--bounds")
            c, rng = it.split("=", 1)
            lo_s, hi_s = rng.split(":", 1)
            try:
                lo = float(lo_s) if lo_s.strip() else 0.0
                hi = float(hi_s) if hi_s.strip() else np.inf
            except ValueError:
                raise InputError(f"'{it}': bounds must be numbers", "--bounds") from None
        c = c.strip()
        if c not in channels:
            raise InputError(f"unknown channel '{c}'" + did_you_mean(c, channels), "--bounds")
        if lo < 0 or hi < lo:
            raise InputError(f"'{c}': need 0 <= low <= high, got {lo}:{hi}", "--bounds")
        out[c] = (float(lo), float(hi))
    return out


def _objective_values(tot: dict, spend_total: np.ndarray, objective: str, current=None) -> np.ndarray:
    """Per candidate, the objective over draws ``(n_candidates,)`` (``gain_p10``: each draw's gain over
    ``current``, the current mix's purchases on the same draws)."""
    if objective == "purchases":
        return tot["purchases"].mean(axis=-1)
    if objective == "profit":
        return (tot["revenue"] - spend_total[:, None]).mean(axis=-1)
    if objective == "gain_p10":
        return np.quantile(tot["purchases"] - current, GAIN_QUANTILE, axis=-1)
    return np.quantile(tot["purchases"], 0.10, axis=-1)


def optimize(history, *args, budget: float, horizon: int = 26, tail: int = 8,
             bounds: Mapping[str, tuple[float, float]] | None = None, objective: str = "purchases", periods: int = 1,
             search_draws: int = 100, max_draws: int = 500, verify_agents: bool = False, agent_draws: int = 10,
             agents: int | None = None, executor: Any = None, allow_unconverged: bool = False,
             maxiter: int = 60, max_change: float | None = MAX_CHANGE) -> xr.Dataset:
    """The allocation of ``budget`` (total over the horizon) across paid channels maximising ``objective``.

    Called as ``optimize(history, budget=...)`` with a :class:`~journeysim.planning.history.History`,
    or as ``optimize(scenario, fit, data, budget=...)``.

    Parameters
    ----------
    budget
        Total spend over the horizon.
    bounds
        Per channel ``(low, high)`` total spend over the horizon.
    max_change
        A channel without ``bounds`` stays within ``1 -/+ max_change`` times its share of the current
        mix at this budget (:data:`MAX_CHANGE`); ``None``: anywhere from nothing to the whole budget.
    objective
        ``purchases`` (expected), ``profit`` (expected revenue minus spend), ``p10`` (10% quantile of
        purchases over the posterior: a risk-averse choice) or ``gain_p10`` (10% quantile of each draw's
        gain over the current mix at this budget, the same draws for both: the gain nine draws in ten
        agree on; it is zero at the current mix, so the optimiser moves only where the posterior is
        confident that a move gains, and otherwise keeps the current mix).
    periods
        Split the horizon into this many equal blocks and allocate each (flighting); 1: constant.
    search_draws, max_draws
        Posterior draws used in the search, and to evaluate the result against the baseline.
    verify_agents
        Also forecast the optimum and the baseline with the agent engine (``agent_draws`` draws).

    Returns
    -------
    xarray.Dataset
        ``allocation (period, channel)`` weekly spend, ``allocation_total (channel)``, the forecast
        comparison (``gain_*``), the objective trace, and attributes (converged, iterations, seconds).
    """
    import time

    from scipy.optimize import minimize

    from journeysim.io.planfile import baseline_plan
    from journeysim.planning.comparison import compare
    from journeysim.planning.forecasting import forecast
    from journeysim.planning.history import planning_inputs, run_plans, totals

    scenario, data, history_of, _ = planning_inputs((history, *args), "optimize", 0,
                                                    allow_unconverged=allow_unconverged)
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective '{objective}'" + did_you_mean(objective, OBJECTIVES)
                         + f"; use one of {', '.join(OBJECTIVES)}", "objective")
    if not budget > 0:
        raise InputError(f"the budget must be positive, got {budget}", "budget")
    if not 1 <= periods <= horizon:
        raise InputError(f"periods must be between 1 and the horizon ({horizon}), got {periods}", "periods")
    st = scenario.structure
    channels = st.channels
    paid = [j for j in range(len(channels)) if st.cost_per_touch[j] > 0]
    if not paid:
        raise InputError("the scenario has no paid channel to allocate", "channels")
    if max_change is not None and not (np.isfinite(max_change) and max_change >= 0):
        raise InputError(f"max_change must be a number >= 0 (or none), got {max_change}", "max_change")
    bounds = dict(bounds or {})
    for c in bounds:
        if c not in channels:
            raise InputError(f"unknown channel '{c}'" + did_you_mean(c, channels), "bounds")
        if channels.index(c) not in paid:
            raise InputError(f"'{c}' is an owned channel (volume); it takes no spend", "bounds")
    base = baseline_plan(scenario, data, horizon)
    mix = base.spend[:, paid].sum(axis=0)
    mix = mix / mix.sum() if mix.sum() > 0 else np.full(len(paid), 1 / len(paid))

    def limits(j: int) -> tuple[float, float]:
        if max_change is None:
            return 0.0, np.inf
        return (1 - max_change) * mix[j] * budget, (1 + max_change) * mix[j] * budget

    lims = [bounds.get(channels[c], limits(j)) for j, c in enumerate(paid)]
    lo = np.maximum([a for a, _ in lims], 0.0)
    hi = np.minimum([b for _, b in lims], budget)
    if lo.sum() > budget * (1 + 1e-9) or hi.sum() < budget * (1 - 1e-9):
        raise InputError(f"the bounds cannot meet the budget {budget:g} (lows sum to {lo.sum():g}, highs to "
                         f"{hi.sum():g})" + ("" if max_change is None else
                                             f"; channels without bounds stay within {max_change:.0%} of their "
                                             "share of the current mix (max_change)"), "bounds")
    t0 = time.perf_counter()
    history = history_of(max_draws)
    search = history.subset(search_draws)
    # block lengths of the flighting periods
    edges = np.linspace(0, horizon, periods + 1).round().astype(int)
    lengths = np.diff(edges)
    n_paid = len(paid)
    n_var = periods * n_paid

    def to_spend(z: np.ndarray) -> np.ndarray:
        """Shares of the budget per (period, channel) -> weekly spend (H, C)."""
        x = z.reshape(periods, n_paid) * budget
        spend = np.zeros((horizon, len(channels)))
        for b in range(periods):
            spend[edges[b]:edges[b + 1], paid] = x[b] / lengths[b]
        return spend

    # start: the baseline mix scaled to the budget, clipped into the bounds
    start_tot = np.clip(mix * budget, lo, hi)
    start_tot *= budget / start_tot.sum()
    z0 = np.tile(start_tot / budget / periods, periods)
    scale = {}
    trace = []
    step = 1e-3
    current = None  # (gain_p10: the current mix's purchases per draw, run once; its gain is zero)
    if objective == "gain_p10":
        current = totals(run_plans(search, to_spend(z0)[None], tail=tail)[0])["purchases"][0]
        scale["s"] = float(np.mean(current)) or 1.0  # (the objective is zero at the start: scaled by purchases)

    def evaluate(z: np.ndarray) -> tuple[float, np.ndarray]:
        cands = [to_spend(z)]
        for i in range(n_var):
            zi = z.copy()
            zi[i] += step
            cands.append(to_spend(zi))
        spend = np.stack(cands)
        rec, _ = run_plans(search, spend, tail=tail)
        vals = _objective_values(totals(rec), spend.sum(axis=(1, 2)), objective, current)
        if "s" not in scale:
            scale["s"] = abs(vals[0]) or 1.0
        f = vals[0] / scale["s"]
        g = (vals[1:] / scale["s"] - f) / step
        trace.append(float(vals[0]))
        return -f, -g

    cache: dict[bytes, tuple[float, np.ndarray]] = {}

    def fun(z):
        k = np.round(z, 12).tobytes()
        if k not in cache:
            cache[k] = evaluate(z)
        return cache[k]

    # per-channel totals within bounds: A z between lo/budget and hi/budget
    A = np.tile(np.eye(n_paid), periods)
    cons = [{"type": "eq", "fun": lambda z: z.sum() - 1.0, "jac": lambda z: np.ones_like(z)},
            {"type": "ineq", "fun": lambda z: A @ z - lo / budget, "jac": lambda z: A},
            {"type": "ineq", "fun": lambda z: hi / budget - A @ z, "jac": lambda z: -A}]
    res = minimize(lambda z: fun(z)[0], z0, jac=lambda z: fun(z)[1], method="SLSQP",
                   bounds=[(0.0, 1.0)] * n_var, constraints=cons, options={"maxiter": maxiter, "ftol": 1e-7})
    z = np.clip(res.x, 0.0, None)
    z = z / z.sum()
    best = Plan(to_spend(z), channels, "optimum")
    same_budget = Plan(to_spend(z0), channels, "baseline_mix")
    search_seconds = time.perf_counter() - t0
    fc = forecast(history, [same_budget, best], horizon=horizon, tail=tail, marginal=False)
    cmp = compare(fc)
    x = z.reshape(periods, n_paid) * budget
    alloc = np.zeros((periods, len(channels)))
    alloc[:, paid] = x / lengths[:, None]
    out = xr.Dataset(
        {"allocation": (("period", "channel"), alloc),
         "allocation_total": (("channel",), alloc.T @ lengths),
         "baseline_weekly": (("channel",), base.spend.mean(axis=0)),
         "objective_trace": (("iteration",), np.asarray(trace))},
        coords={"period": np.arange(1, periods + 1), "channel": list(channels), "iteration": np.arange(len(trace)),
                "period_start_week": ("period", edges[:-1] + 1), "period_weeks": ("period", lengths)})
    out["allocation"].attrs["units"] = "currency/week"
    out = xr.merge([out, cmp[["mean", "lower", "upper", "prob_better"]]])
    out.attrs.update({"objective": objective, "budget": float(budget), "horizon_weeks": horizon, "tail_weeks": tail,
                      "search_draws": search.n_draws, "draws": history.n_draws, "converged": int(bool(res.success)),
                      "message": str(res.message), "iterations": int(res.nit), "seconds_search": search_seconds,
                      "max_change": "none" if max_change is None else float(max_change),
                      "seconds": time.perf_counter() - t0})
    out.attrs["forecast"] = "plans: baseline (current spend), baseline_mix (current mix at this budget), optimum"
    if verify_agents:
        fa = forecast(history, [same_budget, best], horizon=horizon, tail=tail, engine="agents",
                      agent_draws=agent_draws, agents=agents, executor=executor)
        ca = compare(fa, baseline="baseline_mix", metrics=("purchases", "revenue"))
        ct = compare(fc.sel(draw=fa.draw), baseline="baseline_mix", metrics=("purchases", "revenue"))
        for k in ("mean", "lower", "upper", "prob_better"):
            out[f"agents_{k}"] = ca[k].rename(metric="check_metric")
            out[f"twin_{k}"] = ct[k].rename(metric="check_metric")
        out.attrs["agent_draws"] = int(fa.sizes["draw"])
        out.attrs["agents"] = int(fa.attrs.get("agents", 0))
    return out


def response_curves(history, *args, horizon: int = 26, tail: int = 8,
                    levels=(0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0), draws: int = 100,
                    allow_unconverged: bool = False, prob: float = 0.9) -> xr.Dataset:
    """Outcome vs spend per paid channel: the baseline with one channel's spend scaled by ``levels``.

    Returns ``purchases``/``revenue`` with dims ``(channel, level, draw)``, ``spend (channel, level)``
    (the channel's total over the horizon), and ``*_mean``, ``*_lower``, ``*_upper`` bands.
    """
    from journeysim.io.planfile import baseline_plan
    from journeysim.planning.history import planning_inputs, run_plans, totals

    scenario, data, history_of, _ = planning_inputs((history, *args), "response_curves", 0,
                                                    allow_unconverged=allow_unconverged)
    st = scenario.structure
    paid = [j for j in range(len(st.channels)) if st.cost_per_touch[j] > 0]
    history = history_of(draws)
    base = baseline_plan(scenario, data, horizon).spend
    levels = np.asarray(levels, float)
    cands = []
    for j in paid:
        for lv in levels:
            s = base.copy()
            s[:, j] *= lv
            cands.append(s)
    rec, _ = run_plans(history, np.stack(cands), tail=tail)
    tot = totals(rec)
    names = [st.channels[j] for j in paid]
    shape = (len(paid), levels.size, -1)
    ds = xr.Dataset(
        {"purchases": (("channel", "level", "draw"), tot["purchases"].reshape(shape)),
         "revenue": (("channel", "level", "draw"), tot["revenue"].reshape(shape)),
         "spend": (("channel", "level"), np.outer(base[:, paid].sum(axis=0), levels))},
        coords={"channel": names, "level": levels, "draw": history.draws})
    lo, hi = interval_levels(prob)
    for k in ("purchases", "revenue"):
        ds[f"{k}_mean"] = ds[k].mean("draw")
        ds[f"{k}_lower"] = ds[k].quantile(lo, "draw").drop_vars("quantile")
        ds[f"{k}_upper"] = ds[k].quantile(hi, "draw").drop_vars("quantile")
    ds.attrs.update({"horizon_weeks": horizon, "tail_weeks": tail, "interval": prob,
                     "note": "level = multiplier of the channel's baseline weekly spend, other channels at baseline"})
    return ds
