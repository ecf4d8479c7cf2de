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

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from journeysim.errors import InputError
from journeysim.plan import Plan

__all__ = ["History", "prepare", "forecast", "compare", "summarize_metrics", "known_fit", "METRICS", "LOWER_IS_BETTER",
           "agent_initial_state"]

#: Metrics summarised per plan.
METRICS = ("purchases", "purchases_new", "purchases_repeat", "new_customers", "revenue", "referrals", "spend",
           "media_revenue", "media_new_customers", "roas", "cpa")
#: Metrics where a smaller value is the better plan.
LOWER_IS_BETTER = ("cpa", "spend")
#: Relative spend step of the marginal-ROAS finite difference.
MARGINAL_STEP = 0.01


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

    def subset(self, n: int) -> "History":
        """The first ``n`` draws (evenly spread over the posterior already)."""
        if n >= self.n_draws:
            return self
        idx = np.linspace(0, self.n_draws - 1, n).round().astype(int)
        from journeysim.dynamics import Params
        from journeysim.twin import TwinState

        params = Params(**{k: np.asarray(v)[idx] for k, v in self.params.as_dict().items()})
        return History(self.scenario, params, TwinState(np.asarray(self.state.X)[idx]), self.draws[idx], self.weeks,
                       self.data)


def prepare(scenario, fit, data, *, max_draws: int = 500, allow_unconverged: bool = False) -> History:
    """Run the observed history with the twin for ``max_draws`` posterior draws; keep the end state.

    Refuses a fit that did not converge unless ``allow_unconverged``.
    """
    from journeysim.calibrate import posterior_params, require_converged
    from journeysim.twin import Twin

    require_converged(fit, allow_unconverged)
    params, _ = posterior_params(fit, scenario, max_draws=max_draws)
    post = fit.idata.posterior
    n_all = post.sizes["chain"] * post.sizes["draw"]
    n = np.asarray(params.wom_rate).shape[0]
    draws = np.linspace(0, n_all - 1, n).round().astype(int) if n < n_all else np.arange(n_all)
    hist = scenario.replace(weeks=data.weeks, plan=data.plan)
    twin = Twin(hist, params=params, plan=data.plan)
    _, state = twin.run_arrays()
    return History(scenario, params, state, draws, data.weeks, data)


def _check_plan(plan: Plan, scenario, horizon: int) -> np.ndarray:
    """Spend ``(horizon, C)`` in the scenario's channel order; unknown or owned channels refused."""
    from journeysim.scenario import _check_plan as check

    return check(plan, scenario.structure, horizon, f"plan '{plan.name}'").spend[:horizon]


def run_plans(history: History, spend: np.ndarray, *, tail: int = 0) -> tuple[Any, Any]:
    """Twin runs of spend ``(n_plans, weeks, C)`` for every draw, plus ``tail`` weeks with no spend.

    Returns the :class:`~journeysim.output.WeeklyRecord` with batch ``(n_plans, draw)``.
    """
    from journeysim.twin import Twin

    spend = np.asarray(spend, float)
    if tail:
        spend = np.concatenate([spend, np.zeros(spend.shape[:-2] + (tail, spend.shape[-1]))], axis=-2)
    twin = Twin(history.scenario, params=history.params, plan=spend[:, None], initial_state=history.state,
                start_week=history.weeks)
    return twin.run_arrays()


def _totals(rec) -> dict[str, np.ndarray]:
    new = rec.purchases_new.sum(axis=(-1, -2))
    rep = rec.purchases_repeat.sum(axis=(-1, -2))
    return {"purchases_new": new, "purchases_repeat": rep, "purchases": new + rep, "new_customers": new,
            "revenue": rec.revenue.sum(axis=(-1, -2)), "referrals": rec.referrals.sum(axis=-1)}


def forecast(scenario, fit, data, plans, *, horizon: int = 26, tail: int = 8, max_draws: int = 500,
             marginal: bool = True, marginal_draws: int = 100, engine: str = "twin", agents: int | None = None,
             agent_draws: int = 20, seed: int | None = None, executor: Any = None, allow_unconverged: bool = False,
             history: History | None = None) -> xr.Dataset:
    """Forecast each plan from the end of the observed history, per posterior draw.

    Parameters
    ----------
    scenario, fit, data
        The scenario, its :class:`~journeysim.calibrate.Fit` and the observed data it was fitted on.
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
    from journeysim.planfile import baseline_plan, load_plan

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
    spend = np.stack([_check_plan(p, scenario, horizon) for p in resolved])  # (n_plans, H, C)
    if history is None:
        history = prepare(scenario, fit, data, max_draws=max_draws, allow_unconverged=allow_unconverged)
    if engine == "agents":
        history = history.subset(agent_draws)
        return _forecast_agents(history, resolved, spend, tail=tail, agents=agents, seed=seed, executor=executor)
    return _forecast_twin(history, resolved, spend, tail=tail, marginal=marginal, marginal_draws=marginal_draws)


def _forecast_twin(history: History, plans: list[Plan], spend: np.ndarray, *, tail: int, marginal: bool,
                   marginal_draws: int) -> xr.Dataset:
    n_plans = spend.shape[0]
    zero = np.zeros_like(spend[:1])
    rec, _ = run_plans(history, np.concatenate([spend, zero]), tail=tail)
    tot = _totals(rec)
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
    return _label(history, plans, spend, tot, series, mroas, tail=tail, engine="twin")


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


def _label(history: History, plans, spend, tot, series, mroas, *, tail: int, engine: str) -> xr.Dataset:
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
    nomedia = {k: v[n_plans] for k, v in tot.items()}
    spent = spend.sum(axis=(1, 2))
    ds["spend"] = (("plan",), spent)
    ds["spend_by_channel"] = (("plan", "channel"), spend.sum(axis=1))
    ds["weekly_spend"] = (("plan", "time", "channel"),
                          np.concatenate([spend, np.zeros((n_plans, tail, spend.shape[2]))], axis=1))
    ds["media_revenue"] = (pd_, tot["revenue"][:n_plans] - nomedia["revenue"][None])
    ds["media_new_customers"] = (pd_, tot["new_customers"][:n_plans] - nomedia["new_customers"][None])
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


def summarize_metrics(ds: xr.Dataset, metrics=METRICS, prob: float = 0.9) -> "Any":
    """Table (pandas) of posterior mean and central ``prob`` interval per plan and metric."""
    import pandas as pd

    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    rows = []
    for plan in ds.plan.values:
        for m in metrics:
            if m not in ds:
                continue
            v = ds[m].sel(plan=plan)
            vals = np.asarray(v.values, float).ravel()
            vals = vals[np.isfinite(vals)]
            if vals.size == 0:
                continue
            rows.append({"plan": str(plan), "metric": m, "mean": float(vals.mean()),
                         "lower": float(np.quantile(vals, lo)), "upper": float(np.quantile(vals, hi))})
    return pd.DataFrame(rows)


def compare(ds: xr.Dataset, *, baseline: str = "baseline", metrics=METRICS, prob: float = 0.9) -> xr.Dataset:
    """Incremental effect of each plan versus ``baseline``, per draw, with a summary.

    Returns a Dataset with ``delta_<metric> (plan, draw)`` and a summary per ``(plan, metric)``:
    ``mean``, ``lower``, ``upper`` (central ``prob`` interval), ``prob_better`` (the share of draws
    in which the plan beats the baseline: higher is better, except ``cpa``/``spend``).
    """
    if baseline not in list(ds.plan.values):
        from journeysim.errors import did_you_mean

        raise InputError(f"no plan named '{baseline}'" + did_you_mean(baseline, [str(p) for p in ds.plan.values]),
                         "baseline")
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    metrics = [m for m in metrics if m in ds and "draw" in ds[m].dims]
    out = xr.Dataset(coords={"plan": ds.plan, "draw": ds.draw, "metric": metrics})
    mean = np.zeros((ds.sizes["plan"], len(metrics)))
    lower, upper, better = mean.copy(), mean.copy(), mean.copy()
    for j, m in enumerate(metrics):
        d = ds[m] - ds[m].sel(plan=baseline)
        out[f"delta_{m}"] = d
        v = np.asarray(d.values, float)
        sign = -1.0 if m in LOWER_IS_BETTER else 1.0
        for i in range(v.shape[0]):
            x = v[i][np.isfinite(v[i])]
            if x.size == 0:
                mean[i, j] = lower[i, j] = upper[i, j] = better[i, j] = np.nan
                continue
            mean[i, j], lower[i, j], upper[i, j] = x.mean(), np.quantile(x, lo), np.quantile(x, hi)
            better[i, j] = float(np.mean(sign * x > 0))
    for k, v in (("mean", mean), ("lower", lower), ("upper", upper), ("prob_better", better)):
        out[k] = (("plan", "metric"), v)
    out.attrs.update({"baseline": baseline, "interval": prob})
    return out


# ---------------------------------------------------------------------------------------------
# agents


def agent_initial_state(state_X: np.ndarray, scenario, agents: int, rng: np.random.Generator) -> dict:
    """Agents drawn from one draw's twin end state: exact quotas per (history, persona, stage) group,
    exposure memory drawn from a gamma with the group's mean and variance."""
    from journeysim.engine import _quota

    st = scenario.structure
    P, S, K = len(st.personas), len(st.stages), st.n_sources
    X = np.asarray(state_X, float)  # (R, 1 + 2K), rows (h, p, s)
    N = np.maximum(X[:, 0], 0.0)
    counts = _quota(N / N.sum(), agents)
    rows = np.repeat(np.arange(N.size), counts)
    rng.shuffle(rows)
    group = rows % (P * S)
    bought = rows >= P * S
    mean = X[:, 1:1 + K] / np.maximum(N, 1e-12)[:, None]
    var = np.maximum(X[:, 1 + K:] / np.maximum(N, 1e-12)[:, None] - mean ** 2, 0.0)
    m, v = mean[rows], var[rows]  # (n, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        shape = np.where(v > 0, m * m / v, 0.0)
        scale = np.where(m > 0, v / m, 0.0)
    mem = np.where(v > 1e-12 * np.maximum(m * m, 1e-300), rng.gamma(np.maximum(shape, 1e-9), 1.0) * scale, m)
    mem = np.where(m > 0, mem, 0.0)
    return {"group": group, "clock": rng.standard_exponential(agents).astype(np.float32),
            "memory": np.ascontiguousarray(mem.T, dtype=np.float32),
            "last_purchase": np.where(bought, -(10**6), -1).astype(np.int32),
            "weight": st.population / agents}


def _agent_task(task):
    """One (draw, plan) agent run; top level so worker processes can run it."""
    from journeysim.groundtruth import CRNSimulation
    from journeysim.rng import stream

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
    from journeysim.dynamics import Params
    from journeysim.executor import get_executor

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


def known_fit(scenario, *, draws: int = 200, spread: float = 0.0, seed: int = 0, priors: dict | None = None):
    """A :class:`~journeysim.calibrate.Fit` whose posterior draws are the scenario's own parameters.

    With ``spread > 0`` each uncertain parameter is jittered by a lognormal factor of that sd (shares
    with a beta prior, such as carry-over, on their log-odds, so that they stay below one). Use it
    to plan with parameters you already trust (or the truth, in a simulation study) without sampling.
    """
    import arviz as az
    import pandas as pd

    from journeysim.calibrate import Fit
    from journeysim.priors import build_space

    space = build_space(scenario, priors)
    truth = space.values_of(scenario.params)
    rng = np.random.default_rng(seed)
    post = {}
    for name, prior, v in zip(space.names, space.priors, truth):
        if prior.form == "fixed":
            continue
        z = spread * rng.standard_normal(draws)
        if prior.form == "beta":  # a share (carry-over, initial share): jitter its log-odds, stay in (0, 1)
            lo = np.log(v / (1.0 - v))
            post[name] = (1.0 / (1.0 + np.exp(-(lo + z))))[None]
        else:
            post[name] = (v * np.exp(z))[None]
    idata = az.from_dict(posterior=post)
    info = {"method": "known", "spread": spread, "converged": True, "scenario": scenario.name}
    return Fit(idata, space, pd.DataFrame(), True, info)
