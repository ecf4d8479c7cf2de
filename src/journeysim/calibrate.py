"""Bayesian calibration: the mean-field twin as a differentiable PyMC likelihood.

The PyMC model runs :func:`journeysim.twin.twin_step` (the same function the numpy twin runs)
with ``xp = pytensor.tensor`` inside a ``scan`` over the observed history, maps its weekly outputs
to each observed KPI with :func:`journeysim.observe.expected_kpi`, and scores them with the
observation's likelihood. NUTS samples it (nutpie by default, PyMC's own or numpyro on request).

For what the twin cannot represent, ``method="abc"`` calibrates the agent engine itself with
PyMC's ``pm.Simulator`` and sequential Monte Carlo on the KPI series (small sizes only).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from journeysim.data import ObservedData
from journeysim.dynamics import Params, Structure
from journeysim.errors import ConvergenceError, InputError, JourneysimWarning
from journeysim.observe import expected_kpi, sample_kpi
from journeysim.priors import ParamSpace, build_space, check_coords
from journeysim.twin import TwinMatrices, TwinState, twin_step

__all__ = ["build_model", "calibrate", "Fit", "load_fit", "posterior_params", "posterior_predictive",
           "SAMPLERS", "initial_X", "observed_inputs", "fit_settings", "FIT_DEFAULTS", "compile_nutpie"]

SAMPLERS = ("nutpie", "pymc", "numpyro")
#: Sampler settings when neither the call nor the scenario's ``fit:`` section gives them.
FIT_DEFAULTS = {"draws": 1000, "tune": 1000, "chains": 4, "target_accept": 0.9, "coords": "log", "sampler": "nutpie"}


def fit_settings(scenario, given: dict | None = None, defaults: dict | None = None) -> tuple[dict, dict]:
    """The sampler settings of a fit, and where each came from.

    Each of ``draws, tune, chains, target_accept, coords, sampler`` is taken from ``given`` (an
    explicit argument or command-line flag) when it is not None, else from the scenario's ``fit:``
    section, else from ``defaults`` (:data:`FIT_DEFAULTS`). Returns ``(settings, source)`` with
    ``source[key]`` one of ``"given"``, ``"scenario"``, ``"default"``.
    """
    given = given or {}
    defaults = {**FIT_DEFAULTS, **(defaults or {})}
    unknown = set(given) - set(FIT_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown fit settings: {sorted(unknown)}")
    spec = getattr(getattr(scenario, "spec", None), "fit", None)
    settings, source = {}, {}
    for key, default in defaults.items():
        from_scenario = getattr(spec, key, None) if spec is not None else None
        if given.get(key) is not None:
            settings[key], source[key] = given[key], "given"
        elif from_scenario is not None:
            settings[key], source[key] = from_scenario, "scenario"
        else:
            settings[key], source[key] = default, "default"
    return settings, source


def scenario_settings_note(settings: dict, source: dict) -> str:
    """``"from the scenario's fit: section: tune 300, ..."`` (the settings it supplied), or ``""``."""
    keys = [k for k, v in source.items() if v == "scenario"]
    return "from the scenario's fit: section: " + ", ".join(f"{k} {settings[k]}" for k in keys) if keys else ""


#: Convergence thresholds: max r-hat, min bulk ESS per chain, divergences allowed.
RHAT_MAX = 1.01
ESS_PER_CHAIN = 100
NOISE_PRIOR_SIGMA = 0.1


def initial_X(xp, initial, st: Structure):
    """Twin state rows from initial stage shares ``(P, S)`` (numpy or pytensor)."""
    people = st.population * st.persona_share[:, None] * initial  # (P, S)
    cust = st.customer_stages.astype(float)
    P, S = len(st.personas), len(st.stages)
    if xp is np:
        flat0 = (people * (1 - cust)).reshape(people.shape[:-2] + (P * S,))
        flat1 = (people * cust).reshape(people.shape[:-2] + (P * S,))
    else:
        flat0 = (people * (1 - cust)).reshape((P * S,))
        flat1 = (people * cust).reshape((P * S,))
    N = xp.concatenate([flat0, flat1], axis=-1)
    zeros = 0.0 * xp.expand_dims(N, -1) * np.zeros(2 * st.n_sources)
    return xp.concatenate([xp.expand_dims(N, -1), zeros], axis=-1)


def observed_inputs(scenario, data: ObservedData):
    """Per step: daily touches ``(T, C)``, edge and channel event multipliers; steps per week."""
    st = scenario.structure
    W = data.weeks
    touches = st.touches(data.plan.aligned(st.channels))  # (W, C) per day
    if data.impressions is not None:
        seen = ~np.isnan(data.impressions)
        touches = np.where(seen, np.nan_to_num(data.impressions) / 7.0, touches)
    em = np.stack([st.event_multipliers(w)[0] for w in range(W)])
    cm = np.stack([st.event_multipliers(w)[1] for w in range(W)])
    steps = 7 // st.dt
    return np.repeat(touches, steps, 0), np.repeat(em, steps, 0), np.repeat(cm, steps, 0), steps


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


def build_model(scenario, data: ObservedData, space: ParamSpace | None = None, paths=None,
                observed_as_data: bool = False, fused: bool | None = None, coords: str = "log"):
    """The PyMC model of a scenario's uncertain parameters given observed data.

    Returns the model; its free variables are the parameters of ``space`` (named as in the
    scenario's ``priors:``) plus one noise level per negative-binomial or normal observation.
    ``paths`` (a path table or :class:`journeysim.pathlik.PathCounts`) adds the path likelihood
    of :func:`journeysim.pathlik.add_path_likelihood`.
    ``observed_as_data`` puts the observed values of count and normal KPIs in ``pm.Data``
    containers named ``observed_<column>``, so a compiled model can be refitted on new values of
    the same shape without recompiling (nutpie: ``compiled.with_data(observed_<column>=...)``).
    ``fused`` runs the history as one compiled Op (:func:`journeysim._twin_kernel.twin_scan`, same
    numbers) instead of ``pytensor.scan``; ``None``: when numba is importable and the environment
    variable ``JOURNEYSIM_NO_FUSED`` is not set.
    ``coords``: the sampler's coordinates of parameters with a lognormal prior, ``log`` (PyMC's)
    or ``softplus`` (:func:`journeysim.priors.SoftplusScaled`): the same model either way.
    """
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    check_coords(coords)  # (even when no prior is lognormal)
    st = scenario.structure
    space = space or build_space(scenario)
    if len(space) == 0:
        raise InputError("no uncertain parameters: give priors: or leave it out for the defaults", "priors")
    W = data.weeks
    touches, em, cm, steps = observed_inputs(scenario, data)
    mats = TwinMatrices.build(st)
    dt = st.dt
    with pm.Model(coords={"week": data.dates}) as model:
        theta = []
        for name, prior in zip(space.names, space.priors):
            theta.append(pt.as_tensor(prior.args[0]) if prior.form == "fixed" else prior.pymc(name, coords=coords))
        params = space.to_params(pt, theta, scenario.params)
        X0 = initial_X(pt, pt.as_tensor(params.initial), st)
        fields = [pt.as_tensor(np.asarray(v, float)) if isinstance(v, np.ndarray | float | int | np.floating) else v
                  for v in params.as_dict().values()]

        def step(tc, e_m, c_m, X, *pvals):
            P_ = Params(*pvals)
            state, out = twin_step(pt, TwinState(X), tc, P_, st, e_m, c_m, dt, mats)
            return state.X, out["flow"], out["new"], out["repeat"], out["referrals"]

        from journeysim._twin_kernel import twin_scan, use_fused

        if use_fused(fused):
            Xs, flows, new, repeat, refs = twin_scan(pt.as_tensor(touches), pt.as_tensor(em), pt.as_tensor(cm), X0,
                                                     *fields[:5], structure=st, mats=mats, dt=dt)  # base..wom_rate
        else:
            (Xs, flows, new, repeat, refs), _ = pytensor.scan(
                step, sequences=[pt.as_tensor(touches), pt.as_tensor(em), pt.as_tensor(cm)],
                outputs_info=[X0, None, None, None, None], non_sequences=fields)
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
            elif obs.likelihood == "normal":
                cv = pm.HalfNormal(f"noise_{obs.column}", sigma=NOISE_PRIOR_SIGMA)
                pm.Normal(name, mu=mu_o, sigma=cv * pt.abs(mu_o) + 1e-9, observed=y)
            elif obs.likelihood == "binomial":
                n = obs.sample_size[ok].astype(np.int64)
                pm.Binomial(name, n=n, p=pt.clip(mu_o, 1e-9, 1 - 1e-9), observed=np.round(y * n).astype(np.int64))
        if paths is not None:
            from journeysim.pathlik import add_path_likelihood

            model._journeysim_paths = add_path_likelihood(pt, scenario, paths, params, X0, Xs, touches, em, cm)  # noqa: SLF001
    model._journeysim_space = space  # noqa: SLF001 - kept for calibrate()
    return model


@dataclass
class Fit:
    """The result of :func:`calibrate`: posterior draws, diagnostics and what produced them."""

    idata: Any
    space: ParamSpace
    diagnostics: pd.DataFrame
    converged: bool
    info: dict = field(default_factory=dict)

    @property
    def posterior(self) -> xr.Dataset:
        return self.idata.posterior

    def params(self, scenario, max_draws: int | None = None, seed: int = 0) -> tuple[Params, np.ndarray]:
        """Posterior draws as batched :class:`Params` (leading ``draw`` axis) and the draw values."""
        return posterior_params(self, scenario, max_draws=max_draws, seed=seed)

    def save(self, out: str | Path) -> None:
        """Write ``posterior.nc``, ``diagnostics.csv`` and ``fit.json`` under ``out`` (atomically)."""
        from journeysim.io import atomic_path, write_json, write_text

        out = Path(out)
        with atomic_path(out / "posterior.nc") as tmp:
            self.idata.to_netcdf(str(tmp), engine="h5netcdf")
        write_text(self.diagnostics.to_csv(), out / "diagnostics.csv")
        write_json({**self.info, "converged": self.converged, "parameters": list(self.space.names),
                    "priors": {n: str(p) for n, p in zip(self.space.names, self.space.priors)}}, out / "fit.json")


def _diagnostics(idata, names) -> tuple[pd.DataFrame, dict]:
    import arviz as az

    var_names = [v for v in idata.posterior.data_vars if not v.endswith("__")]  # (not the sampler's coordinates)
    summ = az.summary(idata, var_names=var_names, kind="all", hdi_prob=0.9)
    div = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
    chains = idata.posterior.sizes["chain"]
    stats = {
        "max_rhat": float(summ["r_hat"].max()),
        "min_ess_bulk": float(summ["ess_bulk"].min()),
        "min_ess_tail": float(summ["ess_tail"].min()),
        "divergences": div,
        "chains": int(chains),
        "draws": int(idata.posterior.sizes["draw"]),
    }
    stats["converged"] = bool(stats["max_rhat"] <= RHAT_MAX and stats["min_ess_bulk"] >= ESS_PER_CHAIN * chains
                              and div == 0)
    return summ, stats


def calibrate(scenario, data: ObservedData, *, draws: int | None = None, tune: int | None = None,
              chains: int | None = None, sampler: str | None = None, seed: int | None = None, method: str = "nuts",
              target_accept: float | None = None, progress: bool = False, priors: dict[str, str] | None = None,
              abc_agents: int = 2000, abc_draws: int | None = None, paths=None, executor: Any = None,
              coords: str | None = None, defaults: dict | None = None) -> Fit:
    """Calibrate a scenario's uncertain parameters on observed data.

    Parameters
    ----------
    scenario, data
        The scenario (with ``observations:`` and, optionally, ``priors:``) and its observed data
        (:func:`journeysim.data.read_observed`).
    draws, tune, chains, target_accept
        NUTS settings (default 1000, 1000, 4, 0.9).
    sampler
        ``nutpie`` (default, fast), ``pymc`` or ``numpyro`` (needs jax).
    coords
        The sampler's coordinates of lognormal parameters: ``log`` (default) or ``softplus``
        (:func:`journeysim.priors.SoftplusScaled`; fewer gradients per draw when the data pin
        the effects down, e.g. retail: see the README). Same model either way.

        Each of these six left as None is taken from the scenario's ``fit:`` section if it has the
        key, else ``defaults`` (a caller's own, e.g. ``journeysim plan``'s two chains), else
        :data:`FIT_DEFAULTS` (:func:`fit_settings`); ``Fit.info["settings_from"]`` records which.
    method
        ``nuts`` (the twin as likelihood) or ``abc`` (the agent engine with SMC; small sizes: see
        :mod:`journeysim.abcsmc`).
    abc_draws, abc_agents, executor
        ABC only: particles per chain (default ``draws``), agents per simulation, and where the
        agent runs go (:func:`journeysim.executor.get_executor`; default local processes).
    paths
        Optional observed path table (DataFrame) or :class:`journeysim.pathlik.PathCounts`
        covering the observed weeks: adds the likelihood of :mod:`journeysim.pathlik` (nuts only).

    Returns
    -------
    Fit
        Posterior, diagnostics, and ``converged`` (r-hat <= 1.01, bulk ESS >= 100 per chain, no
        divergences). A fit that did not converge warns loudly; forecasting refuses it unless told.
    """
    settings, settings_from = fit_settings(scenario, dict(draws=draws, tune=tune, chains=chains, sampler=sampler,
                                                          target_accept=target_accept, coords=coords), defaults)
    draws, tune, chains, sampler = (settings[k] for k in ("draws", "tune", "chains", "sampler"))
    target_accept, coords = settings["target_accept"], settings["coords"]
    if sampler not in SAMPLERS:
        from journeysim.errors import did_you_mean

        raise InputError(f"unknown sampler '{sampler}'" + did_you_mean(sampler, SAMPLERS), "sampler")
    check_coords(coords)  # (before any work; build_model checks it too)
    if not 0.0 < float(target_accept) < 1.0:
        raise InputError(f"target_accept must lie strictly between 0 and 1, got {target_accept}", "target_accept")
    for key, lowest in (("draws", 1), ("tune", 0), ("chains", 1)):
        if not isinstance(settings[key], (int, np.integer)) or settings[key] < lowest:
            raise InputError(f"{key} must be a whole number >= {lowest}, got {settings[key]!r}", key)
    seed = scenario.seed if seed is None else seed
    space = build_space(scenario, priors)
    t0 = time.perf_counter()
    if paths is not None and method != "nuts":
        raise InputError("a path table enters the fit through the twin: use method='nuts'", "paths")
    if method == "abc":
        from journeysim.abcsmc import calibrate_abc

        idata = calibrate_abc(scenario, data, space, draws=abc_draws or draws, agents=abc_agents, seed=seed,
                              chains=chains, progress=progress, executor=executor)
    elif method == "nuts":
        model = build_model(scenario, data, space, paths=paths, coords=coords)
        idata = _sample(model, sampler, draws, tune, chains, seed, target_accept, progress)
    else:
        raise InputError(f"unknown method '{method}'; use nuts or abc", "method")
    seconds = time.perf_counter() - t0
    summ, stats = _diagnostics(idata, space.names)
    info = {"seconds": seconds, "sampler": sampler if method == "nuts" else "smc", "method": method, "seed": seed,
            "coords": coords if method == "nuts" else None, "tune": tune if method == "nuts" else None,
            "target_accept": target_accept if method == "nuts" else None, "settings_from": settings_from,
            "scenario": scenario.name, "scenario_file": str(scenario.source) if scenario.source else None,
            "data_file": data.source, "weeks": data.weeks, "first_week": str(data.dates[0].date()), **stats}
    if method == "abc":
        info.update({k: idata.attrs.get(k) for k in ("abc_simulations", "abc_executor")})
    if paths is not None:
        from journeysim.pathlik import paths_info

        info["paths"] = paths_info(paths, model)
    fit = Fit(idata, space, summ, stats["converged"], info)
    if not fit.converged:
        warnings.warn(
            f"the fit did NOT converge (max r-hat {stats['max_rhat']:.3f}, min bulk ESS {stats['min_ess_bulk']:.0f}, "
            f"{stats['divergences']} divergences): run longer (--draws/--tune), tighten priors, or check the data. "
            f"Forecasts from it are refused unless you pass allow_unconverged / --allow-unconverged.",
            JourneysimWarning, stacklevel=2)
    return fit


def compile_nutpie(model):
    """nutpie's compiled model of a PyMC model (its numba backend), made reproducible.

    The same seed gives the same draws bit for bit whatever state numba's and PyTensor's compile
    caches are in: PyTensor's fast-math flags are off while it compiles (with them, a model compiled
    afresh and the same model loaded from the caches differed in the last bits, enough to send a
    chain elsewhere), and the twin kernels allow only fused multiply-adds (:mod:`journeysim._twin_kernel`).
    The numba backend is used even where JAX is installed: the fused twin has no JAX implementation.
    """
    import nutpie
    import pytensor

    with pytensor.config.change_flags(numba__fastmath=False):
        return nutpie.compile_pymc_model(model, backend="numba")


def _sample(model, sampler, draws, tune, chains, seed, target_accept, progress):
    import pymc as pm

    if sampler == "nutpie":
        import nutpie

        compiled = compile_nutpie(model)
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=min(chains, 2), seed=seed,
                              progress_bar=progress, target_accept=target_accept,
                              low_rank_modified_mass_matrix=True)
        return idata
    with model:
        if sampler == "numpyro":
            try:
                import numpyro  # noqa: F401
            except ImportError:
                raise InputError("the numpyro sampler needs numpyro and jax: pip install numpyro", "sampler") from None
            return pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed, nuts_sampler="numpyro",
                             target_accept=target_accept, progressbar=progress)
        return pm.sample(draws=draws, tune=tune, chains=chains, cores=min(chains, 2), random_seed=seed,
                         target_accept=target_accept, progressbar=progress, compute_convergence_checks=False)


def posterior_params(fit: Fit, scenario, *, max_draws: int | None = None, seed: int = 0) -> tuple[Params, np.ndarray]:
    """Batched :class:`Params` for posterior draws (chains stacked; thinned to ``max_draws`` evenly)."""
    post = fit.idata.posterior
    n = post.sizes["chain"] * post.sizes["draw"]
    idx = np.arange(n)
    if max_draws is not None and max_draws < n:
        idx = np.linspace(0, n - 1, max_draws).round().astype(int)
    cols = []
    for name, prior in zip(fit.space.names, fit.space.priors):
        if prior.form == "fixed":
            cols.append(np.full(idx.size, prior.args[0]))
        else:
            cols.append(post[name].values.reshape(-1)[idx])
    values = np.column_stack(cols) if cols else np.zeros((idx.size, 0))
    params = fit.space.to_params(np, [values[:, j] for j in range(values.shape[1])], scenario.params)
    params = params.broadcast((idx.size,))
    return params, values


def posterior_predictive(fit: Fit, scenario, data: ObservedData, *, max_draws: int = 200, seed: int = 0) -> xr.Dataset:
    """Posterior predictive of every observed series: expected value and a noisy replicate per draw.

    Runs the numpy twin over the history for ``max_draws`` posterior draws at once.
    """
    from journeysim.observe import weekly_arrays
    from journeysim.twin import Twin

    params, _ = posterior_params(fit, scenario, max_draws=max_draws)
    n = np.asarray(params.wom_rate).shape[0]
    sc = scenario.replace(weeks=data.weeks, plan=data.plan) if scenario.weeks != data.weeks else scenario.replace(plan=data.plan)
    ds = Twin(sc, params=params, plan=data.plan).run(batch_dims=("draw",), batch_coords={"draw": np.arange(n)})
    arrays = weekly_arrays(ds)
    rng = np.random.default_rng(seed)
    post = fit.idata.posterior
    out = {}
    st = scenario.structure
    for obs in data.observations:
        mask = np.array([s in obs.stages for s in st.stages], float)
        mu = expected_kpi(np, arrays, obs.measures, mask, st.population, obs.scale)  # (draw, W)
        noise_name = f"noise_{obs.column}"
        if noise_name in post:
            allc = post[noise_name].values.reshape(-1)
            cv = allc[np.linspace(0, allc.size - 1, n).round().astype(int)][:, None]
        else:
            cv = 0.0
        if obs.likelihood in ("negbin", "normal"):
            rep = np.stack([sample_kpi(rng, mu[i], obs.likelihood, noise=max(float(np.ravel(cv)[i] if np.ndim(cv) else cv), 1e-6))
                            for i in range(n)])
        else:
            rep = np.stack([sample_kpi(rng, mu[i], obs.likelihood, sample_size=obs.sample_size) for i in range(n)])
        out[f"{obs.column}_expected"] = (("draw", "time"), mu)
        out[f"{obs.column}_replicate"] = (("draw", "time"), rep)
        out[f"{obs.column}_observed"] = (("time",), obs.values)
    return xr.Dataset(out, coords={"time": data.dates, "draw": np.arange(n)})


def load_fit(fit_dir: str | Path, scenario) -> Fit:
    """Read a fit saved by :meth:`Fit.save` (the scenario gives the parameter space)."""
    import arviz as az

    fit_dir = Path(fit_dir)
    meta_path = fit_dir / "fit.json"
    post_path = fit_dir / "posterior.nc"
    for p in (meta_path, post_path):
        if not p.exists():
            raise InputError(f"no {p.name}: is this the --out directory of `journeysim fit`?", str(fit_dir))
    info = json.loads(meta_path.read_text())
    idata = az.from_netcdf(str(post_path))
    space = build_space(scenario, info.get("priors"))
    missing = [n for n, p in zip(space.names, space.priors) if p.form != "fixed" and n not in idata.posterior]
    if missing:
        raise InputError(f"the posterior has no draws of {', '.join(missing)}: it was fitted with another scenario",
                         str(fit_dir))
    diag_path = fit_dir / "diagnostics.csv"
    diag = pd.read_csv(diag_path, index_col=0) if diag_path.exists() else pd.DataFrame()
    return Fit(idata, space, diag, bool(info.get("converged", False)), info)


def require_converged(fit: Fit, allow: bool) -> None:
    """Refuse a fit that did not converge unless ``allow``."""
    if not fit.converged and not allow:
        i = fit.info
        raise ConvergenceError(
            f"the fit did not converge (max r-hat {i.get('max_rhat', float('nan')):.3f}, min bulk ESS "
            f"{i.get('min_ess_bulk', float('nan')):.0f}, {i.get('divergences', '?')} divergences); "
            "refit with more draws, or pass --allow-unconverged to forecast anyway")
