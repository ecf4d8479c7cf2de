"""Plots of a sweep (:func:`journeysim.scale.sweeps.sweep`), drawn with matplotlib's object API."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from journeysim.scale.grid import RANDOM_AXES

__all__ = ['plot_sweep']


def plot_sweep(ds: xr.Dataset, title: str | None = None) -> Figure:
    """Total purchases and ROAS over the horizon against the sweep's first axis.

    One line per value of the second axis (if any); further axes are averaged over. With
    ``seed``/``replication`` axes, lines are means over them and the band is +-2 standard errors.
    A sweep over seeds only shows the spread of total purchases between runs.
    """
    dims = [d for d in ds.referrals.dims if d != "time"]
    rand = [d for d in dims if d in RANDOM_AXES]
    other = [d for d in dims if d not in RANDOM_AXES]
    purchases = ds.purchases.sum("time")
    spend = ds.spend.sum(("time", "channel"))
    roas = (ds.revenue.sum("time") / spend).where(spend > 0)
    fig = Figure(figsize=(10, 4.2))
    axes = fig.subplots(1, 2)
    title = title or f"Sweep: {ds.attrs.get('scenario', '')} ({ds.attrs.get('engine', '')})"
    if not other:
        v = purchases.values.ravel()
        axes[0].hist(v / 1e3, bins=min(30, max(5, v.size // 3)), color="#4292c6")
        axes[0].set_xlabel("total purchases (thousands)")
        axes[0].set_ylabel("runs")
        r = roas.values.ravel()
        axes[1].hist(r[np.isfinite(r)], bins=min(30, max(5, r.size // 3)), color="#31a354")
        axes[1].set_xlabel("revenue per unit of spend (all revenue, not ROAS)")
        fig.suptitle(title)
        return fig
    x, line = other[0], (other[1] if len(other) > 1 else None)
    rest = [d for d in other[2:]]
    for ax, da, label, scale in ((axes[0], purchases, "total purchases (thousands)", 1e3),
                                 (axes[1], roas, "revenue per unit of spend (all revenue, not ROAS)", 1.0)):
        if rest:
            da = da.mean(rest)
        mean = da.mean(rand) if rand else da
        n = int(np.prod([ds.sizes[d] for d in rand])) if rand else 1
        se = da.std(rand, ddof=1) / np.sqrt(n) if n > 1 else None
        for j, val in enumerate(ds[line].values if line else [None]):
            sel = {line: j} if line else {}
            m = mean.isel(sel).transpose(x).values / scale
            xs = ds[x].values
            lab = f"{line}={val:g}" if line else None
            ax.plot(xs, m, marker="o", lw=1.6, label=lab)
            if se is not None:
                s = se.isel(sel).transpose(x).values / scale
                ax.fill_between(xs, m - 2 * s, m + 2 * s, alpha=0.2)
        ax.set_xlabel(x)
        ax.set_ylabel(label)
        if line:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    note = []
    if rand:
        note.append(f"mean over {' x '.join(rand)}, band +-2 s.e.")
    if rest:
        note.append(f"averaged over {', '.join(rest)}")
    fig.suptitle(title + (f"\n{'; '.join(note)}" if note else ""), fontsize=10)
    fig.tight_layout()
    return fig
