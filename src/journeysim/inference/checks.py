"""Model checks after a fit: posterior predictive draws, coverage of the observed weeks, and the path check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from journeysim._util.stats import interval, interval_levels, thin
from journeysim.inference.likelihood import AR1_NOISE_PRIOR_SIGMA
from journeysim.inference.pathlik import PathCounts, predict_follow
from journeysim.inference.posterior import Fit, posterior_params
from journeysim.io.observed import ObservedData
from journeysim.model.observe import NOISE_DEFAULT, expected_kpi, sample_kpi

__all__ = ['posterior_predictive', 'prior_predictive', 'prior_check', 'path_check', 'LEVEL_FACTOR', 'INSIDE_MIN']

#: ``check`` warns when a KPI's prior median level is off the observed level by more than this factor...
LEVEL_FACTOR = 2.0
#: ...or when fewer than this share of the observed weeks lie inside the prior's 90% band.
INSIDE_MIN = 0.5


def _predictive(scenario, params, data: ObservedData, rng, noise=None, persistence=None) -> xr.Dataset:
    """Expected value and a noisy replicate of every observed series per draw of ``params`` (the
    numpy twin over the history, all draws at once). ``noise(obs, n)`` gives the ``(n,)``
    coefficients of variation of a negbin or normal KPI (the innovations' sd of an ar1 one) and
    ``persistence(obs, n)`` an ar1 KPI's lag-one correlations; ``None``: the likelihood's default."""
    from journeysim.model.observe import weekly_arrays
    from journeysim.twin.run import Twin

    n = np.asarray(params.wom_rate).shape[0]
    ds = Twin(scenario.over(data), params=params, plan=data.plan).run(batch_dims=("draw",),
                                                                      batch_coords={"draw": np.arange(n)})
    arrays = weekly_arrays(ds)
    st = scenario.structure
    out = {}
    for obs in data.observations:
        mask = np.array([s in obs.stages for s in st.stages], float)
        mu = expected_kpi(np, arrays, obs.measures, mask, st.population, obs.scale)  # (draw, W)
        if obs.likelihood in ("negbin", "normal", "ar1"):
            default = AR1_NOISE_PRIOR_SIGMA / 2 if obs.likelihood == "ar1" else NOISE_DEFAULT
            cv = noise(obs, n) if noise is not None else np.full(n, default)
            rho = persistence(obs, n) if persistence is not None else np.full(n, 0.5)
            rep = np.stack([sample_kpi(rng, mu[i], obs.likelihood, noise=max(float(cv[i]), 1e-6),
                                       persistence=float(rho[i])) for i in range(n)])
        else:
            rep = np.stack([sample_kpi(rng, mu[i], obs.likelihood, sample_size=obs.sample_size) for i in range(n)])
        out[f"{obs.column}_expected"] = (("draw", "time"), mu)
        out[f"{obs.column}_replicate"] = (("draw", "time"), rep)
        out[f"{obs.column}_observed"] = (("time",), obs.values)
    return xr.Dataset(out, coords={"time": data.dates, "draw": np.arange(n)})


def posterior_predictive(scenario, fit: Fit, data: ObservedData, *, max_draws: int = 200, seed: int = 0) -> xr.Dataset:
    """Posterior predictive of every observed series: expected value and a noisy replicate per draw,
    with each draw's fitted noise (:func:`_predictive`)."""
    params, _ = posterior_params(scenario, fit, max_draws=max_draws)
    post = fit.idata.posterior

    def draws_of(prefix, default):
        def get(obs, n):
            name = f"{prefix}_{obs.column}"
            if name not in post:
                return np.full(n, default)
            allc = post[name].values.reshape(-1)
            return allc[thin(allc.size, n)]
        return get

    return _predictive(scenario, params, data, np.random.default_rng(seed), draws_of("noise", 0.0),
                       draws_of("persistence", 0.0))


def prior_predictive(scenario, data: ObservedData, *, draws: int = 200, seed: int = 0) -> xr.Dataset:
    """Prior predictive of every observed series (the same layout as :func:`posterior_predictive`):
    the twin over the history for ``draws`` draws of the priors, before any fitting."""
    from journeysim.inference.priors import build_space

    scenario = scenario.with_data(data)
    space = build_space(scenario)
    rng = np.random.default_rng([seed, 0x9A10])
    values = space.sample_prior(draws, rng)
    params = space.to_params(np, [values[:, j] for j in range(values.shape[1])], scenario.params)
    return _predictive(scenario, params.broadcast((draws,)), data, rng)


def prior_check(ppc: xr.Dataset) -> tuple[pd.DataFrame, list[str]]:
    """Per KPI: observed mean level, the prior's median level and 90% band of it, the share of
    observed weeks inside the prior's 90% band, and a warning for each KPI whose level is off by more
    than :data:`LEVEL_FACTOR` or whose series lies mostly outside the band (:data:`INSIDE_MIN`)."""
    lo_q, hi_q = interval_levels(0.9)
    rows, warnings = [], []
    for v in ppc.data_vars:
        if not v.endswith("_observed"):
            continue
        col = v[: -len("_observed")]
        y = np.asarray(ppc[v].values, float)
        ok = np.isfinite(y)
        if not ok.any() or not np.any(y[ok] != 0):  # (a KPI with no information: the data checks say so)
            continue
        rep = np.asarray(ppc[f"{col}_replicate"].values, float)[:, ok]
        level = np.asarray(ppc[f"{col}_expected"].values, float)[:, ok].mean(axis=1)
        lo, hi = np.quantile(rep, [lo_q, hi_q], axis=0)
        inside = float(np.mean((y[ok] >= lo) & (y[ok] <= hi)))
        obs = float(y[ok].mean())
        med = float(np.median(level))
        ratio = med / obs if obs > 0 else np.inf
        rows.append({"kpi": col, "observed_mean": obs, "prior_median": med,
                     "prior_lower": float(np.quantile(level, lo_q)), "prior_upper": float(np.quantile(level, hi_q)),
                     "ratio": ratio, "inside_90": inside})
        if not (1 / LEVEL_FACTOR <= ratio <= LEVEL_FACTOR):
            warnings.append(f"{col}: the scenario's level is {ratio:.2g}x the observed one (prior median "
                            f"{med:,.4g} a week against {obs:,.4g}); adjust its base rates, initial shares or the "
                            f"observation's scale before fitting")
        elif inside < INSIDE_MIN:
            warnings.append(f"{col}: only {inside:.0%} of the observed weeks lie inside the prior's 90% band; the "
                            f"scenario's dynamics or priors do not cover this series")
    return pd.DataFrame(rows), warnings


def path_check(scenario, fit, data, counts: PathCounts, *, max_draws: int = 100) -> pd.DataFrame:
    """Posterior predictive check of a path table: observed follow rates against the fitted ones.

    Returns
    -------
    pandas.DataFrame
        Per source with touches: ``touches``, ``followed``, ``observed_rate``, and the posterior
        median and 5%/95% quantiles of the predicted rate (without the model-error term).
    """
    from journeysim.inference.posterior import posterior_params

    params, _ = posterior_params(scenario, fit, max_draws=max_draws)
    n = np.asarray(params.wom_rate).shape[0]
    pis = np.stack([predict_follow(scenario, data, params.draw(i)).to_numpy() for i in range(n)])
    out = counts.table()
    out["predicted_median"] = np.median(pis, axis=0)
    out["predicted_5%"], out["predicted_95%"] = interval(pis, 0.9, axis=0)
    return out[counts.used]




def ppc_coverage(ppc) -> dict:
    import numpy as np

    out = {}
    for v in ppc.data_vars:
        if v.endswith("_observed"):
            c = v[: -len("_observed")]
            y = ppc[v].values
            ok = ~np.isnan(y)
            lo, hi = ppc[f"{c}_replicate"].quantile(list(interval_levels(0.9)), dim="draw").values
            out[c] = float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok])))
    return out
