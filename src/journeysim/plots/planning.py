"""Plots of forecasts, plan comparisons, response curves and optimised allocations."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from journeysim._util.format import currency_label, percent
from journeysim.plots._axes import axis_formatter
from journeysim.plots.simulation import plot_fan

#: Metrics in words, and whether they are money.
METRIC_LABELS = {"purchases": ("purchases", False), "revenue": ("revenue", True),
                 "media_new_customers": ("new customers won by media", False),
                 "new_customers": ("new customers", False), "spend": ("media spend", True),
                 "cpa": ("cost per new customer won by media", True), "roas": ("ROAS", False)}


def _label(metric: str, currency: str | None) -> str:
    words, is_money = METRIC_LABELS.get(metric, (metric.replace("_", " "), False))
    return f"{words} ({currency_label(currency)})" if is_money else words

__all__ = ['plot_forecast', 'plot_comparison', 'plot_response', 'plot_allocation']


def plot_forecast(fc: xr.Dataset, title: str = "", currency: str | None = None) -> Figure:
    """Fan charts of weekly purchases and revenue per plan (median, 50% and 90% bands)."""
    fig = Figure(figsize=(9, 7))
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    plot_fan(fc.weekly_purchases, by="plan", ax=ax1, ylabel="purchases / week",
             title=title or f"Forecast per plan: {fc.attrs.get('scenario', '')} (median, 50% and 90% bands)")
    plot_fan(fc.weekly_revenue, by="plan", ax=ax2, ylabel=f"revenue / week ({currency_label(currency)})",
             kind="money", currency=currency)
    ax2.get_legend().remove()
    H = int(fc.attrs.get("horizon_weeks", fc.sizes["time"]))
    if H < fc.sizes["time"]:
        for ax in (ax1, ax2):
            ax.axvline(fc.time.values[H], color="0.5", lw=0.8, ls="--")
        ax1.text(fc.time.values[H], ax1.get_ylim()[1], " carry-over tail", va="top", fontsize=8, color="0.4")
    return fig


def plot_comparison(cmp: xr.Dataset, metrics=("purchases", "revenue", "media_new_customers", "cpa"),
                    title: str = "", currency: str | None = None) -> Figure:
    """Incremental effect of each plan vs the baseline: posterior mean and 90% interval per metric."""
    metrics = [m for m in metrics if m in list(cmp.metric.values)]
    plans = [p for p in cmp.plan.values if p != cmp.attrs.get("baseline", "baseline")]
    fig = Figure(figsize=(4.3 * len(metrics), 0.55 * len(plans) + 2.2))
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True))
    y = np.arange(len(plans))
    for ax, m in zip(axes, metrics):
        c = cmp.sel(metric=m, plan=plans)
        mean, lo, hi = c["mean"].values, c["lower"].values, c["upper"].values
        colors = ["C2" if (v < 0 if m in ("cpa", "spend") else v > 0) else "C3" for v in mean]
        ax.barh(y, mean, color=colors, alpha=0.6)
        ax.errorbar(mean, y, xerr=[mean - lo, hi - mean], fmt="none", ecolor="k", capsize=3, lw=1)
        ax.axvline(0, color="0.3", lw=0.8)
        import textwrap

        ax.set_title(textwrap.fill(f"change in {METRIC_LABELS.get(m, (m.replace('_', ' '),))[0]}", 32), fontsize=10)
        ax.set_xlabel(f"vs baseline ({currency_label(currency)})" if METRIC_LABELS.get(m, ("", False))[1]
                      else "vs baseline", fontsize=8)
        ax.xaxis.set_major_formatter(axis_formatter("money" if METRIC_LABELS.get(m, ("", False))[1] else "number",
                                                    currency))
        ax.tick_params(axis="x", labelsize=7, labelrotation=30)
        for yi, p in zip(y, c["prob_better"].values):
            ax.text(1.0, yi, f" P(better) {percent(p)}", va="center", fontsize=7,
                    transform=ax.get_yaxis_transform())
    axes[0].set_yticks(y, [str(p) for p in plans])
    fig.suptitle(title or f"Each plan against the {cmp.attrs.get('baseline', 'baseline')}: posterior mean and "
                          f"{percent(cmp.attrs.get('interval', 0.9))} interval")
    fig.tight_layout()
    return fig


def plot_response(rc: xr.Dataset, metric: str = "purchases", title: str = "", currency: str | None = None) -> Figure:
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
    ax.set_xlabel(f"the channel's total spend over the horizon ({currency_label(currency)}); "
                  "other channels at baseline; | = baseline")
    ax.set_ylabel(f"{_label(metric, currency)}, horizon + tail")
    ax.xaxis.set_major_formatter(axis_formatter("money", currency))
    ax.yaxis.set_major_formatter(axis_formatter("money" if METRIC_LABELS.get(metric, ("", False))[1] else "number",
                                                currency))
    ax.set_title(title or f"What each channel's spend buys (response curves, {percent(rc.attrs.get('interval', 0.9))} "
                          "interval)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return fig


def plot_allocation(opt: xr.Dataset, title: str = "", currency: str | None = None) -> Figure:
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
    from journeysim._util.format import money

    ax.set_ylabel(f"spend / week ({currency_label(currency)})")
    ax.yaxis.set_major_formatter(axis_formatter("money", currency))
    ax.set_title(title or f"Best split of a budget of {money(opt.attrs.get('budget'), currency)} "
                          f"(maximising {opt.attrs.get('objective')})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return fig
