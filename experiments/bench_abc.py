"""Benchmark of ABC calibration on the executor: the same SMC-ABC fit in this process, on one and on
two local worker processes (a script, not a test).

``journeysim fit --method abc`` hands each SMC stage's particles to the executor as one batch
(:mod:`journeysim.inference.abc`). This script fits the funnel3 example (its shipped observed data) with the
agent engine as simulator, once per executor, checks that the posteriors are bit for bit the same,
and reports the wall time, the number of agent runs and the speed-up from 1 to 2 workers, with the
machine's load average before and after.

    python experiments/bench_abc.py [--agents 5000] [--draws 100] [--chains 1]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

from journeysim._util.files import write_json
from journeysim.inference.sampling import calibrate
from journeysim.io.observed import read_observed
from journeysim.model.scenario import load_scenario
from journeysim.scale.local import InProcessExecutor, LocalExecutor

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenario", default="funnel3")
    p.add_argument("--agents", type=int, default=5_000)
    p.add_argument("--draws", type=int, default=100, help="particles per chain")
    p.add_argument("--chains", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "experiments" / "results" / "bench_abc.json"))
    a = p.parse_args(argv)
    sc = load_scenario(ROOT / "scenarios" / f"{a.scenario}.yaml")
    data = read_observed(ROOT / "scenarios" / "data" / f"{a.scenario}_observed.csv", sc)
    execs = {"inline": InProcessExecutor(), "local:1": LocalExecutor(1), "local:2": LocalExecutor(2)}
    for ex in execs.values():  # start the pools and warm the workers (imports, compiled kernels)
        ex.map(abs, range(4))
    load0 = os.getloadavg()
    res: dict = {"scenario": a.scenario, "agents": a.agents, "draws": a.draws, "chains": a.chains,
                 "weeks": data.weeks, "cpu_count": os.cpu_count(), "loadavg_before": load0, "runs": {}}
    ref = None
    for name, ex in execs.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = calibrate(sc, data, method="abc", abc_draws=a.draws, abc_agents=a.agents, chains=a.chains,
                            seed=a.seed, executor=ex)
        wall = time.perf_counter() - t0
        sims = int(fit.info["abc_simulations"])
        same = True
        if ref is None:
            ref = fit.posterior
        else:
            same = all(np.array_equal(ref[v].values, fit.posterior[v].values) for v in ref.data_vars)
        res["runs"][name] = {"wall_seconds": wall, "simulations": sims, "ms_per_simulation": 1e3 * wall / sims,
                             "identical_to_inline": same}
        print(f"  {name:8s} {wall:7.1f} s, {sims} agent runs ({1e3 * wall / sims:.0f} ms each), "
              f"identical to inline: {same}", flush=True)
    for ex in execs.values():
        ex.close()
    r = res["runs"]
    res["speedup_1_to_2_workers"] = r["local:1"]["wall_seconds"] / r["local:2"]["wall_seconds"]
    res["loadavg_after"] = os.getloadavg()
    print(f"speed-up 1 -> 2 workers: {res['speedup_1_to_2_workers']:.2f}x; load average {load0} -> "
          f"{res['loadavg_after']}")
    write_json(res, Path(a.out))
    return 0 if all(v["identical_to_inline"] for v in r.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
