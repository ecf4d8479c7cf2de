"""Figures of a fit: the posterior predictive check against the observed KPIs."""

from __future__ import annotations

from journeysim._util.stats import interval_levels
from journeysim.plots._axes import axis_formatter

__all__ = ['plot_ppc']


def plot_ppc(ppc, title: str = "Posterior predictive check"):
    """One panel per observed series: observed points, 90% band of replicates, median expectation."""
    import numpy as np
    from matplotlib.figure import Figure

    cols = [v[: -len("_observed")] for v in ppc.data_vars if v.endswith("_observed")]
    fig = Figure(figsize=(9, 2.4 * len(cols) + 0.5))
    axes = np.atleast_1d(fig.subplots(len(cols), 1, sharex=True))
    t = np.asarray(ppc.time.values)
    for ax, c in zip(axes, cols):
        rep = ppc[f"{c}_replicate"]
        lo, hi = rep.quantile(list(interval_levels(0.9)), dim="draw").values
        ax.fill_between(t, lo, hi, color="C0", alpha=0.25, lw=0, label="90% predictive")
        ax.plot(t, ppc[f"{c}_expected"].median("draw").values, color="C0", lw=1.4, label="posterior median")
        y = ppc[f"{c}_observed"].values
        ok = ~np.isnan(y)
        ax.plot(t[ok], y[ok], "k.", ms=3.5, label="observed")
        inside = float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok]))) if ok.any() else float("nan")
        words = c.replace("_", " ")
        ax.set_ylabel(f"{words} / week", fontsize=9)
        ax.yaxis.set_major_formatter(axis_formatter("percent" if np.nanmax(np.abs(y)) <= 1 else "number"))
        ax.set_title(f"{words}: {inside:.0%} of observed weeks inside the 90% band", fontsize=9, loc="left")
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.autofmt_xdate()
    return fig
