"""Likelihood-free calibration: PyMC's ``pm.Simulator`` and sequential Monte Carlo on the agents.

For what the twin cannot represent, the agent engine itself is calibrated: its weekly KPI series,
each divided by the mean of the observed series, are the summary statistics; ``pm.Simulator``
scores them with a Gaussian kernel of width ``epsilon`` and ``pm.sample_smc`` tempers from the
prior to that pseudo-posterior.

**The simulations run on the executor** (:mod:`journeysim.scale.executor`). PyMC's SMC kernels evaluate
the likelihood of a stage's particles one after another; :class:`ExecutorIMH` (PyMC's independent
Metropolis-Hastings kernel, unchanged otherwise) hands each batch of particles to the executor the
moment the batch exists (the initial population, then every set of proposals) and the simulator
reads the results back, so the agent runs of a stage spread over all local cores or a Dask cluster.

**Same seed, same posterior, whichever executor.** A particle's agent run draws its random numbers
from a stream keyed by the seed and by the particle itself (a hash of its coordinates), never by
the order in which particles are evaluated or by the worker that runs them.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from typing import Any

import numpy as np

from journeysim.inference.priors import ParamSpace
from journeysim.io.observed import ObservedData

__all__ = ['calibrate_abc', 'abc_summaries', 'particle_replication']


def particle_replication(particle: np.ndarray) -> int:
    """Replication number of a particle's agent run: a stable 63-bit hash of its coordinates."""
    digest = hashlib.blake2b(np.ascontiguousarray(particle, dtype=np.float64).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class _Problem:
    """What one agent run needs (picklable, sent to workers once per batch)."""

    def __init__(self, scenario, data: ObservedData, space: ParamSpace, seed: int):
        st = scenario.structure
        self.scenario = scenario
        self.space = space
        self.seed = int(seed)
        self.obs = [(o.measures, np.array([s in o.stages for s in st.stages], float), o.scale) for o in data.observations]
        self.scales = _scales(data)
        self.population = st.population

    def free(self) -> list[str]:
        return [n for n, p in zip(self.space.names, self.space.priors) if p.form != "fixed"]

    def params(self, free_values):
        vals = []
        it = iter(free_values)
        for p in self.space.priors:
            vals.append(p.args[0] if p.form == "fixed" else float(next(it)))
        return self.space.to_params(np, vals, self.scenario.params)

    def simulate(self, free_values, replication: int) -> np.ndarray:
        from journeysim.engine.simulation import Simulation
        from journeysim.model.observe import expected_kpi, weekly_arrays

        ds = Simulation(self.scenario, params=self.params(free_values), seed=self.seed,
                        replication=int(replication)).run()
        arrays = weekly_arrays(ds)
        out = [np.asarray(expected_kpi(np, arrays, m, mask, self.population, scale)) / s
               for (m, mask, scale), s in zip(self.obs, self.scales)]
        return np.concatenate(out)


def _scales(data: ObservedData) -> np.ndarray:
    """Each observed KPI series' mean absolute value (the unit of its summary statistics)."""
    return np.array([max(float(np.nanmean(np.abs(o.values))), 1e-9) for o in data.observations])


def abc_summaries(data: ObservedData) -> np.ndarray:
    """The observed summary statistics: each KPI series divided by its mean (missing weeks as 0)."""
    return np.concatenate([np.nan_to_num(o.values, nan=0.0) / s for o, s in zip(data.observations, _scales(data))])


def _run_batch(task) -> list[np.ndarray]:
    """Agent runs of a chunk of particles (top level, so worker processes can run it)."""
    problem, chunk = task
    return [problem.simulate(values, rep) for values, rep in chunk]


class _Cache:
    """Simulated summaries of the current batch of particles, keyed by the particle's bytes."""

    def __init__(self):
        self.local = threading.local()
        self.results: dict[bytes, np.ndarray] = {}
        self.hits = 0
        self.simulations = 0


class _Keyed:
    """The kernel's likelihood function, telling the simulator which particle it is scoring."""

    def __init__(self, fn, cache: _Cache):
        self.fn = fn
        self.cache = cache

    def __call__(self, sample):
        self.cache.local.key = np.ascontiguousarray(sample, dtype=np.float64).tobytes()
        try:
            return self.fn(sample)
        finally:
            self.cache.local.key = None


class _PrefetchingProposal:
    """The IMH proposal distribution: draws as before, then simulates the whole batch at once."""

    def __init__(self, dist, kernel: ExecutorIMH):  # noqa: F821 - built by executor_imh()
        self.dist = dist
        self.kernel = kernel

    def rvs(self, *args, **kwargs):
        from pymc.pytensorf import floatX

        out = self.dist.rvs(*args, **kwargs)
        arr = np.asarray(floatX(out))
        self.kernel._prefetch(arr.reshape(len(arr), -1))
        return out

    def __getattr__(self, name):
        return getattr(self.dist, name)


@functools.cache
def _make_kernel_class():
    from pymc.smc.kernels import IMH

    class ExecutorIMH(IMH):
        """PyMC's IMH kernel whose particles are simulated in batches on an executor.

        Extra keyword arguments (through ``pm.sample_smc(kernel=ExecutorIMH, ...)``):
        ``prefetch(particles)`` simulates a batch of particles (value-space arrays) into the shared
        cache, and ``cache`` is that :class:`_Cache`.
        """

        def __init__(self, *args, prefetch=None, cache=None, **kwargs):
            super().__init__(*args, **kwargs)
            self._prefetch_fn = prefetch
            self._cache = cache

        def _prefetch(self, particles: np.ndarray) -> None:
            if self._prefetch_fn is not None:
                self._prefetch_fn(particles)

        def set_rng(self, rng):
            if isinstance(self.likelihood_logp_func, _Keyed):  # a later chain: rewrap PyMC's own function
                self.likelihood_logp_func = self.likelihood_logp_func.fn
            super().set_rng(rng)
            if self._cache is not None:
                self.likelihood_logp_func = _Keyed(self.likelihood_logp_func, self._cache)

        def initialize_population(self):
            from pymc.blocking import DictToArrayBijection

            pop = super().initialize_population()
            if not self.start:  # the points _initialize_kernel is about to score, in its own layout
                rows = [DictToArrayBijection.map({v.name: pop[v.name][i] for v in self.variables}).data
                        for i in range(self.draws)]
                self._prefetch(np.asarray(rows, dtype=np.float64))
            return pop

        def tune(self):
            super().tune()
            self.proposal_dist = _PrefetchingProposal(self.proposal_dist, self)

    return ExecutorIMH


def __getattr__(name):
    if name == "ExecutorIMH":
        return _make_kernel_class()
    raise AttributeError(name)


def calibrate_abc(scenario, data: ObservedData, space: ParamSpace, *, draws: int = 300, agents: int = 2000,
                  seed: int = 0, chains: int = 2, epsilon: float = 0.05, executor: Any = None,
                  progress: bool = False, chunk: int | None = None):
    """SMC-ABC of the agent engine on the observed KPI series; returns ArviZ ``InferenceData``.

    Parameters
    ----------
    draws
        Particles per chain (the posterior draws of each chain).
    agents
        Agents per simulation (capped at the scenario's).
    epsilon
        Width of the Gaussian kernel on the scaled KPI series.
    executor
        Where the agent runs go (:func:`journeysim.scale.executor.get_executor`; ``None``: the default,
        local processes for anything but tiny jobs).
    chunk
        Particles per executor task (default: a batch split into four tasks per worker).
    """
    import pymc as pm
    import pytensor

    from journeysim.scale.executor import get_executor

    st = scenario.structure
    sc = scenario.over(data, agents=min(int(agents), st.agents))
    problem = _Problem(sc, data, space, seed)
    observed = abc_summaries(data)
    names = problem.free()
    cache = _Cache()
    # seconds of agent work per simulation, roughly (the engine does some 2e7 agent-days a second)
    per_sim = sc.structure.agents * data.weeks * 7 / 2e7 + 0.01
    ex_holder: dict[str, Any] = {}
    with pm.Model() as model:
        rvs = [p.pymc(n) for n, p in zip(space.names, space.priors) if p.form != "fixed"]

        def simulate(rng, *theta_and_size):
            key = getattr(cache.local, "key", None)
            if key is not None and key in cache.results:
                cache.hits += 1
                return cache.results[key]
            # a particle scored outside a prefetched batch: simulate it here, keyed the same way
            theta = [float(np.asarray(t).ravel()[0]) for t in theta_and_size[: len(names)]]
            rep = particle_replication(np.frombuffer(key)) if key is not None else particle_replication(np.array(theta))
            cache.simulations += 1
            return problem.simulate(theta, rep)

        pm.Simulator("kpis", simulate, params=rvs, distance="gaussian", sum_stat="identity", epsilon=epsilon,
                     observed=observed)
        # value-space particle -> the free parameters' values (untransformed), in ``names`` order
        value_vars = model.value_vars
        untrans = model.unobserved_value_vars
        by_name = {v.name: v for v in untrans}
        outs = [by_name[n] for n in names]
        to_values = pytensor.function(value_vars, outs, on_unused_input="ignore")

    from pymc.blocking import DictToArrayBijection

    point_info = None

    def prefetch(particles: np.ndarray) -> None:
        nonlocal point_info
        if point_info is None:
            ip = model.initial_point()
            point_info = DictToArrayBijection.map({v.name: ip[v.name] for v in value_vars}).point_map_info
        items = []
        keys = []
        for row in particles:
            row = np.ascontiguousarray(row, dtype=np.float64)
            point = DictToArrayBijection.rmap(pm.blocking.RaveledVars(row, point_info))
            theta = [float(np.asarray(x).ravel()[0]) for x in to_values(*[point[v.name] for v in value_vars])]
            keys.append(row.tobytes())
            items.append((theta, particle_replication(row)))
        if "ex" not in ex_holder:
            ex_holder["ex"] = get_executor(executor, work_seconds=per_sim * len(items))
        ex = ex_holder["ex"]
        size = chunk or max(1, -(-len(items) // (4 * max(1, getattr(ex, "workers", 1)))))
        tasks = [(problem, items[i:i + size]) for i in range(0, len(items), size)]
        # fresh, aligned copies: arrays that crossed a process boundary may view a misaligned buffer
        results = [np.array(r, dtype=np.float64) for part in ex.map(_run_batch, tasks) for r in part]
        cache.results = dict(zip(keys, results))
        cache.simulations += len(results)

    kernel = _make_kernel_class()
    with model:
        idata = pm.sample_smc(draws=draws, chains=chains, cores=1, kernel=kernel, random_seed=seed,
                              progressbar=progress, compute_convergence_checks=False, prefetch=prefetch,
                              cache=cache)
    ex = ex_holder.get("ex")
    idata.attrs["abc_simulations"] = cache.simulations
    idata.attrs["abc_cache_hits"] = cache.hits
    idata.attrs["abc_executor"] = repr(ex) if ex is not None else "inline"
    return idata
