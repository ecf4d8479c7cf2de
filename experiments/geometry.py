"""How the sampler's coordinates shape the retail posterior (a script, not a test).

NUTS's step size is set by the largest curvature of the log posterior in the coordinates it moves
in (after its mass matrix whitens them), and its trajectory length by the smallest. When that
curvature changes from one part of the posterior to another (a curved ridge), no single mass
matrix fits and NUTS takes many small steps. This script measures it:

1. a short fit of the example (2 chains x (300 + 300), target acceptance 0.9) gives posterior
   draws of the parameters (it may warn that it did not converge, r-hat 1.02 on retail: the draws
   only need to cover the posterior roughly);
2. for each coordinate system (``log``: PyMC's ``log x`` for lognormal priors; ``softplus``:
   :func:`journeysim.inference.priors.SoftplusScaled`), the draws are mapped into that system and whitened
   with their covariance (what an ideal dense mass matrix would do), and the Hessian of the log
   density (central differences of the gradient) is taken at ``--points`` draws;
3. it reports percentiles of the largest and smallest eigenvalue over those draws. For a Gaussian
   posterior both would be 1 everywhere.

Measured 2026-11-30 (retail, 25 draws): largest eigenvalue median 8.4 (90th percentile 17.9) in
log coordinates, 3.1 (5.8) in softplus coordinates; smallest median -0.38 and 0.40 (negative: not
log-concave there). NUTS took 15-17 and 9.5 gradients per draw.

Usage::

    python experiments/geometry.py [--scenario retail] [--points 25] [--out experiments/results/geometry.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from journeysim._util.files import write_json
from journeysim.inference.likelihood import build_model
from journeysim.inference.sampling import calibrate
from journeysim.io.observed import read_observed
from journeysim.model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def _to_values(model, draws: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Posterior draws of the free variables (by name) in the model's own sampler coordinates."""
    cols, names = [], []
    for rv in model.free_RVs:
        value_var = model.rvs_to_values[rv]
        tr = model.rvs_to_transforms.get(rv)
        x = np.asarray(draws[rv.name], np.float64)
        y = x if tr is None else np.asarray(tr.forward(x, *rv.owner.inputs).eval())
        cols.append(y)
        names.append(value_var.name)
    return names, np.column_stack(cols)


def curvature(model, draws: dict[str, np.ndarray], points: int, seed: int = 0) -> dict:
    names, Y = _to_values(model, draws)
    fn = model.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    order = [v.name for v in fn._grad_vars]  # noqa: SLF001 - the function's own order
    Y = Y[:, [names.index(n) for n in order]]
    L = np.linalg.cholesky(np.cov(Y.T))
    grad = lambda y: np.asarray(fn(y)[1])  # noqa: E731
    rng = np.random.default_rng(seed)
    lam_max, lam_min = [], []
    eps = 1e-4
    for i in rng.choice(len(Y), points, replace=False):
        d = Y.shape[1]
        H = np.empty((d, d))
        for j in range(d):
            H[:, j] = (grad(Y[i] + eps * L[:, j]) - grad(Y[i] - eps * L[:, j])) / (2 * eps)
        Hw = -L.T @ H
        w = np.linalg.eigvalsh((Hw + Hw.T) / 2)
        lam_max.append(w[-1])
        lam_min.append(w[0])
    pct = lambda v: dict(zip(("p10", "p50", "p90"), np.percentile(v, [10, 50, 90]).round(2).tolist()))  # noqa: E731
    return {"coordinates": order, "largest_eigenvalue": pct(lam_max), "smallest_eigenvalue": pct(lam_min)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="retail")
    ap.add_argument("--points", type=int, default=25)
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "geometry.json")
    a = ap.parse_args(argv)
    sc = load_scenario(ROOT / "scenarios" / f"{a.scenario}.yaml")
    data = read_observed(ROOT / "scenarios" / "data" / f"{a.scenario}_observed.csv", sc)
    fit = calibrate(sc, data, draws=300, tune=300, chains=2, seed=1, target_accept=0.9, progress=False)
    post = fit.idata.posterior
    draws = {v: post[v].values.reshape(-1) for v in post.data_vars if not v.endswith("__")}
    out = {"scenario": a.scenario, "points": a.points, "fit": "2 chains x (300 + 300), target acceptance 0.9"}
    for label in ("log", "softplus"):
        res = curvature(build_model(sc, data, coords=label), draws, a.points)
        out[label] = res
        print(f"{label:9s} largest eigenvalue {res['largest_eigenvalue']}  smallest {res['smallest_eigenvalue']}",
              flush=True)
    write_json(out, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
