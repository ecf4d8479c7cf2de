"""A calibration's result: the posterior draws, their convergence diagnostics, loading and thinning."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from journeysim._util.stats import thin
from journeysim.errors import ConvergenceError, InputError
from journeysim.inference.priors import ParamSpace, build_space
from journeysim.model.dynamics import Params

__all__ = ['Fit', 'load_fit', 'posterior_params', 'known_fit', 'convergence_advice']


#: Convergence thresholds: max r-hat, min bulk ESS per chain, divergences allowed.
RHAT_MAX = 1.01
ESS_PER_CHAIN = 100


@dataclass
class Fit:
    """The result of :func:`calibrate`: posterior draws, diagnostics and what produced them."""

    idata: Any
    space: ParamSpace
    diagnostics: pd.DataFrame
    converged: bool
    info: dict = field(default_factory=dict)

    @property
    def posterior(self) -> xr.Dataset:
        return self.idata.posterior

    def params(self, scenario, max_draws: int | None = None, seed: int = 0) -> tuple[Params, np.ndarray]:
        """Posterior draws as batched :class:`Params` (leading ``draw`` axis) and the draw values."""
        return posterior_params(scenario, self, max_draws=max_draws, seed=seed)

    def save(self, out: str | Path) -> None:
        """Write ``posterior.nc``, ``diagnostics.csv`` and ``fit.json`` under ``out`` (atomically)."""
        from journeysim._util.files import atomic_path, write_json, write_text

        out = Path(out)
        with atomic_path(out / "posterior.nc") as tmp:
            self.idata.to_netcdf(str(tmp), engine="h5netcdf")
        write_text(self.diagnostics.to_csv(), out / "diagnostics.csv")
        write_json({**self.info, "converged": self.converged, "parameters": list(self.space.names),
                    "priors": {n: str(p) for n, p in zip(self.space.names, self.space.priors)}}, out / "fit.json")


def convergence_diagnostics(idata, names) -> tuple[pd.DataFrame, dict]:
    import arviz as az

    var_names = [v for v in idata.posterior.data_vars if not v.endswith("__")]  # (not the sampler's coordinates)
    summ = az.summary(idata, var_names=var_names, kind="all", hdi_prob=0.9)
    div = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
    chains = idata.posterior.sizes["chain"]
    stats = {
        "max_rhat": float(summ["r_hat"].max()),
        "min_ess_bulk": float(summ["ess_bulk"].min()),
        "min_ess_tail": float(summ["ess_tail"].min()),
        "divergences": div,
        "chains": int(chains),
        "draws": int(idata.posterior.sizes["draw"]),
    }
    stats["converged"] = bool(stats["max_rhat"] <= RHAT_MAX and stats["min_ess_bulk"] >= ESS_PER_CHAIN * chains
                              and div == 0)
    return summ, stats


def convergence_advice(idata, summ: pd.DataFrame, stats: dict) -> list[str]:
    """What to try when a fit did not converge, from what went wrong (empty when it converged).

    * chains that settled on different values of a parameter (each chain's mean more than two of
      its within-chain standard deviations from another's): the data allow more than one
      explanation; the parameters are named, with the cure (a prior that decides, a lift test);
    * r-hat a little high or too few effective draws: more tuning and draws, with a number;
    * divergences: a higher target acceptance.
    """
    if stats.get("converged"):
        return []
    out = []
    post = idata.posterior
    chains, draws = stats["chains"], stats["draws"]
    split = []
    if chains > 1:
        for name in summ.index:
            base = name.split("[")[0]
            if base not in post.data_vars or base.endswith("@typical") or post[base].ndim != 2:
                continue
            x = post[base].values
            m, sd = x.mean(axis=1), x.std(axis=1)
            gap = (m.max() - m.min()) / max(float(np.sqrt(np.mean(sd ** 2))), 1e-300)
            if gap > 2.0:
                split.append((base.startswith("noise_"), -gap, base))  # (the model's parameters first)
    split.sort()
    if split:
        names = ", ".join(f"'{n}'" for *_, n in split[:3])
        out.append(f"the chains settled on different values of {names}: the data allow more than one explanation "
                   f"(often two channels that moved together); a prior that says which (priors:), a lift test "
                   f"on one of them (lift_tests:), or more weeks of data decide between them")
    ess_need = ESS_PER_CHAIN * chains
    if stats["max_rhat"] > RHAT_MAX or stats["min_ess_bulk"] < ess_need:
        factor = min(8.0, max(2.0, ess_need / max(stats["min_ess_bulk"], 1.0)))  # (at least twice as many)
        more = int(np.ceil(factor * draws / 100.0) * 100)
        out.append(f"run longer: --draws {more} --tune {more}" + ("" if chains >= 4 else " --chains 4"))
    if stats.get("divergences", 0):
        out.append("raise the target acceptance (--target-accept 0.95, then 0.99)")
    return out


def posterior_params(scenario, fit: Fit, *, max_draws: int | None = None, seed: int = 0) -> tuple[Params, np.ndarray]:
    """Batched :class:`Params` for posterior draws (chains stacked; thinned to ``max_draws`` evenly)."""
    post = fit.idata.posterior
    n = post.sizes["chain"] * post.sizes["draw"]
    idx = thin(n, max_draws)
    cols = []
    for name, prior in zip(fit.space.names, fit.space.priors):
        if prior.form == "fixed":
            cols.append(np.full(idx.size, prior.args[0]))
        else:
            cols.append(post[name].values.reshape(-1)[idx])
    values = np.column_stack(cols) if cols else np.zeros((idx.size, 0))
    params = fit.space.to_params(np, [values[:, j] for j in range(values.shape[1])], scenario.params)
    params = params.broadcast((idx.size,))
    return params, values


def load_fit(fit_dir: str | Path, scenario) -> Fit:
    """Read a fit saved by :meth:`Fit.save` (the scenario gives the parameter space)."""
    import arviz as az

    fit_dir = Path(fit_dir)
    meta_path = fit_dir / "fit.json"
    post_path = fit_dir / "posterior.nc"
    for p in (meta_path, post_path):
        if not p.exists():
            raise InputError(f"no {p.name}: is this the --out directory of `journeysim fit`?", str(fit_dir))
    info = json.loads(meta_path.read_text())
    idata = az.from_netcdf(str(post_path))
    space = build_space(scenario, info.get("priors"))
    missing = [n for n, p in zip(space.names, space.priors) if p.form != "fixed" and n not in idata.posterior]
    if missing:
        raise InputError(f"the posterior has no draws of {', '.join(missing)}: it was fitted with another scenario",
                         str(fit_dir))
    diag_path = fit_dir / "diagnostics.csv"
    diag = pd.read_csv(diag_path, index_col=0) if diag_path.exists() else pd.DataFrame()
    info = {**info, "fit_dir": str(fit_dir)}
    return Fit(idata, space, diag, bool(info.get("converged", False)), info)


def require_converged(fit: Fit, allow: bool) -> None:
    """Refuse a fit that did not converge unless ``allow``."""
    if not fit.converged and not allow:
        i = fit.info

        def num(key, fmt):  # (fit.json stores an undefined r-hat, e.g. of one chain, as null)
            v = i.get(key)
            return format(v, fmt) if isinstance(v, (int, float)) and v == v else "undefined"

        if num("max_rhat", ".3f") == "undefined":  # (one chain, or a fit.json without diagnostics)
            n = i.get("chains")
            chains = f"{n} chain{'s' if n != 1 else ''}" if n is not None else "no recorded diagnostics"
            raise InputError(f"convergence cannot be checked: r-hat is undefined ({chains}; it needs at least two "
                             "chains); refit with --chains 2 or more, or pass --allow-unconverged to use it anyway",
                             str(i.get("fit_dir", "--posterior")))
        raise ConvergenceError(
            f"the fit did not converge (max r-hat {num('max_rhat', '.3f')}, min bulk ESS "
            f"{num('min_ess_bulk', '.0f')}, {i.get('divergences', '?')} divergences); "
            "refit with more draws, or pass --allow-unconverged to forecast anyway")




def known_fit(scenario, *, draws: int = 200, spread: float = 0.0, seed: int = 0, priors: dict | None = None):
    """A :class:`~journeysim.inference.posterior.Fit` whose posterior draws are the scenario's own parameters.

    With ``spread > 0`` each uncertain parameter is jittered by a lognormal factor of that sd (shares
    with a beta prior, such as carry-over, on their log-odds, so that they stay below one). Use it
    to plan with parameters you already trust (or the truth, in a simulation study) without sampling.
    """
    import arviz as az
    import pandas as pd

    from journeysim.inference.priors import build_space

    space = build_space(scenario, priors)
    truth = space.values_of(scenario.params)
    rng = np.random.default_rng(seed)
    post = {}
    for name, prior, v in zip(space.names, space.priors, truth):
        if prior.form == "fixed":
            continue
        z = spread * rng.standard_normal(draws)
        if prior.form == "beta":  # a share (carry-over, initial share): jitter its log-odds, stay in (0, 1)
            lo = np.log(v / (1.0 - v))
            post[name] = (1.0 / (1.0 + np.exp(-(lo + z))))[None]
        else:
            post[name] = (v * np.exp(z))[None]
    idata = az.from_dict(posterior=post)
    info = {"method": "known", "spread": spread, "converged": True, "scenario": scenario.name}
    return Fit(idata, space, pd.DataFrame(), True, info)
