"""Benchmark of sweeps on one machine: speed-up from 1 to 2 worker processes, per-task overhead.

A script, not a test. On ``scenarios/retail.yaml`` it runs one sweep of agent runs
(``spend.tv`` x replications; ``--agents`` agents over ``--weeks`` weeks each) and measures:

1. **In this process** (``inline``): the serial time of the sweep, after a warm-up run.
2. **Local worker processes** (``local:1``, ``local:2``): *cold* (a new pool: process start,
   imports and loading compiled kernels included) and *warm* (the same pool again). The speed-up
   is ``wall(1 worker) / wall(2 workers)``.
3. **Dask** (``dask:1``, ``dask:2``: a LocalCluster of single-threaded worker processes), warm,
   unless ``--no-dask``.

Warm sweeps run in ``--repeat`` interleaved rounds (every executor once per round, so all see the
same competing load) and medians are reported, with the CPU the workers actually obtained
(``cores_obtained``: their CPU seconds over the wall time, read from ``/proc``). On a machine
shared with other users, a second worker only speeds a sweep up if a second core is free:
``cores_obtained`` tells whether it was.
4. **Per-task overhead** of each executor: the warm wall time per task of a sweep-sized task that
   does no work (it receives the same :class:`~journeysim.scale.sweeps.SweepTask` as a real task, with
   its scenario, and returns arrays of the size of a real result), over ``--overhead-tasks`` tasks.

Every sweep result is checked to be bit-identical to the in-process one. The machine is shared
(2 cores, other users): the load average before and after is recorded with the figures.

Results go to ``experiments/results/bench_sweep.json`` (``bench_sweep_quick.json`` with ``--quick``).

Usage::

    python experiments/bench_sweep.py                 # 12 runs of 50,000 agents x 26 weeks
    python experiments/bench_sweep.py --quick         # a smoke test (a few seconds of work)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from journeysim import __version__
from journeysim._util.cpu import default_workers
from journeysim._util.files import write_json
from journeysim.model.scenario import load_scenario
from journeysim.scale.dask_backend import DaskExecutor
from journeysim.scale.grid import read_grid
from journeysim.scale.local import InProcessExecutor, LocalExecutor
from journeysim.scale.sweeps import build_tasks, sweep

ROOT = Path(__file__).resolve().parents[1]


def empty_result(task) -> dict:
    """A task that does no work: result arrays shaped like a real one (the overhead probe)."""
    sc = task.scenario
    W, S, C = sc.weeks, len(sc.structure.stages), len(sc.channels)
    shapes = {"stage_size": (W, S), "entries": (W, S), "purchases": (W,), "purchases_new": (W,),
              "purchases_repeat": (W,), "revenue": (W,), "spend": (W, C), "impressions": (W, C), "reach": (W, C),
              "referrals": (W,)}
    return {k: np.zeros(s) for k, s in shapes.items()}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def same(a, b) -> bool:
    return all(np.array_equal(a[v].values, b[v].values) for v in a.data_vars)


def worker_pids(ex) -> list[int]:
    """Process ids of an executor's workers (Linux /proc is read for their CPU time)."""
    if isinstance(ex, LocalExecutor):
        return list(ex._pool._processes) if ex._pool is not None else []
    return list(ex.client.run(os.getpid).values())


def cpu_seconds(pids) -> float:
    """User + system CPU seconds used so far by these processes (0 where unreadable)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agents", type=int, default=50_000)
    p.add_argument("--weeks", type=int, default=26)
    p.add_argument("--levels", type=int, default=3, help="spend.tv levels")
    p.add_argument("--replications", type=int, default=4)
    p.add_argument("--repeat", type=int, default=3, help="interleaved warm rounds (medians are reported)")
    p.add_argument("--overhead-tasks", type=int, default=200)
    p.add_argument("--no-dask", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    a = p.parse_args(argv)
    if a.quick:
        a.agents, a.weeks, a.levels, a.replications, a.repeat, a.overhead_tasks = 5_000, 8, 2, 2, 1, 20
    sc = load_scenario(ROOT / "scenarios" / "retail.yaml", agents=a.agents, weeks=a.weeks)
    grid = {"spend.tv": [float(x) for x in np.linspace(0.5, 1.5, a.levels)], "replications": a.replications}
    n_tasks = a.levels * a.replications
    load_before = os.getloadavg()
    print(f"sweep: {n_tasks} agent runs of {a.agents:,} agents x {a.weeks} weeks; load average {load_before}")

    inline = InProcessExecutor()
    sweep(sc, {"replications": 1}, executor=inline)  # warm-up: compiled kernels, imports
    c0 = time.process_time()
    t, ref = timed(lambda: sweep(sc, grid, executor=inline))
    cpu_run = (time.process_time() - c0) / n_tasks
    res: dict = {"sweep": {"inline": {"wall": t, "cpu_seconds_per_run": cpu_run}}, "overhead_seconds_per_task": {}}
    print(f"  inline    wall {t:6.2f} s, {cpu_run:.3f} CPU s per run")

    execs = {"local:1": LocalExecutor(1), "local:2": LocalExecutor(2)}
    if not a.no_dask:
        execs.update({"dask:1": DaskExecutor(n_workers=1), "dask:2": DaskExecutor(n_workers=2)})
    for name, ex in execs.items():  # start and warm every executor
        entry = res["sweep"][name] = {"wall": [], "worker_cpu": []}
        if name.startswith("local"):
            entry["cold"], ds = timed(lambda: sweep(sc, grid, executor=ex))
            assert same(ds, ref), f"{name} differs from inline"
        else:
            sweep(sc, {"replications": 2 * ex.n_workers}, executor=ex)
    for _ in range(a.repeat):  # interleaved, so that every executor sees the same other load
        for name, ex in execs.items():
            pids = worker_pids(ex)
            c0 = cpu_seconds(pids)
            t, ds = timed(lambda: sweep(sc, grid, executor=ex))
            assert same(ds, ref), f"{name} differs from inline"
            res["sweep"][name]["wall"].append(t)
            res["sweep"][name]["worker_cpu"].append(cpu_seconds(pids) - c0)
    for name, entry in res["sweep"].items():
        if name == "inline":
            continue
        entry["wall_median"] = float(np.median(entry["wall"]))
        entry["cores_obtained"] = float(np.median(np.array(entry["worker_cpu"]) / np.array(entry["wall"])))
        entry["worker_cpu_seconds_per_run"] = float(np.median(entry["worker_cpu"])) / n_tasks
        cold = f"cold {entry['cold']:6.2f} s, " if "cold" in entry else " " * 18
        print(f"  {name:<8}  {cold}warm wall {entry['wall_median']:6.2f} s (median of {a.repeat}); "
              f"workers got {entry['cores_obtained']:.2f} cores, "
              f"{entry['worker_cpu_seconds_per_run']:.3f} CPU s per run")

    tasks = build_tasks(sc, read_grid(grid), "agents")
    probe = (tasks * (a.overhead_tasks // len(tasks) + 1))[: a.overhead_tasks]
    for name, ex in {"inline": inline, **execs}.items():
        ex.map(empty_result, probe[:10])
        t, _ = timed(lambda: ex.map(empty_result, probe))
        res["overhead_seconds_per_task"][name] = t / len(probe)
        ex.close()
    overhead = res["overhead_seconds_per_task"]
    print("  per-task overhead: " + ", ".join(f"{k} {1e3 * v:.2f} ms" for k, v in overhead.items()))

    s = res["sweep"]
    res["speedup_1_to_2_workers"] = {"local_warm": s["local:1"]["wall_median"] / s["local:2"]["wall_median"],
                                     "local_cold": s["local:1"]["cold"] / s["local:2"]["cold"]}
    if not a.no_dask:
        res["speedup_1_to_2_workers"]["dask_warm"] = s["dask:1"]["wall_median"] / s["dask:2"]["wall_median"]
    res.update({
        "bit_identical_to_inline": True,
        "settings": {"scenario": "scenarios/retail.yaml", "agents": a.agents, "weeks": a.weeks, "grid": grid,
                     "tasks": n_tasks, "repeat": a.repeat, "overhead_tasks": a.overhead_tasks},
        "machine": {"cores_available": default_workers(), "cpu_count": os.cpu_count(),
                    "python": sys.version.split()[0],
                    "platform": platform.platform(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
        "journeysim": __version__,
        "command": " ".join(["python experiments/bench_sweep.py", *(argv if argv is not None else sys.argv[1:])]),
    })
    print("speed-up 1 -> 2 workers: " + ", ".join(f"{k} {v:.2f}x" for k, v in res["speedup_1_to_2_workers"].items()))
    out = ROOT / "experiments" / "results" / ("bench_sweep_quick.json" if a.quick else "bench_sweep.json")
    write_json(res, out)
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
