"""Benchmark of the agent engine against a one-SimPy-process-per-customer design (a script, not a test).

Three measurements on the retail scenario (``scenarios/retail.yaml``: 5,000,000 people):

1. **Array engine** (:class:`journeysim.engine.simulation.Simulation`): ``--agents`` agents (default
   1,000,000, so one agent stands for 5 people) over ``--weeks`` weeks of daily steps (default 52,
   i.e. 364 days). Reports wall time (building the simulation, running it and labelling the
   weekly dataset; the scenario is compiled beforehand), agent-days per second, the growth of the
   process's peak RSS during the run, and the bytes of per-agent state (``group``, ``clock``,
   ``memory``, ``reached``, ``last_purchase``). A small warm-up run comes first so that numba
   compilation (or loading its cache) is not timed; its time is reported on its own.
2. **Per-process design** (:class:`PerProcessSimulation`, below): the same model written the
   straightforward way, one Python object and one SimPy process per customer. A shared process
   computes the day's per-group tables with the same functions of :mod:`journeysim.model.dynamics`
   as the engine (:func:`~journeysim.model.dynamics.delivery`, :func:`~journeysim.model.dynamics.wom_touches`,
   :func:`~journeysim.model.dynamics.hazard_terms`); each customer then draws its Poisson touches per
   source, updates its exposure memory, integrates its hazard on an exponential clock and, when
   the clock runs out, moves along one edge out of its stage with competing risks. Run at
   ``--per-process-agents`` (default 100,000) over ``--per-process-weeks`` (default 4):
   throughput in agent-days per second is what is compared.
3. **Agreement**: the array engine is run again at the per-process run's size and horizon, and
   both runs' purchases per agent-day (and final stage shares) are printed side by side.

The figures are printed as a table and written to ``experiments/results/bench_engine.json``
(``bench_engine_quick.json`` with ``--quick``, so a smoke test does not overwrite real results).

Horizon: ``scenario.replace(agents=..., weeks=...)`` cuts the 104-week retail scenario (plan
and events; its events fall in weeks 60-104, so none is left at 52 weeks). With a journeysim
whose ``replace`` still rejects events beyond a shortened horizon, the benchmark falls back to
the full scenario run with its plan cut to ``--weeks`` weeks, which simulates the same thing.

Usage::

    python experiments/bench_engine.py                      # 1M agents x 52 weeks; per-process 100k x 4 weeks
    python experiments/bench_engine.py --repeat 3 --profile  # best of 3, plus a cProfile of the engine
    python experiments/bench_engine.py --quick              # a few seconds (smoke test)
    python experiments/bench_engine.py --agents 200000 --weeks 8 --per-process-agents 20000 --per-process-weeks 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import platform
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import simpy

from journeysim.engine import _kernels
from journeysim.engine.simulation import Simulation
from journeysim.errors import InputError
from journeysim.model.dynamics import delivery, hazard_terms, wom_touches
from journeysim.model.plan import Plan
from journeysim.model.rng import Streams
from journeysim.model.scenario import Scenario, load_scenario

HERE = Path(__file__).resolve().parent
SCENARIO = HERE.parent / "scenarios" / "retail.yaml"
RESULTS = HERE / "results"

#: Targets of the issue.
TARGET_SECONDS = 10.0
TARGET_RATIO = 50.0
TARGET_BYTES = 100.0
#: Tolerated relative difference of purchases per agent-day between the two designs.
AGREE_TOL = 0.10

STATE_ARRAYS = ("group", "clock", "memory", "reached", "last_purchase")


# ---------------------------------------------------------------------------------------------
# scenario and measurement helpers


def retail(agents: int, weeks: int) -> tuple[Scenario, Plan]:
    """The retail scenario with ``agents`` agents over ``weeks`` weeks, and the plan to run."""
    full = load_scenario(SCENARIO)
    try:
        sc = full.replace(agents=agents, weeks=weeks)
        return sc, sc.plan
    except InputError:  # older journeysim: events beyond the horizon are rejected, not clipped
        sc = full.replace(agents=agents)
    spend = sc.plan.spend
    if weeks <= spend.shape[0]:
        spend = spend[:weeks]
    else:  # repeat the last week, as Scenario.replace does for longer horizons
        spend = np.vstack([spend, np.repeat(spend[-1:], weeks - spend.shape[0], axis=0)])
    return sc, Plan(spend, sc.plan.channels, sc.plan.name)


def maxrss_bytes() -> int:
    """Peak resident set size of this process so far (bytes)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r) if sys.platform == "darwin" else int(r) * 1024


def current_rss_bytes() -> int | None:
    """Resident set size now (bytes), from /proc on Linux; ``None`` elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def purchases_per_agent_day(total_people: float, agents: int, days: int, weight: float) -> float:
    return total_people / weight / (agents * days)


# ---------------------------------------------------------------------------------------------
# 1. the array engine


def run_engine(agents: int, weeks: int, *, measure_memory: bool = True, repeat: int = 1) -> dict:
    """Run the array engine ``repeat`` times (same seed); timings of the fastest, memory of the first."""
    sc, plan = retail(agents, weeks)
    days = weeks * 7
    walls, cpus = [], []
    for r in range(max(1, repeat)):
        sim = ds = None
        gc.collect()
        if r == 0:
            rss0 = maxrss_bytes()
        c0 = time.process_time()
        t0 = time.perf_counter()
        sim = Simulation(sc, plan=plan)
        ds = sim.run()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if r == 0:
            rss1 = maxrss_bytes()
    wall, cpu = min(walls), cpus[walls.index(min(walls))]
    state = sum(getattr(sim, name).nbytes for name in STATE_ARRAYS)
    weight = sc.structure.weight
    counts = ds.stage_size.isel(time=-1).sum("persona").values
    out = {
        "agents": agents,
        "weeks": weeks,
        "days": days,
        "people_per_agent": weight,
        "wall_s": wall,
        "cpu_s": cpu,
        "wall_s_all": walls,
        "agent_days_per_s": agents * days / wall,
        "state_bytes": int(state),
        "state_bytes_per_agent": state / agents,
        "state_arrays": {name: {"dtype": str(getattr(sim, name).dtype), "shape": list(getattr(sim, name).shape),
                                "bytes_per_agent": getattr(sim, name).nbytes / agents} for name in STATE_ARRAYS},
        "purchases_people": float(ds.purchases.sum()),
        "purchases_per_agent_day": purchases_per_agent_day(float(ds.purchases.sum()), agents, days, weight),
        "final_stage_share": dict(zip(sc.structure.stages, (counts / counts.sum()).round(5).tolist())),
    }
    if measure_memory:
        out["peak_rss_growth_bytes"] = max(0, rss1 - rss0)
        out["peak_rss_bytes"] = rss1
    return out


def profile_engine(agents: int, weeks: int, top: int = 15) -> list[dict]:
    """One engine run under cProfile with CPU time as the clock; the functions with the most own time."""
    import cProfile
    import pstats

    sc, plan = retail(agents, weeks)
    sim = Simulation(sc, plan=plan)
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    sim.run()
    prof.disable()
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    total = sum(v[2] for v in stats.values())
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    return [{"function": f"{Path(f).name}:{line}({name})", "calls": v[1], "own_s": v[2], "cum_s": v[3],
             "own_share": v[2] / total} for (f, line, name), v in rows]


def traced_peak(agents: int, weeks: int) -> int:
    """Peak of memory traced by tracemalloc (numpy arrays included) during one engine run."""
    sc, plan = retail(agents, weeks)
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        Simulation(sc, plan=plan).run()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------------------------------------
# 2. the per-process design


class DayTables:
    """What every customer of a group shares on one day, as plain Python lists indexed by group."""

    __slots__ = ("emlam", "lam", "q", "htab", "coef", "base_eff", "B")


class Customer:
    """One customer: persona, stage, exponential clock, exposure memory of each touch source."""

    __slots__ = ("sim", "p", "g", "clock", "mem", "last_purchase")

    def __init__(self, sim: PerProcessSimulation, p: int, g: int, clock: float, last_purchase: int):
        self.sim = sim
        self.p = p
        self.g = g
        self.clock = clock
        self.mem = [0.0] * sim.K
        self.last_purchase = last_purchase

    def life(self):
        """Each day at offset 0.5: decay and touches -> memory, hazard -> clock, maybe a move."""
        sim = self.sim
        env = sim.env
        rnd = sim.random.random
        K = sim.K
        dt = sim.dt
        decay = sim.decay
        yield env.timeout(0.5)
        while True:
            t = sim.tables
            g = self.g
            mem = self.mem
            emlam, lam, q = t.emlam[g], t.lam[g], t.q
            # exposure memory: carry-over, then this day's Poisson touches of each source (inversion)
            for k in range(K):
                a = mem[k] * decay[k]
                e = emlam[k]
                if e < 1.0:
                    u = rnd()
                    if u > e:
                        lk = lam[k]
                        n, p, s = 0, e, e
                        while u > s and n < 10_000:
                            n += 1
                            p *= lk / n
                            s += p
                        a += q[k] * n
                mem[k] = a
            # total hazard out of the stage (sum over its edges), integrated on the clock
            H = t.htab[g]
            for c, a in zip(t.coef[g], mem):
                H += c * a
            self.clock -= H * dt
            if self.clock <= 0.0:
                self.move(t, rnd)
            yield env.timeout(dt)

    def move(self, t: DayTables, rnd) -> None:
        """Competing risks: edge ``e`` out of the stage with probability ``h_e / H``."""
        sim = self.sim
        p, g = self.p, self.g
        s = g - p * sim.S
        base_p = t.base_eff[p]
        B = t.B
        mem = self.mem
        edges = sim.out[s]
        hs = []
        for e in edges:
            h = base_p[e]
            for k in range(sim.K):
                h += B[k][p][e] * mem[k]
            hs.append(h)
        total = sum(hs)
        self.clock = -math.log(1.0 - rnd())
        if total <= 0.0:
            return
        u = rnd() * total
        edge = edges[-1]
        acc = 0.0
        for e, h in zip(edges, hs):
            acc += h
            if u < acc:
                edge = e
                break
        new = p * sim.S + sim.dst[edge]
        sim.counts[g] -= 1
        sim.counts[new] += 1
        self.g = new
        week = int(sim.env.now) // 7
        sim.flow[week][p][edge] += 1
        if sim.purchase_edges[edge]:
            if self.last_purchase == -1:
                sim.purchases_new[week] += 1
            else:
                sim.purchases_repeat[week] += 1
            self.last_purchase = int(sim.env.now)


class PerProcessSimulation:
    """The engine's model with one Python object and one SimPy process per customer.

    Shared processes: ``market`` (offset 0.0: spend -> touches, word of mouth, per-group touch
    rates and effectiveness with :func:`~journeysim.model.dynamics.delivery`, hazard tables with
    :func:`~journeysim.model.dynamics.hazard_terms`) and ``recorder`` (offset 0.9: stage sizes at the
    end of each week). numpy is used only for these per-day group tables; the customers are
    plain Python.
    """

    def __init__(self, scenario: Scenario, plan: Plan, seed: int | None = None):
        self.scenario = scenario
        st = self.st = scenario.structure
        self.params = scenario.params
        self.spend = plan.aligned(st.channels, None, plan.name)
        self.weeks = self.spend.shape[0]
        self.P, self.S, self.K = len(st.personas), len(st.stages), st.n_sources
        self.G = self.P * self.S
        self.E = len(st.edges)
        self.dt = st.dt
        self.N = st.agents
        self.weight = st.population / self.N
        seed = scenario.seed if seed is None else seed
        self.random = random.Random(seed)
        self.decay = (np.asarray(self.params.carryover, float) ** self.dt).tolist()
        self.fhalf = np.asarray(self.params.fhalf, float)
        self.out = [np.flatnonzero(st.src == s).tolist() for s in range(self.S)]
        self.dst = st.dst.tolist()
        self.purchase_edges = st.purchase_edges.tolist()
        self.flow = [[[0] * self.E for _ in range(self.P)] for _ in range(self.weeks)]
        self.purchases_new = [0] * self.weeks
        self.purchases_repeat = [0] * self.weeks
        self.stage_size = []

    def _customers(self) -> list[Customer]:
        """Initial population, drawn as the engine does: exact quotas per group, shuffled."""
        st = self.st
        rng = Streams(self.scenario.seed, 0)["init"]
        share = (st.persona_share[:, None] * np.asarray(self.params.initial)).ravel()
        raw = share / share.sum() * self.N
        counts = np.floor(raw).astype(np.int64)
        rest = self.N - int(counts.sum())
        if rest:
            counts[np.argsort(-(raw - counts), kind="stable")[:rest]] += 1
        group = np.repeat(np.arange(self.G), counts)
        rng.shuffle(group)
        clock = rng.standard_exponential(self.N)
        customer_stage = st.customer_stages.tolist()
        self.counts = np.bincount(group, minlength=self.G).tolist()
        return [Customer(self, g // self.S, g, c, -(10**6) if customer_stage[g % self.S] else -1)
                for g, c in zip(group.tolist(), clock.tolist())]

    def _stage_counts(self) -> np.ndarray:
        return np.asarray(self.counts, float).reshape(self.P, self.S) * self.weight

    def _market(self):
        st, K = self.st, self.K
        src_m = st.src_matrix
        while True:
            week = int(self.env.now) // 7
            N = self._stage_counts()
            touches = np.empty(K)
            touches[:-1] = st.touches(self.spend[min(week, self.weeks - 1)])
            touches[-1] = wom_touches(np, N, st, float(self.params.wom_rate))
            lam, q = delivery(np, touches, N, st, self.fhalf)  # (K, P, S), (K,)
            lam_g = (lam.reshape(K, self.G) * self.dt).T  # (G, K): expected touches per person today
            base_eff, B = hazard_terms(np, self.params, st, *st.event_multipliers(week))
            t = DayTables()
            t.lam = lam_g.tolist()
            t.emlam = np.exp(-lam_g).tolist()
            t.q = q.tolist()
            t.htab = (base_eff @ src_m).ravel().tolist()  # (G,) total base hazard out of the stage
            t.coef = (B @ src_m).reshape(K, self.G).T.tolist()  # (G, K) total memory coefficient
            t.base_eff = base_eff.tolist()  # (P, E)
            t.B = B.tolist()  # (K, P, E)
            self.tables = t
            yield self.env.timeout(self.dt)

    def _recorder(self):
        yield self.env.timeout(0.9)
        while True:
            if (int(self.env.now) + self.dt) % 7 == 0:
                self.stage_size.append(self._stage_counts())
            yield self.env.timeout(self.dt)

    def run(self) -> dict:
        self.env = env = simpy.Environment()
        customers = self._customers()
        env.process(self._market())
        for c in customers:
            env.process(c.life())
        env.process(self._recorder())
        self.customers = customers
        env.run(until=self.weeks * 7)
        purchases = sum(self.purchases_new) + sum(self.purchases_repeat)
        final = self.stage_size[-1].sum(axis=0)
        return {
            "purchases_people": purchases * self.weight,
            "purchases_per_agent_day": purchases / (self.N * self.weeks * 7),
            "final_stage_share": dict(zip(self.st.stages, (final / final.sum()).round(5).tolist())),
        }


def run_per_process(agents: int, weeks: int) -> dict:
    sc, plan = retail(agents, weeks)
    days = weeks * 7
    gc.collect()
    rss0 = current_rss_bytes()
    c0 = time.process_time()
    t0 = time.perf_counter()
    sim = PerProcessSimulation(sc, plan)
    res = sim.run()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    rss1 = current_rss_bytes()
    out = {"agents": agents, "weeks": weeks, "days": days, "wall_s": wall, "cpu_s": cpu,
           "agent_days_per_s": agents * days / wall}
    if rss0 is not None and rss1 is not None:
        # customers, their generators and pending events are all still alive here
        out["rss_growth_bytes_per_agent"] = (rss1 - rss0) / agents
    out.update(res)
    del sim
    gc.collect()
    return out


# ---------------------------------------------------------------------------------------------
# report


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def numba_version() -> str | None:
    if not _kernels.HAVE_NUMBA:
        return None
    import numba

    return numba.__version__


def fmt_bytes(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(b) < 1024 or unit == "GiB":
            return f"{b:.1f} {unit}" if unit != "B" else f"{b:.0f} B"
        b /= 1024
    return f"{b:.1f} GiB"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=1_000_000, help="agents of the array engine run (default 1,000,000)")
    ap.add_argument("--weeks", type=int, default=52, help="weeks of daily steps of the array engine run (default 52)")
    ap.add_argument("--per-process-agents", type=int, default=100_000,
                    help="agents of the per-process run and of the agreement check (default 100,000)")
    ap.add_argument("--per-process-weeks", type=int, default=4, help="weeks of the per-process run (default 4)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of the array engine at full size; the fastest is reported (default 1)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds (smoke test)")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="also run the array engine once under tracemalloc (untimed) for its traced peak")
    ap.add_argument("--profile", action="store_true",
                    help="also run the array engine once under cProfile (CPU time, untimed); print the top functions")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON output (default experiments/results/bench_engine.json, bench_engine_quick.json with --quick)")
    args = ap.parse_args(argv)
    if args.quick:
        args.agents, args.weeks = 20_000, 2
        args.per_process_agents, args.per_process_weeks = 2_000, 1
    out_path = args.out or RESULTS / ("bench_engine_quick.json" if args.quick else "bench_engine.json")

    print(f"journeysim engine benchmark: {SCENARIO.name}, numba={'yes' if _kernels.HAVE_NUMBA else 'no'}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")

    # warm-up: numba compilation (or cache load) and first-call costs, not timed in the runs below
    t0 = time.perf_counter()
    run_engine(2_000, 1, measure_memory=False)
    warmup = time.perf_counter() - t0
    print(f"warm-up (numba JIT / cache load, 2,000 agents x 1 week): {warmup:.2f} s")

    print(f"\n[1] array engine: {args.agents:,} agents x {args.weeks * 7} days ...", flush=True)
    load0 = loadavg()
    eng = run_engine(args.agents, args.weeks, repeat=args.repeat)
    parts = ", ".join(f"{name} {a['bytes_per_agent']:g}" for name, a in eng["state_arrays"].items())
    print(f"    wall {eng['wall_s']:.2f} s (CPU {eng['cpu_s']:.2f} s), {eng['agent_days_per_s']:,.0f} agent-days/s, "
          f"peak RSS growth {fmt_bytes(eng['peak_rss_growth_bytes'])}, "
          f"state {eng['state_bytes_per_agent']:.1f} B/agent ({parts})")
    if args.tracemalloc:
        eng["tracemalloc_peak_bytes"] = traced_peak(args.agents, args.weeks)
        print(f"    tracemalloc peak during a (separate, untimed) run: {fmt_bytes(eng['tracemalloc_peak_bytes'])}")

    if args.profile:
        eng["profile"] = profile_engine(args.agents, args.weeks)
        print("    profile of a (separate) run, own CPU time per function:")
        for r in eng["profile"]:
            print(f"      {r['own_s']:7.2f} s {r['own_share']:6.1%} {r['calls']:>7} calls  {r['function']}")

    print(f"\n[2] per-process design: {args.per_process_agents:,} agents x {args.per_process_weeks * 7} days ...",
          flush=True)
    pp = run_per_process(args.per_process_agents, args.per_process_weeks)
    ratio = eng["agent_days_per_s"] / pp["agent_days_per_s"]
    # the same ratio on CPU time: less sensitive to other processes sharing the machine
    ratio_cpu = (eng["agents"] * eng["days"] / eng["cpu_s"]) / (pp["agents"] * pp["days"] / pp["cpu_s"])
    extra = (f", RSS {pp['rss_growth_bytes_per_agent']:.0f} B/agent" if "rss_growth_bytes_per_agent" in pp else "")
    print(f"    wall {pp['wall_s']:.2f} s (CPU {pp['cpu_s']:.2f} s), {pp['agent_days_per_s']:,.0f} agent-days/s{extra}")
    print(f"    speed ratio (array / per-process): {ratio:,.1f}x (on CPU time {ratio_cpu:,.1f}x)")

    print(f"\n[3] agreement at {args.per_process_agents:,} agents x {args.per_process_weeks * 7} days ...", flush=True)
    small = run_engine(args.per_process_agents, args.per_process_weeks, measure_memory=False)
    a, b = small["purchases_per_agent_day"], pp["purchases_per_agent_day"]
    rel = abs(a - b) / max(a, b, 1e-300)
    share_a, share_b = small["final_stage_share"], pp["final_stage_share"]
    stage_tv = 0.5 * sum(abs(share_a[s] - share_b[s]) for s in share_a)
    agree = rel <= AGREE_TOL
    print(f"    purchases per agent-day: array {a:.6f}, per-process {b:.6f}, difference {rel:.1%} "
          f"({'within' if agree else 'OUTSIDE'} {AGREE_TOL:.0%})")
    print(f"    final stage shares, total variation distance: {stage_tv:.4f}")
    if args.quick and not agree:
        print("    (quick run: too few purchases for the comparison to mean much)")

    rows = [
        ("array engine wall time", f"{eng['wall_s']:.2f} s", f"<= {TARGET_SECONDS:g} s",
         eng["wall_s"] <= TARGET_SECONDS),
        ("array engine CPU time", f"{eng['cpu_s']:.2f} s", "process time of the run", None),
        ("array engine throughput", f"{eng['agent_days_per_s'] / 1e6:.1f} M agent-days/s", "", None),
        ("per-process throughput", f"{pp['agent_days_per_s'] / 1e3:.1f} k agent-days/s", "", None),
        ("speed ratio", f"{ratio:,.0f}x", f">= {TARGET_RATIO:g}x (CPU time: {ratio_cpu:,.0f}x)", ratio >= TARGET_RATIO),
        ("state per agent", f"{eng['state_bytes_per_agent']:.1f} B", f"< {TARGET_BYTES:g} B",
         eng["state_bytes_per_agent"] < TARGET_BYTES),
        ("peak RSS growth (run)", fmt_bytes(eng["peak_rss_growth_bytes"]),
         f"{eng['peak_rss_growth_bytes'] / args.agents:.0f} B/agent", None),
        ("warm-up (JIT)", f"{warmup:.2f} s", "not in wall time", None),
        ("purchases/agent-day", f"{a:.5f} vs {b:.5f}",
         f"diff {rel:.1%} (<= {AGREE_TOL:.0%})" + (", too small to judge" if args.quick else ""),
         None if args.quick else agree),
    ]
    print(f"\nSummary ({args.agents:,} agents x {args.weeks * 7} days; per-process "
          f"{args.per_process_agents:,} x {args.per_process_weeks * 7} days)")
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    print(f"  {'measure':<{w0}}  {'value':>{w1}}  {'target / note':<{w2}}  ok")
    for name, value, target, ok in rows:
        mark = "" if ok is None else ("yes" if ok else "NO")
        print(f"  {name:<{w0}}  {value:>{w1}}  {target:<{w2}}  {mark}")
    load1 = loadavg()
    if load0 and os.cpu_count() and max(load0[0], (load1 or [0])[0]) > 0.5 * os.cpu_count() + 1:
        print(f"  note: the machine was busy with other work (load average {load0[0]:.1f} before, "
              f"{(load1 or [float('nan')])[0]:.1f} after, {os.cpu_count()} CPUs): wall times are inflated, "
              "CPU times are the better guide")

    result = {
        "benchmark": "bench_engine",
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "scenario": str(SCENARIO.relative_to(HERE.parent)),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "simpy": simpy.__version__,
            "numba": numba_version(),
            "loadavg_before": load0,
            "loadavg_after": load1,
        },
        "warmup_s": warmup,
        "array_engine": eng,
        "per_process": pp,
        "speed_ratio": ratio,
        "speed_ratio_cpu_time": ratio_cpu,
        "agreement": {
            "agents": args.per_process_agents,
            "days": args.per_process_weeks * 7,
            "array_engine": small,
            "purchases_per_agent_day": {"array_engine": a, "per_process": b},
            "relative_difference": rel,
            "tolerance": AGREE_TOL,
            "within_tolerance": agree,
            "final_stage_share_tv_distance": stage_tv,
        },
        "targets": {
            "wall_s": {"target": TARGET_SECONDS, "met": eng["wall_s"] <= TARGET_SECONDS},
            "speed_ratio": {"target": TARGET_RATIO, "met": ratio >= TARGET_RATIO},
            "state_bytes_per_agent": {"target": TARGET_BYTES, "met": eng["state_bytes_per_agent"] < TARGET_BYTES},
        },
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {out_path}")
    return result


if __name__ == "__main__":
    main()
