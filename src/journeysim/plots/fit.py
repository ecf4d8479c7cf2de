"""Figures of a fit: the posterior predictive check against the observed KPIs."""

from __future__ import annotations

from journeysim._util.stats import interval_levels
from journeysim.plots._axes import axis_formatter

__all__ = ['plot_ppc', 'plot_decomposition']


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


def plot_decomposition(dec, title: str = "What makes each KPI"):
    """One panel per KPI: the weekly contribution of each part (base, demand terms, channels) stacked,
    positive parts above zero and negative ones below, with the fitted total as a line."""
    import numpy as np
    from matplotlib.figure import Figure

    cols = [v for v in dec.data_vars if v != "entries"]
    parts = [str(p) for p in dec.part.values if p != "total"]
    fig = Figure(figsize=(10, 2.6 * len(cols) + 0.6))
    axes = np.atleast_1d(fig.subplots(len(cols), 1, sharex=True))
    t = np.asarray(dec.time.values)
    colours = {p: f"C{i % 10}" for i, p in enumerate(parts)}
    for ax, c in zip(axes, cols):
        x = dec[c]
        ys = np.array([x.sel(part=p).values for p in parts])
        pos, neg = np.clip(ys, 0, None), np.clip(ys, None, 0)
        ax.stackplot(t, pos, colors=[colours[p] for p in parts], alpha=0.8, labels=parts, lw=0)
        if (neg < 0).any():
            ax.stackplot(t, neg, colors=[colours[p] for p in parts], alpha=0.8, lw=0)
        ax.plot(t, x.sel(part="total").values, color="black", lw=1.2, label="fitted total")
        ax.set_ylabel(c.replace("_", " ") + " a week")
        ax.yaxis.set_major_formatter(axis_formatter("percent" if np.nanmax(x.sel(part="total").values) <= 1
                                                    else "number"))
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes[-1].set_xlabel("week")
    fig.suptitle(title + " (each part: the fit minus the fit without it; base: what is left)", fontsize=10)
    fig.tight_layout()
    return fig
