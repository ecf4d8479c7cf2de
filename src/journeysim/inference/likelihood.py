"""The PyMC model of a calibration: priors, the twin over the history, and the KPI likelihoods."""

from __future__ import annotations

import numpy as np

from journeysim.errors import InputError
from journeysim.inference.coordinates import free_parameters
from journeysim.inference.inputs import observed_inputs
from journeysim.inference.priors import ParamSpace, build_space, check_coords
from journeysim.io.observed import ObservedData
from journeysim.model.dynamics import Params, Structure, delivered, edge_multipliers, effectiveness
from journeysim.model.lifttests import resolve_lift_tests
from journeysim.model.observe import expected_kpi
from journeysim.twin.state import TwinMatrices, TwinState, initial_X
from journeysim.twin.step import twin_step

__all__ = ['build_model']


NOISE_PRIOR_SIGMA = 0.1
#: Prior scale (half-normal) of the week-to-week innovations of an ``ar1`` KPI, on the log scale.
AR1_NOISE_PRIOR_SIGMA = 0.2


def _add_ar1(pm, pt, name: str, mu, y, weeks: np.ndarray, sigma, rho) -> None:
    """``log y_t = log mu_t + u_t`` with ``u`` a stationary AR(1) (innovation sd ``sigma``, lag-one
    correlation ``rho``), over the observed ``weeks`` (a gap of ``g`` weeks: correlation ``rho^g``).

    The errors that a model which misses something leaves persist from week to week; read as
    independent noise they make 104 weeks look like 104 independent pieces of evidence and the
    posterior too sure. The log density of ``y`` (with its ``-log y`` Jacobian) enters as a Potential.
    """
    u = pt.log(y) - pt.log(pt.maximum(mu, 1e-9))
    var0 = sigma * sigma / (1.0 - rho * rho)
    logp = -0.5 * (pt.log(2 * np.pi * var0) + u[0] ** 2 / var0)
    if len(weeks) > 1:
        gap = np.diff(weeks).astype(float)
        r = rho ** gap
        var = var0 * (1.0 - r * r)
        e = u[1:] - r * u[:-1]
        logp = logp + pt.sum(-0.5 * (pt.log(2 * np.pi * var) + e * e / var))
    pm.Potential(name, logp - pt.sum(pt.log(y)))


def _weekly_arrays(xp, X_steps, flows, new, repeat, referrals, st: Structure, W: int, steps: int, mats):
    """Weekly outputs of the twin inside the model, in the layout :func:`expected_kpi` reads."""
    P, S, E = len(st.personas), len(st.stages), len(st.edges)
    flow_w = flows.reshape((W, steps, P, E)).sum(axis=1)
    new_w = new.reshape((W, steps, P)).sum(axis=1)
    rep_w = repeat.reshape((W, steps, P)).sum(axis=1)
    ref_w = referrals.reshape((W, steps)).sum(axis=1)
    X_end = X_steps[steps - 1::steps]  # (W, R, cols)
    stage = (X_end[:, :, 0] @ mats.stage_out.T).reshape((W, P, S))
    purchases = new_w + rep_w
    return {"entries": flow_w @ st.dst_matrix, "stage_size": stage, "purchases": purchases,
            "purchases_new": new_w, "referrals": ref_w, "revenue": purchases * st.value}


def _observed_impressions(data: ObservedData, st: Structure) -> np.ndarray:
    """``(K,)`` sources whose history touches are observed impressions (any week), word of mouth never."""
    seen = np.zeros(st.n_sources, bool)
    if data.impressions is not None:
        seen[:-1] = np.isfinite(data.impressions).any(axis=0)
    return seen


def _add_delivery(pm, pt, k: int, data: ObservedData, st: Structure, cap, X0, Xs, steps: int, mats):
    """``impressions_<ch>``: the observed impressions of a demand-capped channel against what the cap
    lets its spend buy from the people in its targeted stages (the delivery curve, learned from them):
    ``impressions ~ Normal(delivered, noise * delivered)``."""
    c = st.channels[k]
    ok = np.flatnonzero(np.isfinite(data.impressions[:, k]))
    spend = data.plan.aligned(st.channels)[:, k]
    bought = np.repeat(spend / st.cost_per_touch[k] / 7.0, steps)  # per day, each step
    X_pre = pt.concatenate([pt.expand_dims(X0, 0), Xs[:-1]], axis=0)
    targeted = X_pre[:, :, 0] @ mats.targeting[:, k]  # (T,) at each step's start
    per_weight, _ = effectiveness(pt, bought, targeted, np.inf, cap)  # (the twin's own delivery)
    sent = delivered(pt, per_weight, targeted) * st.step_days(data.weeks)
    weekly = pm.Deterministic(f"impressions_{c}_model", sent.reshape((data.weeks, steps)).sum(axis=1)[ok])
    cv = pm.HalfNormal(f"noise_impressions_{c}", sigma=NOISE_PRIOR_SIGMA)
    pm.Normal(f"obs_impressions_{c}", mu=weekly, sigma=cv * weekly + 1e-9, observed=data.impressions[ok, k])


def _add_lift_test(pm, pt, i, test, run, arrays, touches, em, cm, X0, Xs, st: Structure, steps: int, mats):
    """``lift_<i> ~ Normal(model lift, se)``: the twin rerun from the test's first week with the
    channel's touches scaled in the test weeks (:mod:`journeysim.model.lifttests`)."""
    s0, s1 = test.first * steps, (test.until + 1) * steps
    tc = np.array(touches[s0:s1], float)
    tc[: (test.last - test.first + 1) * steps, test.channel] *= test.spend
    X_start = X0 if s0 == 0 else Xs[s0 - 1]
    n = test.until - test.first + 1
    cf = _weekly_arrays(pt, *run(tc, em[s0:s1], cm[s0:s1], X_start), st, n, steps, mats)
    actual = {k: v[test.first:test.until + 1] for k, v in arrays.items()}
    kpi = [pt.sum(expected_kpi(pt, a, test.measures, test.stage_mask, st.population)) for a in (cf, actual)]
    mu = pm.Deterministic(f"lift_{i}_model", test.share * (kpi[0] - kpi[1]))
    pm.Normal(f"lift_{i}", mu=mu, sigma=test.se, observed=test.lift)


def build_model(scenario, data: ObservedData, space: ParamSpace | None = None, paths=None,
                observed_as_data: bool = False, fused: bool | None = None, coords: str = "log",
                typical: bool = True):
    """The PyMC model of a scenario's uncertain parameters given observed data.

    Returns the model; its free variables are the parameters of ``space`` (named as in the
    scenario's ``priors:``) plus one noise level per negative-binomial or normal observation.
    ``paths`` (a path table or :class:`journeysim.inference.pathlik.PathCounts`) adds the path likelihood
    of :func:`journeysim.inference.pathlik.add_path_likelihood`.
    ``observed_as_data`` puts the observed values of count and normal KPIs in ``pm.Data``
    containers named ``observed_<column>``, so a compiled model can be refitted on new values of
    the same shape without recompiling (nutpie: ``compiled.with_data(observed_<column>=...)``).
    ``fused`` runs the history as one compiled Op (:func:`journeysim.inference.ops.twin_scan`, same
    numbers) instead of ``pytensor.scan``; ``None``: when numba is importable and the environment
    variable ``JOURNEYSIM_NO_FUSED`` is not set.
    ``coords``: the sampler's coordinates of parameters with a lognormal prior, ``log`` (PyMC's)
    or ``softplus`` (:func:`journeysim.inference.priors.SoftplusScaled`): the same model either way.
    ``typical`` (log coordinates): sample the effects of a channel whose saturation is learned at
    the channel's typical frequency, and the hazards of transitions that both a base rate and
    channels move as their typical total and its shares (:mod:`journeysim.inference.coordinates`; the
    same model, fewer gradients).
    """
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    check_coords(coords)  # (even when no prior is lognormal)
    scenario = scenario.with_data(data)
    st = scenario.structure
    space = space or build_space(scenario)
    if len(space) == 0:
        raise InputError("no uncertain parameters: give priors: or leave it out for the defaults", "priors")
    W = data.weeks
    touches, em, cm, steps = observed_inputs(scenario, data)
    mats = TwinMatrices.build(st)
    dt = st.dt
    with pm.Model(coords={"week": data.dates}) as model:
        theta = free_parameters(pm, pt, scenario, space, coords, touches, em, cm, typical)
        params = space.to_params(pt, theta, scenario.params)
        X0 = initial_X(pt, pt.as_tensor(params.initial), st)
        em_data = em
        if st.demand is not None and st.demand.size:  # learned demand: the base multipliers depend on it
            em = pt.repeat(edge_multipliers(pt, st, pt.as_tensor(params.demand), np.arange(W)), steps, axis=0)
        if params.cap is None:
            params = params.replace(cap=np.full(st.n_sources, np.inf))
        seen = _observed_impressions(data, st)
        cap_model = pt.as_tensor(params.cap)  # (the caps the delivery curves of observed impressions learn)
        learned_caps = [tgt[0] for kind, tgt in zip(space.kinds, space.targets) if kind == "cap"]
        if seen.any():  # observed impressions were delivered already: no demand cap on top of them
            params = params.replace(cap=pt.where(seen, np.inf, cap_model))
        named = {k: pt.as_tensor(np.asarray(v, float)) if isinstance(v, np.ndarray | float | int | np.floating) else v
                 for k, v in params.as_dict().items()}
        fields = list(named.values())

        def week(tc, e_m, c_m, X, *pvals):
            """The steps of one week (:attr:`Structure.substeps`): the state at its end, then each step's outputs."""
            P_ = Params(*pvals)
            outs = []
            for i, sub in enumerate(st.substeps):
                state, out = twin_step(pt, TwinState(X), tc[i], P_, st, e_m[i], c_m[i], dt, mats, sub)
                X = state.X
                outs.append((X, out["flow"], out["new"], out["repeat"], out["referrals"]))
            return (X,) + tuple(pt.stack(z) for z in zip(*outs))

        from journeysim.inference.ops import twin_scan, use_fused

        def run(touches_, em_, cm_, X0_):
            """The twin over steps: states, flows, new and repeat purchases, referrals."""
            if use_fused(fused):
                return twin_scan(pt.as_tensor(touches_), pt.as_tensor(em_), pt.as_tensor(cm_), X0_,
                                 *(named[k] for k in ("base", "beta", "carryover", "fhalf", "cap", "wom_rate")),
                                 structure=st, mats=mats, dt=dt)
            n = len(st.substeps)

            def weeks(x):
                x = pt.as_tensor(x)
                return x.reshape((x.shape[0] // n, n, *(x.shape[i] for i in range(1, x.ndim))), ndim=x.ndim + 1)

            outs = pytensor.scan(week, sequences=[weeks(touches_), weeks(em_), weeks(cm_)],
                                 outputs_info=[X0_, None, None, None, None, None], non_sequences=fields,
                                 return_updates=False)
            return tuple(o.reshape((o.shape[0] * n, *(o.shape[i] for i in range(2, o.ndim))), ndim=o.ndim - 1)
                         for o in outs[1:])

        Xs, flows, new, repeat, refs = run(touches, em, cm, X0)
        arrays = _weekly_arrays(pt, Xs, flows, new, repeat, refs, st, W, steps, mats)
        for obs in data.observations:
            mask = np.array([s in obs.stages for s in st.stages], float)
            mu = expected_kpi(pt, arrays, obs.measures, mask, st.population, obs.scale)
            ok = obs.observed
            y = obs.values[ok]
            if observed_as_data and obs.likelihood != "binomial":
                y = pm.Data(f"observed_{obs.column}", y)
            mu_o = mu[np.flatnonzero(ok)]
            name = f"obs_{obs.column}"
            if obs.likelihood == "poisson":
                pm.Poisson(name, mu=pt.maximum(mu_o, 1e-9), observed=y)
            elif obs.likelihood == "negbin":
                cv = pm.HalfNormal(f"noise_{obs.column}", sigma=NOISE_PRIOR_SIGMA)
                pm.NegativeBinomial(name, mu=pt.maximum(mu_o, 1e-9), alpha=1.0 / (cv * cv), observed=y)
            elif obs.likelihood == "ar1":
                sigma = pm.HalfNormal(f"noise_{obs.column}", sigma=AR1_NOISE_PRIOR_SIGMA)
                rho = pm.Beta(f"persistence_{obs.column}", alpha=2.0, beta=2.0)
                _add_ar1(pm, pt, name, mu_o, y, np.flatnonzero(ok), sigma, rho)
            elif obs.likelihood == "normal":
                cv = pm.HalfNormal(f"noise_{obs.column}", sigma=NOISE_PRIOR_SIGMA)
                pm.Normal(name, mu=mu_o, sigma=cv * pt.abs(mu_o) + 1e-9, observed=y)
            elif obs.likelihood == "binomial":
                n = obs.sample_size[ok].astype(np.int64)
                pm.Binomial(name, n=n, p=pt.clip(mu_o, 1e-9, 1 - 1e-9), observed=np.round(y * n).astype(np.int64))
        for k in np.flatnonzero(seen[:-1] & np.isin(np.arange(st.n_sources - 1), learned_caps)):
            _add_delivery(pm, pt, int(k), data, st, cap_model[k], X0, Xs, steps, mats)
        for i, test in enumerate(resolve_lift_tests(scenario, data)):
            _add_lift_test(pm, pt, i, test, run, arrays, touches, em, cm, X0, Xs, st, steps, mats)
        if paths is not None:
            from journeysim.inference.pathlik import add_path_likelihood

            model._journeysim_paths = add_path_likelihood(pt, scenario, paths, params, X0, Xs, touches, em_data, cm,
                                                            edge_mult_model=em)  # noqa: SLF001
    model._journeysim_space = space  # noqa: SLF001 - kept for calibrate()
    return model
