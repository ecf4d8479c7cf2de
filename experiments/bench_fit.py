"""Benchmark of calibration: how long a NUTS fit of the example scenarios takes (a script, not a test).

The issue's target: the retail example (104 weeks of daily steps, 4 observed series, 8 uncertain
parameters + 3 noise levels) fitted with 4 chains x 1000 draws (1000 tuning) in at most 60 s, with
r-hat <= 1.01 and no divergences.

For each scenario the script times, separately:

* **build**: the PyMC graph (:func:`journeysim.inference.likelihood.build_model`);
* **compile**: ``calibrate.compile_nutpie`` (nutpie's numba backend: pytensor rewrites + numba/LLVM), paid once per
  model and process;
* **logp+grad**: one evaluation of the log density and its gradient, the unit of NUTS work
  (median of repeated calls of the compiled function at the initial point);
* **sample**: ``nutpie.sample`` with the requested chains/draws/tune on ``cores`` (default 2, the
  machine's), with the number of gradient evaluations (leapfrog steps, warm-up included) it took;
* **peer**: PyMC-Marketing's MMM (:func:`peer_mmm.fit_peer`: geometric adstock, logistic saturation,
  yearly seasonality, a trend; its default priors) on the same CSV's ``spend_*`` columns and the
  scenario's purchase KPI, with the same chains, draws and tuning, in the same run (``--no-peer``
  skips it), and the time ratio journeysim / PyMC-Marketing (build, compile and sampling on both
  sides).

When a run is shortened (``--draws``/``--tune`` below 1000), it also reports the projection to
1000 + 1000 per chain: ``gradient evaluations per iteration x 2000 x chains x seconds per
evaluation / cores``. Every figure depends on the load of the machine, which is recorded (the
load average before and after) next to it. Writes ``experiments/results/bench_fit.json``.

Usage::

    python experiments/bench_fit.py             # all three, as `journeysim fit` would: flags given, else
                                                # the scenario's fit: section, else 4 chains x (1000 + 1000)
    python experiments/bench_fit.py --scenarios retail --draws 200 --tune 200
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from bench_twin_kernel import (
    _median_ms,  # experiments/ is on sys.path when a script of it runs
)
from peer_mmm import fit_peer

from journeysim._util.files import write_json
from journeysim.inference.likelihood import build_model
from journeysim.inference.posterior import convergence_diagnostics
from journeysim.inference.priors import COORDS
from journeysim.inference.sampling import compile_nutpie, fit_settings
from journeysim.io.observed import read_observed
from journeysim.model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
TARGET = {"scenario": "retail", "chains": 4, "draws": 1000, "tune": 1000, "seconds": 60.0, "max_rhat": 1.01,
          "divergences": 0}


def _grad_time(compiled, n: int = 30) -> float | None:
    """Median seconds of one logp+gradient call of nutpie's compiled function, or None if unavailable."""
    try:
        x = np.asarray(compiled.initial_point_func(0), float) if hasattr(compiled, "initial_point_func") else None
        return _median_ms(compiled.logp_func, x, n) / 1e3
    except Exception as exc:  # the internals of nutpie are not an API: report and go on
        print(f"  (direct logp+grad timing unavailable: {type(exc).__name__}: {exc})")
        return None


def _purchase_column(sc, data) -> str:
    """The observed KPI a media-mix model would take as its target: the first one counting purchases."""
    for kind in ("purchases", "new_customers", "revenue"):
        for obs in data.observations:
            if obs.measures == kind:
                return obs.column
    return data.observations[0].column


def bench_peer(name: str, sc, data, chains: int, draws: int, tune: int, seed: int) -> dict:
    """PyMC-Marketing's MMM on the same CSV and sampler sizes (wall time of ``mmm.fit``, build included)."""
    import pandas as pd

    csv = ROOT / "scenarios" / "data" / f"{name}_observed.csv"
    history = pd.read_csv(csv)
    target = _purchase_column(sc, data)
    spend = [f"spend_{c}" for c in sc.structure.channels if f"spend_{c}" in history.columns]
    history[spend] = history[spend].fillna(0.0)
    t = time.perf_counter()
    fit = fit_peer(history, seed=seed, draws=draws, tune=tune, chains=chains, target=target, spend=spend)
    wall = time.perf_counter() - t
    out = {"model": "pymc_marketing MMM (geometric adstock l_max 8, logistic saturation, 2 Fourier modes, trend)",
           "target": target, "channels": spend, "wall_seconds": wall, **fit.summary()}
    print(f"  {name}: PyMC-Marketing {wall:.1f} s ({fit.sampler}, {chains} x ({tune} + {draws})); max r-hat "
          f"{fit.max_rhat:.3f}, divergences {fit.divergences}, min bulk ESS {fit.min_ess_bulk:.0f}", flush=True)
    return out


def bench(name: str, chains: int | None, draws: int | None, tune: int | None, cores: int, seed: int,
          fused: bool = True, target_accept: float | None = None, coords: str | None = None,
          peer: bool = True) -> dict:
    """One scenario; settings left as None come from its ``fit:`` section, else ``calibrate``'s defaults."""
    import nutpie

    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    st, src = fit_settings(sc, dict(chains=chains, draws=draws, tune=tune, target_accept=target_accept,
                                    coords=coords))
    chains, draws, tune, target_accept, coords = (st[k] for k in ("chains", "draws", "tune", "target_accept",
                                                                   "coords"))
    print(f"  {name}: {chains} chains x ({tune} + {draws}), target acceptance {target_accept}, coords {coords}"
          + "".join(f"; {k} from the scenario" for k, v in src.items() if v == "scenario"), flush=True)
    data = read_observed(ROOT / "scenarios" / "data" / f"{name}_observed.csv", sc)
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    model = build_model(sc, data, fused=fused, coords=coords)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    compiled = compile_nutpie(model)
    compile_s = time.perf_counter() - t
    grad_s = _grad_time(compiled)
    print(f"  {name}: build {build_s:.1f} s, compile {compile_s:.1f} s, logp+grad "
          f"{grad_s * 1e3 if grad_s else float('nan'):.2f} ms; sampling {chains} x ({tune} + {draws}) ...", flush=True)
    t = time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=min(chains, cores), seed=seed,
                          progress_bar=False, target_accept=target_accept, low_rank_modified_mass_matrix=True)
    sample_s = time.perf_counter() - t
    load1 = os.getloadavg()[0]
    grads = int(idata.sample_stats["n_steps"].sum())
    if "warmup_sample_stats" in idata.groups():
        grads += int(idata.warmup_sample_stats["n_steps"].sum())
    _, stats = convergence_diagnostics(idata, None)
    iters = chains * (draws + tune)
    sec_per_grad = sample_s * min(chains, cores) / grads  # per core
    projected = grads / iters * chains * 2000 * sec_per_grad / min(chains, cores)
    out = {
        "scenario": f"{name}.yaml", "likelihood": "fused TwinScan Op" if fused else "pytensor.scan",
        "coords": coords, "settings_from": src,
        "weeks": data.weeks, "steps": data.weeks * len(sc.structure.substeps),
        "free_variables": len(model.free_RVs), "target_accept": target_accept, "chains": chains, "draws": draws,
        "tune": tune, "cores": min(chains, cores),
        "build_seconds": build_s, "compile_seconds": compile_s, "sample_seconds": sample_s,
        "total_seconds": build_s + compile_s + sample_s,
        "logp_grad_ms_direct": grad_s * 1e3 if grad_s else None,
        "gradient_evaluations": grads, "gradients_per_iteration": grads / iters,
        "ms_per_gradient_in_sampling": sec_per_grad * 1e3,
        "projected_sample_seconds_4x1000_draws_1000_tune": projected if chains == 4 else None,
        "loadavg_before": load0, "loadavg_after": load1, **stats,
    }
    print(f"  {name}: sample {sample_s:.1f} s ({grads} gradients, {grads / iters:.1f} per iteration, "
          f"{sec_per_grad * 1e3:.2f} ms each per core); max r-hat {stats['max_rhat']:.3f}, "
          f"divergences {stats['divergences']}, min bulk ESS {stats['min_ess_bulk']:.0f}", flush=True)
    if peer:
        out["peer"] = bench_peer(name, sc, data, chains, draws, tune, seed)
        out["time_ratio_journeysim_to_peer"] = out["total_seconds"] / out["peer"]["wall_seconds"]
        print(f"  {name}: journeysim {out['total_seconds']:.1f} s / PyMC-Marketing {out['peer']['wall_seconds']:.1f} s"
              f" = {out['time_ratio_journeysim_to_peer']:.2f}x", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", nargs="+", default=["funnel3", "subscription", "retail"])
    # (sampler settings not given: the scenario's fit: section, else calibrate's defaults, as journeysim fit)
    ap.add_argument("--chains", type=int, help="default 4")
    ap.add_argument("--draws", type=int, help="default 1000")
    ap.add_argument("--tune", type=int, help="default 1000")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target-accept", type=float, help="default 0.9")
    ap.add_argument("--scan", action="store_true", help="the pytensor.scan likelihood instead of the fused Op")
    ap.add_argument("--coords", choices=COORDS,
                    help="sampler coordinates of lognormal parameters (calibrate(coords=...); default log)")
    ap.add_argument("--no-peer", action="store_true", help="skip PyMC-Marketing's MMM on the same CSV")
    ap.add_argument("--out", type=Path, default=RESULTS / "bench_fit.json")
    a = ap.parse_args(argv)
    previous = json.loads(a.out.read_text()) if a.out.exists() else {}
    results = previous.get("scenarios", {})
    for name in a.scenarios:
        results[name] = bench(name, a.chains, a.draws, a.tune, a.cores, a.seed, fused=not a.scan,
                              target_accept=a.target_accept, coords=a.coords, peer=not a.no_peer)
        r = results.get("retail")
        verdict = None
        if r is not None:
            # the target is 4 chains x 1000 draws; the number of tuning steps is the fit's own choice
            at_size = (r["chains"], r["draws"]) == (4, 1000)
            secs = r["sample_seconds"] if at_size else r["projected_sample_seconds_4x1000_draws_1000_tune"]
            verdict = {"sampling_seconds_at_target_size": secs, "measured_not_projected": at_size, "tune": r["tune"],
                       "with_compile_seconds": (secs or 0) + r["compile_seconds"] + r["build_seconds"],
                       "meets_60s": bool(secs is not None and secs + r["compile_seconds"] + r["build_seconds"] <= 60),
                       "meets_rhat": r["max_rhat"] <= 1.01, "no_divergences": r["divergences"] == 0,
                       "faster_than_peer": (r["time_ratio_journeysim_to_peer"] < 1.0
                                            if "time_ratio_journeysim_to_peer" in r else None)}
        write_json({"target": TARGET, "cpu_count": os.cpu_count(), "scenarios": results, "retail_verdict": verdict},
                   a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
