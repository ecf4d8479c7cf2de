"""Plots of forecasts, plan comparisons, response curves and optimised allocations."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from journeysim.plots.simulation import plot_fan

__all__ = ['plot_forecast', 'plot_comparison', 'plot_response', 'plot_allocation']


def plot_forecast(fc: xr.Dataset, title: str = "") -> Figure:
    """Fan charts of weekly purchases and revenue per plan (median, 50% and 90% bands)."""
    fig = Figure(figsize=(9, 7))
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    plot_fan(fc.weekly_purchases, by="plan", ax=ax1, ylabel="purchases / week",
             title=title or f"Forecast: {fc.attrs.get('scenario', '')} ({fc.attrs.get('engine', 'twin')})")
    plot_fan(fc.weekly_revenue, by="plan", ax=ax2, ylabel="revenue / week")
    H = int(fc.attrs.get("horizon_weeks", fc.sizes["time"]))
    if H < fc.sizes["time"]:
        for ax in (ax1, ax2):
            ax.axvline(fc.time.values[H], color="0.5", lw=0.8, ls="--")
        ax1.text(fc.time.values[H], ax1.get_ylim()[1], " carry-over tail", va="top", fontsize=8, color="0.4")
    return fig


def plot_comparison(cmp: xr.Dataset, metrics=("purchases", "revenue", "media_new_customers", "cpa"),
                    title: str = "") -> Figure:
    """Incremental effect of each plan vs the baseline: posterior mean and 90% interval per metric."""
    metrics = [m for m in metrics if m in list(cmp.metric.values)]
    plans = [p for p in cmp.plan.values if p != cmp.attrs.get("baseline", "baseline")]
    fig = Figure(figsize=(4 * len(metrics), 0.55 * len(plans) + 1.8))
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True))
    y = np.arange(len(plans))
    for ax, m in zip(axes, metrics):
        c = cmp.sel(metric=m, plan=plans)
        mean, lo, hi = c["mean"].values, c["lower"].values, c["upper"].values
        colors = ["C2" if (v < 0 if m in ("cpa", "spend") else v > 0) else "C3" for v in mean]
        ax.barh(y, mean, color=colors, alpha=0.6)
        ax.errorbar(mean, y, xerr=[mean - lo, hi - mean], fmt="none", ecolor="k", capsize=3, lw=1)
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_title(f"Δ {m}", fontsize=10)
        for yi, p in zip(y, c["prob_better"].values):
            ax.text(ax.get_xlim()[1], yi, f" P(better)={p:.0%}", va="center", fontsize=7)
    axes[0].set_yticks(y, [str(p) for p in plans])
    fig.suptitle(title or f"Plans vs {cmp.attrs.get('baseline', 'baseline')} (mean, {cmp.attrs.get('interval', 0.9):.0%} interval)")
    fig.tight_layout()
    return fig


def plot_response(rc: xr.Dataset, metric: str = "purchases", title: str = "") -> Figure:
    """Outcome vs a channel's total spend over the horizon, mean and interval band, one line per channel."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    for i, c in enumerate(rc.channel.values):
        x = rc.spend.sel(channel=c).values
        ax.fill_between(x, rc[f"{metric}_lower"].sel(channel=c).values, rc[f"{metric}_upper"].sel(channel=c).values,
                        color=f"C{i}", alpha=0.2, lw=0)
        ax.plot(x, rc[f"{metric}_mean"].sel(channel=c).values, color=f"C{i}", marker="o", ms=3, label=str(c))
        j = int(np.argmin(np.abs(rc.level.values - 1.0)))
        ax.plot(x[j], rc[f"{metric}_mean"].sel(channel=c).values[j], "k|", ms=12)
    ax.set_xlabel("channel spend over the horizon (others at baseline; | = baseline)")
    ax.set_ylabel(f"{metric} (horizon + tail)")
    ax.set_title(title or f"Response curves ({rc.attrs.get('interval', 0.9):.0%} interval)")
    ax.legend(frameon=False)
    return fig


def plot_allocation(opt: xr.Dataset, title: str = "") -> Figure:
    """Weekly spend per channel: baseline vs the optimum (per period when flighted)."""
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    chans = list(opt.channel.values)
    x = np.arange(len(chans))
    n = opt.sizes["period"] + 1
    w = 0.8 / n
    ax.bar(x - 0.4 + w / 2, opt.baseline_weekly.values, w, color="0.6", label="baseline")
    for b in range(opt.sizes["period"]):
        lab = "optimum" if n == 2 else f"optimum, weeks {int(opt.period_start_week[b])}+"
        ax.bar(x - 0.4 + w * (b + 1.5), opt.allocation.isel(period=b).values, w, color=f"C{b}", label=lab)
    ax.set_xticks(x, chans)
    ax.set_ylabel("spend / week")
    ax.set_title(title or f"Optimised allocation ({opt.attrs.get('objective')}, budget {opt.attrs.get('budget'):,.0f})")
    ax.legend(frameon=False)
    return fig
