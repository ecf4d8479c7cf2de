"""The agent engine: a SimPy calendar driving customers held in numpy arrays.

A :class:`Simulation` keeps one row per agent in a few arrays (persona and stage as one group
code, a transition clock, exposure memory per source, one bit per source that reached the agent
this week, day of last purchase) and runs SimPy processes over them. Each day has phases,
ordered by their offset in the day:

======  ==================  ==========================================================
offset  process             what it does
======  ==================  ==========================================================
0.00    ``schedule``        scheduled events, decay of exposure memory
0.10    ``channel:<name>``  one per channel: spend -> touches -> agents' memory
0.20    ``word_of_mouth``   recommenders' touches
0.50    ``journey``         hazards from memory, clocks, stage moves, purchases
0.90    ``recorder``        weekly totals, invariant checks
======  ==================  ==========================================================

A user adds behaviour with :meth:`Simulation.add_process`: a generator function taking the
simulation, free to wait on ``sim.env`` and to change ``sim.hazard_multiplier``,
``sim.effect_multiplier`` or ``sim.touch_multiplier`` (see ``notebooks/04_extend.ipynb``).

Two methods are hooks for subclasses that change *where the random numbers come from*, not what
is done with them: ``_touch(k, rng, w, m, share, week, keep)`` draws which agents channel ``k``
reaches this step, and ``_move(movers, base_eff, B, rng, week)`` draws the moves of the agents
whose clocks ran out. Both receive the engine's named stream ``rng`` and must return what the base
methods return. :class:`journeysim.engine.crn.CRNSimulation` overrides them with counter-based
draws keyed by (agent, event count), so that two plans run on the same seed share every random
number that their difference does not change (common random numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np
import simpy
import xarray as xr

from journeysim.engine import _kernels
from journeysim.engine.events import EventLog
from journeysim.engine.state import quota
from journeysim.errors import InputError, JourneysimError
from journeysim.model.dynamics import Params, delivery, edge_multipliers, hazard_terms, wom_touches
from journeysim.model.output import WeeklyRecord, to_dataset
from journeysim.model.plan import Plan
from journeysim.model.rng import Streams
from journeysim.model.scenario import Scenario

__all__ = ['Simulation', 'simulate', 'InvariantError']


#: Re-scale exposure memory once its pending decay factor falls below this.
_RESCALE = np.float32(1e-4)
#: A channel draws its candidates among the agents it targets (after one pass over all agents to
#: list them) when drawing among all agents would waste more than this many candidates per agent.
_POOL_MIN_WASTE = 0.25


class InvariantError(JourneysimError):
    """People were not conserved, a count went negative, or a move broke the journey graph."""


class Simulation:
    """One stochastic run of a scenario with the agent engine.

    Parameters
    ----------
    scenario
        A loaded :class:`~journeysim.Scenario`.
    params
        Parameters to use instead of the scenario's own (e.g. one posterior draw).
    plan
        Media plan to use instead of the scenario's own.
    seed, replication
        The run's random streams derive from ``(seed, replication)``; default seed: the scenario's.
    log_agents
        Record the individual journeys of this many agents (a random sample); ``None``: none,
        ``-1``: all.
    max_events
        Upper bound of the event log's size.
    check_every
        Recount every stage from scratch each this many weeks (conservation check).
    progress
        Show a progress bar.
    initial_state
        Start from a saved state (as returned in ``sim.state_``) instead of the scenario's initial shares.
    start_day
        Day index of the first simulated day (for forecasts continuing a history).

    Examples
    --------
    >>> from journeysim import load_scenario
    >>> sc = load_scenario({"market": {"population": 1e4, "agents": 1000, "weeks": 3}})
    >>> ds = Simulation(sc).run()
    >>> int(ds.stage_size.isel(time=-1).sum())
    10000
    """

    def __init__(self, scenario: Scenario, *, params: Params | None = None, plan: Plan | None = None,
                 seed: int | None = None, replication: int = 0, log_agents: int | None = None,
                 max_events: int = 20_000_000, check_every: int = 4, progress: bool = False,
                 initial_state: dict | None = None, start_day: int = 0, use_numba: bool | None = None):
        self.scenario = scenario
        self.params = params if params is not None else scenario.params
        self.plan = plan
        self.seed = scenario.seed if seed is None else seed
        self.replication = replication
        self.log_agents = log_agents
        self.max_events = max_events
        self.check_every = check_every
        self.progress = progress
        self.initial_state = initial_state
        self.start_day = start_day
        self.use_numba = use_numba
        self._user: list[tuple[Callable[..., Generator], tuple]] = []

    # -- public hooks ----------------------------------------------------------------------
    def add_process(self, fn: Callable[..., Generator], *args) -> Simulation:
        """Run ``fn(sim, *args)`` as a SimPy process alongside the built-in ones."""
        if not callable(fn):
            raise InputError(f"{fn!r} is not callable", "add_process")
        self._user.append((fn, args))
        return self

    @property
    def day(self) -> int:
        """Current day, counted from the scenario's start."""
        return self.start_day + int(self.env.now)

    @property
    def week(self) -> int:
        """Current week (0-based) of this run."""
        return int(self.env.now) // 7

    def stage_counts(self) -> np.ndarray:
        """People per persona and stage now, ``(P, S)``."""
        return self._n.reshape(self._P, self._S) * self._weight

    def edge(self, name: str) -> int:
        """Index of a transition by name."""
        return self.scenario.journey.edge_index(name, "edge")

    def rng(self, name: str) -> np.random.Generator:
        """A random stream of this run, for user processes (its own name, so it disturbs no other)."""
        return self._streams[f"user:{name}"]

    def move(self, agents: np.ndarray, to_stage: str) -> None:
        """Force agents into a stage (e.g. a recall wipes loyalty); not limited to journey edges."""
        s = self.scenario.journey.stage_index(to_stage, "move")
        agents = np.asarray(agents, dtype=np.intp)
        old = self.group[agents].astype(np.intp)
        new = (old // self._S) * self._S + s
        self._n -= np.bincount(old, minlength=self._G)
        self._n += np.bincount(new, minlength=self._G)
        self.group[agents] = new.astype(self.group.dtype)

    # -- run -------------------------------------------------------------------------------
    def run(self) -> xr.Dataset:
        """Run to the end of the horizon; return the weekly dataset (also kept in ``dataset_``)."""
        sc = self.scenario
        st = sc.structure
        plan = self.plan if self.plan is not None else sc.plan
        self._spend = plan.aligned(st.channels, None, plan.name)
        weeks = self._spend.shape[0]
        self._init_state()
        self.env = env = simpy.Environment()
        self._weeks = weeks
        self._rec = WeeklyRecord(weeks, st)
        self.log_ = EventLog(self._n_logged, self.max_events) if self._n_logged else None
        self._bar = None
        if self.progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=weeks, unit="week", desc=sc.name, leave=False)
        env.process(self._schedule())
        for k in range(len(st.channels)):
            env.process(self._channel(k))
        env.process(self._word_of_mouth())
        env.process(self._journey())
        env.process(self._recorder())
        for fn, args in self._user:
            env.process(fn(self, *args))
        try:
            env.run(until=weeks * 7)
        finally:
            if self._bar is not None:
                self._bar.close()
        self.state_ = self._export_state()
        self.dataset_ = to_dataset(self._rec, sc, engine="agents", plan_name=plan.name,
                                   attrs={"seed": self.seed, "replication": self.replication,
                                          "agents": int(self._N), "start_day": self.start_day})
        return self.dataset_

    def events(self):
        """The event log as a DataFrame (run with ``log_agents``)."""
        if self.log_ is None:
            raise JourneysimError("no event log: run the simulation with log_agents=...")
        st = self.scenario.structure
        import datetime as dt

        start = self.scenario.start + dt.timedelta(days=self.start_day)
        return self.log_.to_frame(st.channels + ("word_of_mouth",), st.stages, start)

    # -- state -----------------------------------------------------------------------------
    def _init_state(self):
        sc = self.scenario
        st = sc.structure
        P, S = len(st.personas), len(st.stages)
        K = st.n_sources
        self._P, self._S, self._K, self._G = P, S, K, P * S
        self._streams = Streams(self.seed, self.replication)
        if self.initial_state is not None:
            s = self.initial_state
            self.group = s["group"].astype(_code_type(P * S))
            self.clock = s["clock"].copy()
            self.memory = s["memory"].copy()
            self.last_purchase = s["last_purchase"].copy()
            N = self.group.size
            self._weight = s["weight"]
        else:
            N = st.agents
            self._weight = st.population / N
            rng = self._streams["init"]
            # exact quotas per persona and stage (largest remainder), then shuffled
            share = (st.persona_share[:, None] * np.asarray(self.params.initial)).ravel()
            counts = quota(share, N)
            group = np.repeat(np.arange(P * S, dtype=_code_type(P * S)), counts)
            rng.shuffle(group)
            self.group = group
            self.clock = rng.standard_exponential(N, dtype=np.float32)
            self.memory = np.zeros((K, N), np.float32)
            stage = group % S
            self.last_purchase = np.where(st.customer_stages[stage], -(10**6), -1).astype(np.int32)
        self._N = N
        # bit k % 8 of reached[k // 8, i]: source k touched agent i this week (cleared weekly)
        self.reached = np.zeros(((K + 7) // 8, N), np.uint8)
        self._reached_week = -1
        self._index_type = np.int32 if N - 1 <= np.iinfo(np.int32).max else np.int64  # of candidate draws
        self._n = np.bincount(self.group, minlength=P * S).astype(np.int64)
        self._scale = np.ones(K, np.float32)
        self._n_logged = N if self.log_agents == -1 else min(int(self.log_agents or 0), N)
        self.hazard_multiplier = np.ones((P, len(st.edges)))
        self.effect_multiplier = np.ones((K, P))
        self.touch_multiplier = np.ones(K)
        # tables of edges out of each stage, padded with -1
        out = [np.flatnonzero(st.src == s) for s in range(S)]
        width = max(1, max(len(o) for o in out))
        self._out = np.full((S, width), -1, np.intp)
        for s, o in enumerate(out):
            self._out[s, : len(o)] = o
        carry = np.asarray(self.params.carryover, dtype=np.float64)
        self._decay = (carry ** st.dt).astype(np.float32)
        self._q = np.ones(K)
        self._touches_today = np.zeros(K)

    def _export_state(self) -> dict:
        return {"group": self.group.copy(), "clock": self.clock.copy(),
                "memory": self.memory * self._scale[:, None], "last_purchase": self.last_purchase.copy(),
                "weight": self._weight, "day": self.start_day + self._weeks * 7}

    # -- processes -------------------------------------------------------------------------
    def _schedule(self):
        """Start of each step: decay of exposure memory, today's touches and effectiveness."""
        st = self.scenario.structure
        dt = st.dt
        while True:
            new = self._scale * self._decay
            for k in np.flatnonzero(new < _RESCALE):
                self.memory[k] *= new[k]
                new[k] = 1.0
            self._scale = new.astype(np.float32)
            week = self.week
            spend = self._spend[min(week, self._weeks - 1)]
            touches = np.empty(self._K)
            touches[:-1] = st.touches(spend)
            touches[-1] = wom_touches(np, self.stage_counts(), st, float(self.params.wom_rate))
            touches *= self.touch_multiplier
            cap = self.params.cap
            lam, q, sent = delivery(np, touches, self.stage_counts(), st, np.asarray(self.params.fhalf, float),
                                    None if cap is None else np.asarray(cap, float))
            self._q = q
            if cap is not None:  # a demand cap delivers fewer touches than were bought
                touches = np.where(np.isfinite(cap), sent, touches)
            self._touches_today = touches * dt
            self._rec.spend[week] += spend / 7.0 * dt
            yield self.env.timeout(dt)

    def _channel(self, k: int):
        yield self.env.timeout(0.1)
        rng = self._streams[f"channel:{self.scenario.structure.channels[k]}"]
        while True:
            self._deliver(k, rng)
            yield self.env.timeout(self.scenario.structure.dt)

    def _word_of_mouth(self):
        yield self.env.timeout(0.2)
        rng = self._streams["word_of_mouth"]
        k = self._K - 1
        while True:
            if self._touches_today[k] > 0:
                self._rec.referrals[self.week] += self._touches_today[k]
                self._deliver(k, rng)
            yield self.env.timeout(self.scenario.structure.dt)

    def _deliver(self, k: int, rng: np.random.Generator):
        """Today's touches of source ``k``: how many (Poisson), on whom, and their effect on memory."""
        expected = self._touches_today[k] / self._weight  # touches landing on agents
        if expected <= 0:
            return
        st = self.scenario.structure
        m = int(rng.poisson(expected))
        if m == 0:
            return
        w = st.targeting[k].ravel().astype(np.float32)
        share = float(self._n @ w) / self._N
        if share <= 0:
            return
        week = self.week
        idx, fresh = self._touch(k, rng, w, m, share, week, keep=self.log_ is not None)
        if k < self._K - 1:
            self._rec.impressions[week, k] += m * self._weight
            self._rec.reach[week, k] += fresh * self._weight
        if self.log_ is not None:
            logged = idx[idx < self._n_logged]
            self.log_.add(logged, self.day, 0, source=k)

    def _touch(self, k: int, rng, w, m: int, share: float, week: int, keep: bool):
        """Land ``m`` touches of source ``k`` on agents drawn with replacement with probability
        proportional to ``w[group]`` (rejection sampling, see :meth:`_candidates`), and add them
        to the agents' exposure memory.

        Returns the agents touched, in order (``None`` unless ``keep``), and how many agents the
        source reached for the first time this week.
        """
        pool, size, accept, flat = self._candidates(w, m, share)
        reached, bit = self._reached_bit(k, week)
        mem_k, val = self.memory[k], self._q[k] / self._scale[k]
        touched = []
        need, fresh = m, 0
        while need > 0:
            n_cand = need if flat else int(need / accept * 1.1) + 32
            cand = rng.integers(0, size, n_cand, dtype=self._index_type)
            if pool is not None:
                cand = pool[cand]
            u = None if flat else rng.random(n_cand, dtype=np.float32)
            got, f = _kernels.deliver(cand, u, self.group, w, need, mem_k, reached, bit, val, self.use_numba)
            need -= got
            fresh += f
            if keep:
                touched.append(cand[:got])
        return (np.concatenate(touched) if keep else None), fresh

    def _candidates(self, w, m: int, share: float):
        """Where a source draws the candidates of ``m`` touches with targeting weights ``w`` (max 1).

        Candidates are drawn uniformly among a *pool* and accepted with probability ``w[group]``,
        so that touches land in proportion to ``w[group]``. The pool is all agents, or only the
        agents of the groups with ``w > 0`` (listed by one pass over the agents) when drawing among
        all would waste more than ``_POOL_MIN_WASTE`` candidates per agent. Returns ``(pool or
        None, pool size, mean acceptance probability, flat)``; ``flat``: every agent of the pool
        has weight 1, so every candidate is accepted and no uniform is drawn.
        """
        N = self._N
        targeted = w > 0
        pool_share = float(self._n @ targeted) / N  # share of agents the source can reach
        if pool_share < 1 and m / share * (1 - pool_share) > _POOL_MIN_WASTE * N:
            pool = _kernels.targeted(self.group, targeted, self.use_numba)
            return pool, pool.size, share * N / pool.size, bool(np.all(w[targeted] == 1))
        return None, N, share, bool(np.all(w == 1))

    def _reached_bit(self, k: int, week: int) -> tuple[np.ndarray, int]:
        """The row of ``reached`` holding source ``k``'s bit, and the bit; all bits clear at a new week."""
        if week != self._reached_week:
            self.reached[:] = 0
            self._reached_week = week
        return self.reached[k // 8], 1 << (k % 8)

    def _journey(self):
        yield self.env.timeout(0.5)
        st = self.scenario.structure
        rng = self._streams["journey"]
        src_m = st.src_matrix
        while True:
            week = self.week
            w_abs = week + self.start_day // 7
            em = edge_multipliers(np, st, self.params.demand, [w_abs])[0]
            base_eff, B = hazard_terms(np, self.params, st, em, st.event_multipliers(w_abs)[1])
            base_eff = base_eff * self.hazard_multiplier
            B = B * self.effect_multiplier[:, :, None]
            htab = (base_eff @ src_m).ravel().astype(np.float32)  # (G,)
            coef = ((B @ src_m).reshape(self._K, self._G) * self._scale[:, None]).astype(np.float32)
            active = np.flatnonzero(np.any(coef != 0, axis=1))
            movers = _kernels.advance_clocks(self.group, self.clock, self.memory, htab, coef, st.dt, active,
                                             self.use_numba)
            if movers.size:
                self._move(movers, base_eff, B, rng, week)
            yield self.env.timeout(st.dt)

    def _move(self, movers, base_eff, B, rng, week):
        """Agents whose clock ran out take one edge out of their stage (competing risks)."""
        st = self.scenario.structure
        S, E = self._S, len(st.edges)
        r = rng.random(movers.size)
        edge, total = _kernels.choose_edges(movers, self.group, self.memory, self._scale, self._out, base_eff, B,
                                            r, self.use_numba)
        self.clock[movers] = rng.standard_exponential(movers.size, dtype=np.float32)
        ok = total > 0
        movers, edge = movers[ok], edge[ok]
        g = self.group[movers].astype(np.intp)
        p = g // S
        if np.any(edge < 0) or not np.array_equal(st.src[edge], g % S):
            raise InvariantError(f"day {self.day}: a move did not follow an edge of the journey")
        new = p * S + st.dst[edge]
        self.group[movers] = new.astype(self.group.dtype)
        self._n -= np.bincount(g, minlength=self._G)
        self._n += np.bincount(new, minlength=self._G)
        self._rec.flow[week] += np.bincount(p * E + edge, minlength=self._P * E).reshape(self._P, E) * self._weight
        buy = st.purchase_edges[edge]
        if buy.any():
            b_agents, b_p = movers[buy], p[buy]
            first = self.last_purchase[b_agents] == -1
            self._rec.purchases_new[week] += np.bincount(b_p[first], minlength=self._P) * self._weight
            self._rec.purchases_repeat[week] += np.bincount(b_p[~first], minlength=self._P) * self._weight
            self._rec.revenue[week] += np.bincount(b_p, minlength=self._P) * st.value * self._weight
            self.last_purchase[b_agents] = self.day
        if self.log_ is not None:
            lg = movers < self._n_logged
            self.log_.add(movers[lg], self.day, 1, src=g[lg] % S, dst=st.dst[edge[lg]])
            if buy.any():
                lb = lg & buy
                self.log_.add(movers[lb], self.day, 2, dst=st.dst[edge[lb]], value=st.value[p[lb]])

    def _recorder(self):
        yield self.env.timeout(0.9)
        st = self.scenario.structure
        while True:
            week = self.week
            end_of_week = (int(self.env.now) + st.dt) % 7 == 0
            if end_of_week:
                self._rec.stage_size[week] = self.stage_counts()
                self._check(week)
                if self._bar is not None:
                    self._bar.update(1)
            yield self.env.timeout(st.dt)

    def _check(self, week: int):
        if np.any(self._n < 0):
            raise InvariantError(f"week {week + 1}: a stage count went negative")
        if int(self._n.sum()) != self._N:
            raise InvariantError(f"week {week + 1}: {int(self._n.sum())} agents counted, {self._N} simulated")
        if self.check_every and (week + 1) % self.check_every == 0:
            recount = np.bincount(self.group, minlength=self._G)
            if not np.array_equal(recount, self._n):
                raise InvariantError(f"week {week + 1}: stage counts drifted from the agents' stages")


def _code_type(n_codes: int) -> type[np.unsignedinteger]:
    """The smallest unsigned integer type holding the codes ``0 .. n_codes - 1``.

    (Unsigned, so that the compiled kernels index tables with them without negative-index checks.)
    """
    for t in (np.uint8, np.uint16, np.uint32):
        if n_codes - 1 <= np.iinfo(t).max:
            return t
    return np.uint64


def simulate(scenario: Scenario | str, *, agents: int | None = None, seed: int | None = None,
             plan: Plan | None = None, params: Params | None = None, processes=(), progress: bool = False,
             log_agents: int | None = None, replication: int = 0) -> xr.Dataset:
    """Run a scenario with the agent engine and return its weekly dataset.

    Parameters
    ----------
    scenario
        A :class:`~journeysim.Scenario` or a path to a scenario file.
    agents, seed
        Override the scenario's number of agents and seed.
    plan, params
        Override the scenario's media plan or parameters.
    processes
        Extra SimPy process functions ``fn(sim)`` (see :meth:`Simulation.add_process`).

    Examples
    --------
    >>> ds = simulate("scenarios/funnel3.yaml", agents=2000)  # doctest: +SKIP
    """
    from journeysim.model.scenario import load_scenario

    if not hasattr(scenario, "structure"):
        scenario = load_scenario(scenario)
    if agents is not None:
        scenario = scenario.replace(agents=agents)
    sim = Simulation(scenario, params=params, plan=plan, seed=seed, progress=progress, log_agents=log_agents,
                     replication=replication)
    for p in processes:
        sim.add_process(p)
    return sim.run()
