"""Plots of simulation outputs, drawn with matplotlib's object API (no pyplot global state).

Compute, then label, then draw: these functions take the labelled Dataset and return a
``matplotlib.figure.Figure``; :func:`journeysim._util.files.save_figure` writes it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from journeysim._util.format import currency_label
from journeysim.plots._axes import axis_formatter

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
    ax.stackplot(_time(ds), sizes.transpose("stage", "time").values, labels=stages,
                 colors=STAGE_COLORS[: len(stages)], alpha=0.9)
    ax.set_ylabel("people")
    ax.yaxis.set_major_formatter(axis_formatter())
    ax.set_title(title or f"People in each journey stage: {ds.attrs.get('scenario', '')}")
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
        ax1.plot(t, flows.sel(transition=name).values, label=name.replace("->", " → "), lw=1.4)
    ax1.set_ylabel("people moving / week")
    ax1.yaxis.set_major_formatter(axis_formatter())
    ax1.set_title(title or "People moving between stages each week (busiest moves)")
    ax1.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    new = ds.purchases_new.sum("persona").values
    rep = ds.purchases_repeat.sum("persona").values
    width = np.timedelta64(5, "D")
    ax2.bar(t, new, width=width, label="by new customers", color="#fd8d3c")
    ax2.bar(t, rep, width=width, bottom=new, label="repeat", color="#31a354")
    ax2.set_ylabel("purchases / week")
    ax2.yaxis.set_major_formatter(axis_formatter())
    ax2.set_title("Purchases each week", fontsize=10)
    ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.autofmt_xdate()
    return fig


def plot_channels(ds: xr.Dataset, title: str | None = None, currency: str | None = None) -> Figure:
    """Per channel: weekly spend (in ``currency``) and reach as a share of the population."""
    chans = list(ds.channel.values)
    fig = Figure(figsize=(9, 1.9 * max(1, len(chans)) + 0.6))
    axes = np.atleast_1d(fig.subplots(max(1, len(chans)), 1, sharex=True))
    t = _time(ds)
    pop = float(ds.attrs.get("population", 1.0))
    for ax, c in zip(axes, chans):
        spend = ds.spend.sel(channel=c).values
        ax.bar(t, spend, width=np.timedelta64(5, "D"), color="#c6dbef", label="spend / week")
        ax.set_ylabel(f"{c}\nspend / week ({currency_label(currency)})", fontsize=9)
        ax.yaxis.set_major_formatter(axis_formatter("money", currency))
        ax2 = ax.twinx()
        ax2.plot(t, ds.reach.sel(channel=c).values / pop, color="#08519c", lw=1.5, label="weekly reach")
        ax2.set_ylabel("reached / week\n(% of population)", fontsize=9)
        ax2.yaxis.set_major_formatter(axis_formatter("percent"))
        ax2.set_ylim(bottom=0)
    axes[0].set_title(title or "Channel delivery: spend (bars) and weekly reach (line)")
    fig.autofmt_xdate()
    return fig


def plot_fan(da: xr.DataArray, sample_dim: str = "draw", by: str | None = None, title: str = "",
             ylabel: str = "", quantiles=(0.05, 0.25, 0.5, 0.75, 0.95), ax=None, kind: str = "number",
             currency: str | None = None) -> Figure:
    """Fan chart of a ``(sample_dim, [by], time)`` array: median and 50%/90% bands per ``by`` value.

    ``kind``/``currency``: how the y ticks read (:func:`journeysim._util.format.axis_formatter`).
    """
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
    ax.yaxis.set_major_formatter(axis_formatter(kind, currency))
    if by is not None:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    fig.autofmt_xdate()
    return fig
