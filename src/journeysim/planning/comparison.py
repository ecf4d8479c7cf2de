"""Incremental effects of plans against the baseline, with intervals and the probability of a gain."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from journeysim._util.stats import interval_levels
from journeysim.errors import InputError

__all__ = ['compare', 'summarize_metrics', 'METRICS', 'LOWER_IS_BETTER']


#: Metrics summarised per plan.
METRICS = ("purchases", "purchases_new", "purchases_repeat", "new_customers", "revenue", "referrals", "spend",
           "media_revenue", "media_new_customers", "roas", "cpa")
#: Metrics where a smaller value is the better plan.
LOWER_IS_BETTER = ("cpa", "spend")


def summarize_metrics(ds: xr.Dataset, metrics=METRICS, prob: float = 0.9) -> Any:
    """Table (pandas) of posterior mean and central ``prob`` interval per plan and metric."""
    import pandas as pd

    lo, hi = interval_levels(prob)
    rows = []
    for plan in ds.plan.values:
        for m in metrics:
            if m not in ds:
                continue
            v = ds[m].sel(plan=plan)
            vals = np.asarray(v.values, float).ravel()
            vals = vals[np.isfinite(vals)]
            if vals.size == 0:
                continue
            rows.append({"plan": str(plan), "metric": m, "mean": float(vals.mean()),
                         "lower": float(np.quantile(vals, lo)), "upper": float(np.quantile(vals, hi))})
    return pd.DataFrame(rows)


def compare(ds: xr.Dataset, *, baseline: str = "baseline", metrics=METRICS, prob: float = 0.9) -> xr.Dataset:
    """Incremental effect of each plan versus ``baseline``, per draw, with a summary.

    Returns a Dataset with ``delta_<metric> (plan, draw)`` and a summary per ``(plan, metric)``:
    ``mean``, ``lower``, ``upper`` (central ``prob`` interval), ``prob_better`` (the share of draws
    in which the plan beats the baseline: higher is better, except ``cpa``/``spend``).
    """
    if baseline not in list(ds.plan.values):
        from journeysim.errors import did_you_mean

        raise InputError(f"no plan named '{baseline}'" + did_you_mean(baseline, [str(p) for p in ds.plan.values]),
                         "baseline")
    lo, hi = interval_levels(prob)
    metrics = [m for m in metrics if m in ds and "draw" in ds[m].dims]
    out = xr.Dataset(coords={"plan": ds.plan, "draw": ds.draw, "metric": metrics})
    mean = np.zeros((ds.sizes["plan"], len(metrics)))
    lower, upper, better = mean.copy(), mean.copy(), mean.copy()
    for j, m in enumerate(metrics):
        d = ds[m] - ds[m].sel(plan=baseline)
        out[f"delta_{m}"] = d
        v = np.asarray(d.values, float)
        sign = -1.0 if m in LOWER_IS_BETTER else 1.0
        for i in range(v.shape[0]):
            x = v[i][np.isfinite(v[i])]
            if x.size == 0:
                mean[i, j] = lower[i, j] = upper[i, j] = better[i, j] = np.nan
                continue
            mean[i, j], lower[i, j], upper[i, j] = x.mean(), np.quantile(x, lo), np.quantile(x, hi)
            better[i, j] = float(np.mean(sign * x > 0))
    for k, v in (("mean", mean), ("lower", lower), ("upper", upper), ("prob_better", better)):
        out[k] = (("plan", "metric"), v)
    out.attrs.update({"baseline": baseline, "interval": prob})
    return out
