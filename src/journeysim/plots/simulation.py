"""Plots of simulation outputs, drawn with matplotlib's object API (no pyplot global state).

Compute, then label, then draw: these functions take the labelled Dataset and return a
``matplotlib.figure.Figure``; :func:`journeysim._util.files.save_figure` writes it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

__all__ = ['plot_stages', 'plot_flows', 'plot_channels', 'plot_fan', 'STAGE_COLORS']


STAGE_COLORS = ["#bdbdbd", "#9ecae1", "#4292c6", "#fd8d3c", "#31a354", "#756bb1", "#e7298a", "#8c6d31", "#636363"]


def _time(ds):
    return np.asarray(ds.time.values)


def plot_stages(ds: xr.Dataset, title: str | None = None) -> Figure:
    """People in each stage over time (stacked areas), one panel for all personas."""
    fig = Figure(figsize=(9, 4.2))
    ax = fig.add_subplot()
    sizes = ds.stage_size.sum("persona")
    stages = list(ds.stage.values)
    ax.stackplot(_time(ds), sizes.transpose("stage", "time").values / 1e3, labels=stages,
                 colors=STAGE_COLORS[: len(stages)], alpha=0.9)
    ax.set_ylabel("people (thousands)")
    ax.set_title(title or f"Journey stages: {ds.attrs.get('scenario', '')}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.margins(x=0)
    fig.autofmt_xdate()
    return fig


def plot_flows(ds: xr.Dataset, title: str | None = None, top: int = 8) -> Figure:
    """Weekly flows along the busiest transitions, and weekly purchases (new vs repeat)."""
    fig = Figure(figsize=(9, 6.5))
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    flows = ds.flow.sum("persona")
    busiest = flows.sum("time").to_series().sort_values(ascending=False).index[:top]
    t = _time(ds)
    for name in busiest:
        ax1.plot(t, flows.sel(transition=name).values / 1e3, label=name, lw=1.4)
    ax1.set_ylabel("people / week (thousands)")
    ax1.set_title(title or "Weekly flows between stages")
    ax1.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    new = ds.purchases_new.sum("persona").values
    rep = ds.purchases_repeat.sum("persona").values
    width = np.timedelta64(5, "D")
    ax2.bar(t, new / 1e3, width=width, label="new customers", color="#fd8d3c")
    ax2.bar(t, rep / 1e3, width=width, bottom=new / 1e3, label="repeat", color="#31a354")
    ax2.set_ylabel("purchases / week (thousands)")
    ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.autofmt_xdate()
    return fig


def plot_channels(ds: xr.Dataset, title: str | None = None) -> Figure:
    """Per channel: weekly spend and reach as a share of the population."""
    chans = list(ds.channel.values)
    fig = Figure(figsize=(9, 1.9 * max(1, len(chans)) + 0.6))
    axes = np.atleast_1d(fig.subplots(max(1, len(chans)), 1, sharex=True))
    t = _time(ds)
    pop = float(ds.attrs.get("population", 1.0))
    for ax, c in zip(axes, chans):
        spend = ds.spend.sel(channel=c).values
        ax.bar(t, spend / 1e3, width=np.timedelta64(5, "D"), color="#c6dbef", label="spend (k)")
        ax.set_ylabel(f"{c}\nspend (k)", fontsize=9)
        ax2 = ax.twinx()
        ax2.plot(t, 100 * ds.reach.sel(channel=c).values / pop, color="#08519c", lw=1.5, label="weekly reach")
        ax2.set_ylabel("reach (%)", fontsize=9)
        ax2.set_ylim(bottom=0)
    axes[0].set_title(title or "Channel delivery: spend (bars) and weekly reach (line)")
    fig.autofmt_xdate()
    return fig


def plot_fan(da: xr.DataArray, sample_dim: str = "draw", by: str | None = None, title: str = "",
             ylabel: str = "", quantiles=(0.05, 0.25, 0.5, 0.75, 0.95), ax=None) -> Figure:
    """Fan chart of a ``(sample_dim, [by], time)`` array: median and 50%/90% bands per ``by`` value."""
    fig = Figure(figsize=(9, 4.2)) if ax is None else ax.figure
    ax = ax or fig.add_subplot()
    groups = [None] if by is None else list(da[by].values)
    t = np.asarray(da.time.values)
    for i, g in enumerate(groups):
        x = da if g is None else da.sel({by: g})
        qs = x.quantile(list(quantiles), dim=sample_dim).transpose("quantile", "time").values
        color = f"C{i}"
        ax.fill_between(t, qs[0], qs[-1], color=color, alpha=0.15, lw=0)
        ax.fill_between(t, qs[1], qs[-2], color=color, alpha=0.3, lw=0)
        ax.plot(t, qs[len(quantiles) // 2], color=color, lw=1.6, label=str(g) if g is not None else None)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if by is not None:
        ax.legend(frameon=False)
    fig.autofmt_xdate()
    return fig
