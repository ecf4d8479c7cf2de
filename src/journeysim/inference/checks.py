"""Model checks after a fit: posterior predictive draws, coverage of the observed weeks, and the path check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from journeysim._util.stats import interval, interval_levels, thin
from journeysim.inference.pathlik import PathCounts, predict_follow
from journeysim.inference.posterior import Fit, posterior_params
from journeysim.io.observed import ObservedData
from journeysim.model.observe import expected_kpi, sample_kpi

__all__ = ['posterior_predictive', 'path_check']


def posterior_predictive(scenario, fit: Fit, data: ObservedData, *, max_draws: int = 200, seed: int = 0) -> xr.Dataset:
    """Posterior predictive of every observed series: expected value and a noisy replicate per draw.

    Runs the numpy twin over the history for ``max_draws`` posterior draws at once.
    """
    from journeysim.model.observe import weekly_arrays
    from journeysim.twin.run import Twin

    params, _ = posterior_params(scenario, fit, max_draws=max_draws)
    n = np.asarray(params.wom_rate).shape[0]
    sc = scenario.over(data)
    ds = Twin(sc, params=params, plan=data.plan).run(batch_dims=("draw",), batch_coords={"draw": np.arange(n)})
    arrays = weekly_arrays(ds)
    rng = np.random.default_rng(seed)
    post = fit.idata.posterior
    out = {}
    st = scenario.structure
    for obs in data.observations:
        mask = np.array([s in obs.stages for s in st.stages], float)
        mu = expected_kpi(np, arrays, obs.measures, mask, st.population, obs.scale)  # (draw, W)
        noise_name = f"noise_{obs.column}"
        if noise_name in post:
            allc = post[noise_name].values.reshape(-1)
            cv = allc[thin(allc.size, n)][:, None]
        else:
            cv = 0.0
        if obs.likelihood in ("negbin", "normal"):
            rep = np.stack([sample_kpi(rng, mu[i], obs.likelihood, noise=max(float(np.ravel(cv)[i] if np.ndim(cv) else cv), 1e-6))
                            for i in range(n)])
        else:
            rep = np.stack([sample_kpi(rng, mu[i], obs.likelihood, sample_size=obs.sample_size) for i in range(n)])
        out[f"{obs.column}_expected"] = (("draw", "time"), mu)
        out[f"{obs.column}_replicate"] = (("draw", "time"), rep)
        out[f"{obs.column}_observed"] = (("time",), obs.values)
    return xr.Dataset(out, coords={"time": data.dates, "draw": np.arange(n)})




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
