"""Bayesian calibration: the mean-field twin as a differentiable PyMC likelihood.

The PyMC model runs :func:`journeysim.twin.step.twin_step` (the same function the numpy twin runs)
with ``xp = pytensor.tensor`` inside a ``scan`` over the observed history, maps its weekly outputs
to each observed KPI with :func:`journeysim.model.observe.expected_kpi`, and scores them with the
observation's likelihood. NUTS samples it (nutpie by default, PyMC's own or numpyro on request).

For what the twin cannot represent, ``method="abc"`` calibrates the agent engine itself with
PyMC's ``pm.Simulator`` and sequential Monte Carlo on the KPI series (small sizes only).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from journeysim.errors import InputError, JourneysimWarning
from journeysim.inference.likelihood import build_model
from journeysim.inference.posterior import ESS_PER_CHAIN, Fit, convergence_advice, convergence_diagnostics
from journeysim.inference.priors import build_space, check_coords
from journeysim.io.observed import ObservedData

__all__ = ['calibrate', 'SAMPLERS', 'fit_settings', 'FIT_DEFAULTS', 'compile_nutpie', 'extension_settings', 'EXTEND_RHAT', 'EXTEND_MAX', 'EXTEND_DIVERGENT']


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


def calibrate(scenario, data: ObservedData, *, draws: int | None = None, tune: int | None = None,
              chains: int | None = None, sampler: str | None = None, seed: int | None = None, method: str = "nuts",
              target_accept: float | None = None, progress: bool = False, priors: dict[str, str] | None = None,
              abc_agents: int = 2000, abc_draws: int | None = None, paths=None, executor: Any = None,
              coords: str | None = None, defaults: dict | None = None, extend: bool | None = None) -> Fit:
    """Calibrate a scenario's uncertain parameters on observed data.

    Parameters
    ----------
    scenario, data
        The scenario (with ``observations:`` and, optionally, ``priors:``) and its observed data
        (:func:`journeysim.io.observed.read_observed`).
    draws, tune, chains, target_accept
        NUTS settings (default 1000, 1000, 4, 0.9).
    sampler
        ``nutpie`` (default, fast), ``pymc`` or ``numpyro`` (needs jax).
    coords
        The sampler's coordinates of lognormal parameters: ``log`` (default) or ``softplus``
        (:func:`journeysim.inference.priors.SoftplusScaled`; fewer gradients per draw when the data pin
        the effects down, e.g. retail: see the README). Same model either way.

        Each of these six left as None is taken from the scenario's ``fit:`` section if it has the
        key, else ``defaults`` (a caller's own, e.g. ``journeysim plan``'s two chains), else
        :data:`FIT_DEFAULTS` (:func:`fit_settings`); ``Fit.info["settings_from"]`` records which.
    method
        ``nuts`` (the twin as likelihood) or ``abc`` (the agent engine with SMC; small sizes: see
        :mod:`journeysim.inference.abc`).
    abc_draws, abc_agents, executor
        ABC only: particles per chain (default ``draws``), agents per simulation, and where the
        agent runs go (:func:`journeysim.scale.executor.get_executor`; default local processes).
    paths
        Optional observed path table (DataFrame) or :class:`journeysim.inference.pathlik.PathCounts`
        covering the observed weeks: adds the likelihood of :mod:`journeysim.inference.pathlik` (nuts only).
    extend
        When the chains agree (r-hat at most :data:`EXTEND_RHAT`) but give too few effective draws
        or a few divergences, sample the compiled model once more with more draws or a higher target
        acceptance (:func:`extension_settings`). ``None`` (default): only when ``draws`` was not given
        (a default or the scenario's ``fit:`` should converge; draws a caller asked for are kept).
        ``Fit.info["extended_from"]`` records the first run's settings and diagnostics.

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
    compiled = None
    if method == "abc":
        from journeysim.inference.abc import calibrate_abc

        idata = calibrate_abc(scenario, data, space, draws=abc_draws or draws, agents=abc_agents, seed=seed,
                              chains=chains, progress=progress, executor=executor)
    elif method == "nuts":
        model = build_model(scenario, data, space, paths=paths, coords=coords)
        idata, compiled = _sample(model, sampler, draws, tune, chains, seed, target_accept, progress)
    else:
        raise InputError(f"unknown method '{method}'; use nuts or abc", "method")
    summ, stats = convergence_diagnostics(idata, space.names)
    extended_from = None
    if method == "nuts" and compiled is not None and (settings_from["draws"] != "given" if extend is None else extend):
        again = extension_settings(stats, draws, target_accept)
        if again:
            announce_extension(chains, again[0], tune, stats["min_ess_bulk"], stats["divergences"], again[1])
            extended_from = {"draws": draws, "target_accept": target_accept, "min_ess_bulk": stats["min_ess_bulk"],
                             "divergences": stats["divergences"]}
            draws, target_accept = again
            idata = _nutpie(compiled, draws, tune, chains, seed, target_accept, progress)
            summ, stats = convergence_diagnostics(idata, space.names)
    seconds = time.perf_counter() - t0
    info = {"seconds": seconds, "sampler": sampler if method == "nuts" else "smc", "method": method, "seed": seed,
            "coords": coords if method == "nuts" else None, "tune": tune if method == "nuts" else None,
            "target_accept": target_accept if method == "nuts" else None, "settings_from": settings_from,
            "scenario": scenario.name, "scenario_file": str(scenario.source) if scenario.source else None,
            "data_file": data.source, "weeks": data.weeks, "first_week": str(data.dates[0].date()), **stats}
    if extended_from is not None:
        info["extended_from"] = extended_from
    if method == "abc":
        info.update({k: idata.attrs.get(k) for k in ("abc_simulations", "abc_executor")})
    if paths is not None:
        from journeysim.inference.pathlik import paths_info

        info["paths"] = paths_info(paths, model)
    if not stats["converged"] and method == "nuts":
        info["advice"] = convergence_advice(idata, summ, stats)
    fit = Fit(idata, space, summ, stats["converged"], info)
    if not fit.converged:
        advice = "; ".join(info.get("advice") or ["run longer (--draws/--tune), tighten priors, or check the data"])
        warnings.warn(
            f"the fit did NOT converge (max r-hat {stats['max_rhat']:.3f}, min bulk ESS {stats['min_ess_bulk']:.0f}, "
            f"{stats['divergences']} divergences). What to try: {advice}. "
            f"Forecasts from it are refused unless you pass allow_unconverged / --allow-unconverged.",
            JourneysimWarning, stacklevel=2)
    return fit


def compile_nutpie(model):
    """nutpie's compiled model of a PyMC model (its numba backend), made reproducible.

    The same seed gives the same draws bit for bit whatever state numba's and PyTensor's compile
    caches are in: PyTensor's fast-math flags are off while it compiles (with them, a model compiled
    afresh and the same model loaded from the caches differed in the last bits, enough to send a
    chain elsewhere), and the twin kernels allow only fused multiply-adds (:mod:`journeysim.inference.ops`).
    The numba backend is used even where JAX is installed: the fused twin has no JAX implementation.

    Everything compiled is cached on disk: the twin kernels by numba, the model's graph and nutpie's
    callbacks by PyTensor (keyed by the graph, its data included), so a model compiled before loads
    in seconds (retail: 4-5 s instead of 35-45 s; :mod:`journeysim.inference.special` and
    :mod:`journeysim.inference.nutpie_cache` say what stood in the way).
    """
    import pytensor

    from journeysim.inference import special  # noqa: F401 - a cachable psi for the negative binomial's gradient
    from journeysim.inference.nutpie_cache import compile_pymc_cached

    with pytensor.config.change_flags(numba__fastmath=False):
        return compile_pymc_cached(model)


#: Largest r-hat at which a fit is sampled again (above it, the chains disagree and more of the same
#: draws rarely settles them: :func:`journeysim.inference.posterior.convergence_advice` says what to do).
EXTEND_RHAT = 1.03
#: At most this many times the draws in a second run.
EXTEND_MAX = 4.0
#: At most this share of divergent draws for a second run (a few: a higher target acceptance cures them).
EXTEND_DIVERGENT = 0.01


def extension_settings(stats: dict, draws: int, target_accept: float) -> tuple[int, float] | None:
    """Draws per chain and target acceptance of a second run that should converge, for a fit whose
    chains agree but that fell short of 100 effective draws per chain or had a few divergences
    (``None``: it converged, or a second run of the same kind would not help).

    Too few effective draws: as many more as should reach them, with a margin of 25% (ESS grows
    noisily), at least 1.5x and at most :data:`EXTEND_MAX` times as many, in hundreds. Divergences
    (at most :data:`EXTEND_DIVERGENT` of the draws): the target acceptance halfway to 1.
    """
    need = ESS_PER_CHAIN * stats["chains"]
    ess, div = float(stats["min_ess_bulk"]), int(stats.get("divergences", 0))
    if stats.get("converged") or stats["max_rhat"] > EXTEND_RHAT or div > EXTEND_DIVERGENT * draws * stats["chains"]:
        return None
    more = draws
    if ess < need:
        factor = min(EXTEND_MAX, max(1.5, 1.25 * need / max(ess, 1.0)))
        more = int(np.ceil(factor * draws / 100.0) * 100)
    accept = round(1.0 - (1.0 - target_accept) / 2.0, 4) if div else target_accept
    return (more, accept) if (more, accept) != (draws, target_accept) else None


def announce_extension(chains: int, draws: int, tune: int, ess: float, divergences: int, target_accept: float) -> None:
    """Called before a second run's sampling (the command line's progress display wraps it)."""


def _nutpie(compiled, draws, tune, chains, seed, target_accept, progress):
    import nutpie

    return nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=min(chains, 2), seed=seed,
                         progress_bar=progress, target_accept=target_accept, low_rank_modified_mass_matrix=True)


def _sample(model, sampler, draws, tune, chains, seed, target_accept, progress):
    """The posterior, and the compiled model for another run (None but for nutpie)."""
    import pymc as pm

    if sampler == "nutpie":
        compiled = compile_nutpie(model)
        return _nutpie(compiled, draws, tune, chains, seed, target_accept, progress), compiled
    with model:
        if sampler == "numpyro":
            try:
                import numpyro  # noqa: F401
            except ImportError:
                raise InputError("the numpyro sampler needs numpyro and jax: pip install numpyro", "sampler") from None
            return pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed, nuts_sampler="numpyro",
                             target_accept=target_accept, progressbar=progress), None
        return pm.sample(draws=draws, tune=tune, chains=chains, cores=min(chains, 2), random_seed=seed,
                         target_accept=target_accept, progressbar=progress, compute_convergence_checks=False), None
