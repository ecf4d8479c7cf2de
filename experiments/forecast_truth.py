"""Forecast accuracy against the truth, over several seeds (issue 4's study).

For each seed: generate observed data from the example's own parameters with the agent engine,
calibrate on it, forecast the example plans, and compare each forecast delta (plan minus
baseline, horizon + tail) with the true delta: the agent engine with the true parameters run over
history + horizon + tail under each plan, agent-level common random numbers, mean of R
replications. Reports the error of each delta and whether the truth is inside the 90% interval.

    python experiments/forecast_truth.py [--scenario scenarios/shop.yaml] [--seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import journeysim as js
from journeysim.engine.crn import CRNSimulation
from journeysim.errors import JourneysimWarning
from journeysim.inference.sampling import calibrate
from journeysim.io.observed import read_observed
from journeysim.io.planfile import baseline_plan, load_plan
from journeysim.model.plan import Plan

HERE = Path(__file__).parent


def observed_csv(sc, seed: int, path: Path) -> None:
    """The example's observed data regenerated with another seed (the agents, as make_data.py)."""
    spec = importlib.util.spec_from_file_location("make_data", HERE.parent / "scenarios" / "make_data.py")
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    make_data.observed_frame(sc, CRNSimulation(sc, seed=seed).run(), seed).to_csv(path, index=False)


def true_deltas(sc, plans: list[Plan], horizon: int, tail: int, seed: int, reps: int) -> dict[str, list[float]]:
    """Total purchases over horizon + tail per plan, true parameters, CRN, per replication."""
    hist = sc.plan.spend
    out = {}
    for p in plans:
        full = np.concatenate([hist, p.spend, np.zeros((tail, hist.shape[1]))])
        W = full.shape[0]
        s = sc.replace(weeks=W, plan=Plan(full, sc.structure.channels, p.name))
        vals = []
        for r in range(reps):
            ds = CRNSimulation(s, seed=seed, replication=1000 + r).run()
            vals.append(float(ds.purchases.isel(time=slice(hist.shape[0], None)).sum()))
        out[p.name] = vals
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario", default=str(HERE.parent / "scenarios" / "shop.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--horizon", type=int, default=26)
    ap.add_argument("--tail", type=int, default=8)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--replications", type=int, default=8)
    ap.add_argument("--out", default=str(HERE / "results" / "forecast_truth.json"))
    a = ap.parse_args()
    sc = js.load_scenario(a.scenario)
    rows = []
    for seed in a.seeds:
        t0 = time.perf_counter()
        csv = Path(f"/tmp/forecast_truth_{seed}.csv")
        observed_csv(sc, seed, csv)
        data = read_observed(csv, sc)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", JourneysimWarning)
            fit = calibrate(sc, data, draws=a.draws, tune=a.draws, chains=2, seed=seed)
        base = baseline_plan(sc, data, a.horizon)
        plans = [load_plan(sc.base_dir / p, sc, baseline=base, horizon=a.horizon) for p in sc.spec.plans]
        fc = js.forecast(sc, fit, data, plans, horizon=a.horizon, tail=a.tail, marginal=False,
                         allow_unconverged=True)
        cmp = js.compare(fc, metrics=("purchases",))
        truth = true_deltas(sc, [base] + plans, a.horizon, a.tail, seed, a.replications)
        tb = np.asarray(truth["baseline"])
        for p in plans:
            d = np.asarray(truth[p.name]) - tb
            c = cmp.sel(plan=p.name, metric="purchases")
            row = {"seed": seed, "plan": p.name, "true_delta": float(d.mean()),
                   "true_delta_se": float(d.std(ddof=1) / np.sqrt(d.size)),
                   "forecast_mean": float(c["mean"]), "forecast_lower": float(c["lower"]),
                   "forecast_upper": float(c["upper"]), "converged": bool(fit.converged),
                   "fit_seconds": fit.info["seconds"]}
            row["error"] = row["forecast_mean"] - row["true_delta"]
            row["rel_error"] = row["error"] / abs(row["true_delta"]) if row["true_delta"] else float("nan")
            row["covered"] = bool(row["forecast_lower"] <= row["true_delta"] <= row["forecast_upper"])
            rows.append(row)
            print(json.dumps(row), flush=True)
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    res = {"study": "forecast_truth", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "scenario": a.scenario, "seeds": a.seeds, "horizon": a.horizon, "tail": a.tail,
           "replications": a.replications, "loadavg": os.getloadavg(),
           "mean_abs_rel_error": float(df.rel_error.abs().mean()), "coverage_90": float(df.covered.mean()),
           "rows": rows}
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    print(f"mean |relative error| {res['mean_abs_rel_error']:.1%}, 90% coverage {res['coverage_90']:.0%} "
          f"over {len(rows)} forecasts")


if __name__ == "__main__":
    main()
