"""Parameter recovery on the example scenarios at full size (a script, not a test).

For each scenario and seed, the observed data are regenerated from the truth (the parameters
written in the scenario file) exactly as ``scenarios/make_data.py`` does it: the **agent engine**
at the scenario's own size and that seed, mapped to the observed KPI columns and given
observation noise. The twin-likelihood model is then fitted with nutpie, and for every uncertain
parameter we record whether the truth lies inside the central 90% posterior interval (5%-95%
quantiles). Coverage per parameter is the share of seeds where it does; with ``n`` seeds, a
calibrated fit covers ``0.9 n`` on average (binomial spread), and a systematic miss flags a bias
(here it would be the twin's approximation of the agents, see ``tests/twin/test_twin.py``, or an
unidentified parameter pulled by its prior).

With a ``demand:`` section (``--scenarios funnel3_demand``), the seasonal terms, trend and
controls are parameters like the others (``demand.season.sin1``, ``demand.trend``,
``demand.control.promo``), and each harmonic's amplitude ``sqrt(sin_j^2 + cos_j^2)``
(``demand.season.amplitude<j>``) is recorded the same way, from the draws.

The model of a scenario is compiled once (``build_model(..., observed_as_data=True)``) and refitted
per seed with ``compiled.with_data``; compile time and per-seed sampling time are reported apart.
Scenarios with survey shares (binomial observations, e.g. retail) cannot swap their data and are
recompiled for every seed.

Writes ``experiments/results/recovery.json``.

Usage::

    python experiments/recovery.py                                   # funnel3 and subscription, 5 seeds
    python experiments/recovery.py --scenarios funnel3 --seeds 3 --draws 300 --tune 300
    python experiments/recovery.py --scenarios retail --seeds 1
    python experiments/recovery.py --scenarios funnel3_demand --seeds 20 --draws 300 --tune 300 \
        --out experiments/results/recovery_demand.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from journeysim._util.files import write_json
from journeysim.inference.likelihood import build_model
from journeysim.inference.posterior import convergence_diagnostics
from journeysim.inference.priors import build_space
from journeysim.inference.sampling import compile_nutpie
from journeysim.io.observed import read_observed
from journeysim.model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
RESULTS = Path(__file__).resolve().parent / "results"
WHAT = "parameter recovery: truth inside the central 90% posterior interval, per seed"


def _make_data_module():
    spec = importlib.util.spec_from_file_location("make_data", SCENARIOS / "make_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def regenerate(name: str, seed: int, directory: Path):
    """Observed data and truth for ``name`` simulated by the agents with ``seed`` (via make_data.make)."""
    _make_data_module().make(name, directory, seed=seed)
    truth = json.loads((directory / f"{name}_truth.json").read_text())["truth"]
    return directory / f"{name}_observed.csv", truth


def interval(x: np.ndarray, truth: float) -> dict:
    """Posterior mean, sd, central 90% interval of draws ``x`` and whether it holds ``truth``."""
    lo, hi = np.quantile(x, [0.05, 0.95])
    return {"truth": truth, "mean": float(x.mean()), "sd": float(x.std()), "q05": float(lo), "q95": float(hi),
            "covered": bool(lo <= truth <= hi), "z": float((x.mean() - truth) / max(x.std(), 1e-300))}


def amplitudes(names: list[str]) -> list[int]:
    """Harmonics ``j`` whose sine and cosine are both in ``names`` (their amplitude is recorded)."""
    return [j for j in range(1, 7) if {f"demand.season.sin{j}", f"demand.season.cos{j}"} <= set(names)]


def recover(name: str, seeds: list[int], draws: int, tune: int, chains: int, checkpoint=None) -> dict:
    import nutpie

    sc = load_scenario(SCENARIOS / f"{name}.yaml")
    space = build_space(sc)
    free = [n for n, p in zip(space.names, space.priors) if p.form != "fixed"]
    swappable = all(o.measures != "share" for o in sc.spec.observations)  # shares are binomial: baked in
    compiled = None
    compile_s = []
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            d = Path(tmp) / f"seed{seed}"
            t = time.perf_counter()
            csv, truth = regenerate(name, seed, d)
            data = read_observed(csv, sc)
            sim_s = time.perf_counter() - t
            if compiled is None or not swappable:
                t = time.perf_counter()
                model = build_model(sc, data, space, observed_as_data=swappable)
                compiled = compile_nutpie(model)
                compile_s.append(time.perf_counter() - t)
                cm = compiled
            else:
                cm = compiled.with_data(**{f"observed_{o.column}": o.values[o.observed] for o in data.observations})
            t = time.perf_counter()
            idata = nutpie.sample(cm, draws=draws, tune=tune, chains=chains, cores=min(chains, 2), seed=seed,
                                  progress_bar=False, target_accept=0.9, low_rank_modified_mass_matrix=True)
            sample_s = time.perf_counter() - t
            _, stats = convergence_diagnostics(idata, space.names)
            draws_of = {n: idata.posterior[n].values.reshape(-1) for n in free}
            params = {n: interval(x, truth[n]) for n, x in draws_of.items()}
            for j in amplitudes(free):
                s, c = f"demand.season.sin{j}", f"demand.season.cos{j}"
                params[f"demand.season.amplitude{j}"] = interval(np.hypot(draws_of[s], draws_of[c]),
                                                                 float(np.hypot(truth[s], truth[c])))
            runs.append({"seed": seed, "simulate_seconds": sim_s, "sample_seconds": sample_s, **stats,
                         "parameters": params})
            if checkpoint is not None:
                checkpoint({"scenario": f"{name}.yaml", "partial": True, "runs": runs})
            cov = sum(p["covered"] for p in params.values())
            print(f"  {name} seed {seed}: {sample_s:.0f} s sampling, max r-hat {stats['max_rhat']:.3f}, "
                  f"divergences {stats['divergences']}, truth in 90% interval for {cov}/{len(params)}", flush=True)
    reported = list(runs[0]["parameters"])
    coverage = {n: float(np.mean([r["parameters"][n]["covered"] for r in runs])) for n in reported}
    mean_z = {n: float(np.mean([r["parameters"][n]["z"] for r in runs])) for n in reported}
    return {"scenario": f"{name}.yaml", "weeks": sc.weeks, "agents": sc.structure.agents, "seeds": seeds,
            "draws": draws, "tune": tune, "chains": chains, "compiled_once": swappable,
            "compile_seconds": compile_s, "sample_seconds": [r["sample_seconds"] for r in runs],
            "coverage_90": coverage, "mean_z": mean_z,
            "converged_fits": int(sum(r["converged"] for r in runs)), "runs": runs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", nargs="+", default=["funnel3", "subscription"])
    ap.add_argument("--seeds", type=int, default=5, help="number of seeds (1, 2, ...)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS / "recovery.json")
    a = ap.parse_args(argv)
    seeds = list(range(a.first_seed, a.first_seed + a.seeds))
    previous = json.loads(a.out.read_text()) if a.out.exists() else {}
    results = previous.get("scenarios", {})
    for name in a.scenarios:
        print(f"{name}: {len(seeds)} seeds", flush=True)
        def save(partial, name=name):
            results[name] = partial
            write_json({"what": WHAT, "scenarios": results}, a.out)

        save(recover(name, seeds, a.draws, a.tune, a.chains, checkpoint=save))
    for name, r in results.items():
        if r.get("partial"):
            continue
        print(f"\n{name}: compile {sum(r['compile_seconds']):.0f} s, sampling "
              f"{np.median(r['sample_seconds']):.0f} s per seed (median), converged {r['converged_fits']}/{len(r['seeds'])}")
        for p, c in r["coverage_90"].items():
            print(f"  {p:42s} coverage {c:.0%}  mean z {r['mean_z'][p]:+.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
