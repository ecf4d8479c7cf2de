"""Speed of planning with the twin: compare 5 plans over 500 posterior draws and 26 weeks, and one
budget optimisation (issue targets: 5 s and 30 s on a 2-core machine).

The posterior is :func:`journeysim.known_fit` (500 jittered draws of the scenario's parameters):
the cost of a forecast does not depend on where the draws came from.

    python experiments/bench_plan.py [--scenario scenarios/retail.yaml] [--draws 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import journeysim as js
from journeysim.planning.optimization import optimize

HERE = Path(__file__).parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario", default=str(HERE.parent / "scenarios" / "retail.yaml"))
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--weeks", type=int, default=26)
    ap.add_argument("--out", default=str(HERE / "results" / "bench_plan.json"))
    a = ap.parse_args()
    sc = js.load_scenario(a.scenario)
    data = js.read_observed(sc.base_dir / sc.spec.data, sc)
    fit = js.known_fit(sc, draws=a.draws, spread=0.1, seed=0)
    paid = [c for c, cost in zip(sc.structure.channels, sc.structure.cost_per_touch) if cost > 0]
    plans = [{"name": f"{c} +30%", "changes": [{"scale": {c: 1.3}}]} for c in paid[:3]]
    plans.append({"name": f"move 20% {paid[0]}->{paid[-1]}",
                  "changes": [{"move": {"from": paid[0], "to": paid[-1], "share": 0.2}}]})
    load0 = os.getloadavg()
    t = time.perf_counter()
    from journeysim.planning.history import prepare

    hist = prepare(sc, fit, data, max_draws=a.draws)
    t_hist = time.perf_counter() - t
    t = time.perf_counter()
    fc = js.forecast(hist, plans, horizon=a.weeks, tail=0, marginal=False)
    js.compare(fc)
    t_cmp = time.perf_counter() - t
    t = time.perf_counter()
    fc8 = js.forecast(hist, plans, horizon=a.weeks, tail=8, marginal=True, marginal_draws=100)
    t_full = time.perf_counter() - t
    budget = float(fc8.spend.sel(plan="baseline"))
    t = time.perf_counter()
    opt = optimize(hist, budget=budget, horizon=a.weeks, search_draws=100)
    t_opt = time.perf_counter() - t
    res = {
        "benchmark": "bench_plan", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scenario": a.scenario, "draws": a.draws, "weeks": a.weeks, "plans": fc.sizes["plan"],
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": load0, "loadavg_after": os.getloadavg()},
        "history_s": t_hist,
        "compare_5_plans_s": t_cmp,
        "forecast_with_tail_and_mroas_s": t_full,
        "optimize_s": t_opt, "optimize_iterations": int(opt.attrs["iterations"]),
        "optimize_gain_purchases": float(opt["mean"].sel(plan="optimum", metric="purchases")
                                         - opt["mean"].sel(plan="baseline_mix", metric="purchases")),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
