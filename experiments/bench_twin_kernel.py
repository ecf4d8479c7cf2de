"""Benchmark of the fused twin Op: one logp+gradient of the retail model, fused vs ``pytensor.scan``.

``build_model(..., fused=True)`` runs the 728 daily steps of the retail history as one compiled Op
(:mod:`journeysim.inference.ops`: a numba forward kernel and a hand-derived reverse-mode kernel);
``fused=False`` runs :func:`journeysim.twin.step.twin_step` inside ``pytensor.scan``. For each, the
script compiles the model's joint log density and gradient and reports the median time of one
call at the initial point (30 calls after a warm-up):

* **pytensor**: ``model.logp_dlogp_function()`` (PyTensor's default C backend, the function PyMC's
  own NUTS calls);
* **nutpie** (``--nutpie``): ``calibrate.compile_nutpie(model)`` (nutpie's numba backend) and its
  ``logp_func`` (the function nutpie samples with), with the compile time.

It also checks that both give the same logp and gradient. Timings depend on the machine's load
(printed). A script, not a test; it writes nothing.

Usage::

    python experiments/bench_twin_kernel.py                 # retail, pytensor backend
    python experiments/bench_twin_kernel.py --nutpie        # also nutpie's numba backend (slow compile of scan)
    python experiments/bench_twin_kernel.py --scenario shop
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from journeysim.inference.likelihood import build_model
from journeysim.inference.sampling import compile_nutpie
from journeysim.io.observed import read_observed
from journeysim.model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def _median_ms(f, x, n: int) -> float:
    f(x)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def _pytensor(model, n):
    t = time.perf_counter()
    fn = model.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    ip = model.initial_point()
    x = np.concatenate([np.ravel(ip[v.name]) for v in fn._grad_vars])  # noqa: SLF001 - the function's own order
    compile_s = time.perf_counter() - t
    logp, grad = fn(x)
    return compile_s, _median_ms(fn, x, n), float(logp), np.asarray(grad)


def _nutpie(model, n):
    t = time.perf_counter()
    compiled = compile_nutpie(model)
    compile_s = time.perf_counter() - t
    x = np.asarray(compiled.initial_point_func(0), float) if hasattr(compiled, "initial_point_func") else None
    f = compiled.logp_func
    logp, grad = f(x)
    return compile_s, _median_ms(f, x, n), float(logp), np.asarray(grad)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="retail")
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--nutpie", action="store_true", help="also time nutpie's numba backend")
    a = ap.parse_args(argv)
    sc = load_scenario(ROOT / "scenarios" / f"{a.scenario}.yaml")
    data = read_observed(ROOT / "scenarios" / "data" / f"{a.scenario}_observed.csv", sc)
    print(f"{a.scenario}: {data.weeks} weeks, {data.weeks * len(sc.structure.substeps)} steps; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    backends = [("pytensor", _pytensor)] + ([("nutpie", _nutpie)] if a.nutpie else [])
    for bname, run in backends:
        res = {}
        for fused in (True, False):
            model = build_model(sc, data, fused=fused)
            compile_s, ms, logp, grad = run(model, a.calls)
            res[fused] = (logp, grad)
            print(f"  {bname:8s} {'fused' if fused else 'scan':5s}: logp+grad {ms:8.2f} ms  (compile {compile_s:5.1f} s)"
                  f"  logp {logp:.6f}", flush=True)
        (l1, g1), (l0, g0) = res[True], res[False]
        rel = np.max(np.abs(g1 - g0)) / max(np.max(np.abs(g0)), 1e-300)
        print(f"  {bname:8s} fused vs scan: |dlogp| {abs(l1 - l0):.2e}, max gradient difference / max |gradient| "
              f"{rel:.2e}", flush=True)
    print(f"  load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
