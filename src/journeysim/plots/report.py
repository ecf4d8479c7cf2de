"""Figures only the planner's report shows: the funnel over the forecast, and what each channel adds."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from journeysim._util.format import currency_label
from journeysim.plots._axes import axis_formatter

__all__ = ['plot_funnel', 'plot_contributions']


def plot_funnel(fc: xr.Dataset, title: str = "") -> Figure:
    """People in each stage over the forecast weeks: one panel per stage, one line per plan (median, 90% band)."""
    stages = list(fc.stage.values)
    cols = min(3, len(stages))
    rows = int(np.ceil(len(stages) / cols))
    fig = Figure(figsize=(3.6 * cols + 1.8, 2.6 * rows + 0.8))
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
    t = np.asarray(fc.time.values)
    for ax, s in zip(axes, stages):
        for i, plan in enumerate(fc.plan.values):
            x = fc.stage_size.sel(stage=s, plan=plan)
            lo, mid, hi = x.quantile([0.05, 0.5, 0.95], dim="draw").transpose("quantile", "time").values
            if i == 0:
                ax.fill_between(t, lo, hi, color="C0", alpha=0.2, lw=0)
            ax.plot(t, mid, color=f"C{i}", lw=1.4, label=str(plan))
        ax.set_title(f"people in '{s}'", fontsize=9, loc="left")
        ax.yaxis.set_major_formatter(axis_formatter())
        ax.tick_params(labelsize=7)
        for lab in ax.get_xticklabels():
            lab.set_rotation(30)
            lab.set_ha("right")
    for ax in axes[len(stages):]:
        ax.set_visible(False)
    axes[0].set_ylabel("people", fontsize=9)
    axes[min(cols, len(stages)) - 1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=8)
    fig.suptitle(title or "The funnel over the forecast: people in each stage per plan "
                          "(median; band: baseline's 90% interval)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_contributions(contributions: dict, currency: str | None = None, title: str = "") -> Figure:
    """What each channel adds to the baseline: revenue (mean, 90% interval) and people per stage (mean).

    ``contributions`` is the ``contributions`` mapping of a forecast's ``summary.json``.
    """
    chans = list(contributions)
    stages = list(next(iter(contributions.values()))["people_by_stage"]) if chans else []
    fig = Figure(figsize=(11, 0.5 * len(chans) + 2.4))
    ax1, ax2 = fig.subplots(1, 2)
    y = np.arange(len(chans))
    r = [contributions[c]["revenue"] for c in chans]
    mean = np.array([v["mean"] for v in r])
    lo = np.array([v["lower"] for v in r])
    hi = np.array([v["upper"] for v in r])
    ax1.barh(y, mean, color="C2", alpha=0.6)
    ax1.errorbar(mean, y, xerr=[mean - lo, hi - mean], fmt="none", ecolor="k", capsize=3, lw=1)
    ax1.axvline(0, color="0.3", lw=0.8)
    ax1.set_yticks(y, chans)
    ax1.set_xlabel(f"revenue it adds over horizon + tail ({currency_label(currency)})", fontsize=8)
    ax1.xaxis.set_major_formatter(axis_formatter("money", currency))
    ax1.tick_params(axis="x", labelsize=7, labelrotation=30)
    ax1.set_title("revenue each channel adds (90% interval)", fontsize=9)
    w = 0.8 / max(1, len(stages))
    for j, s in enumerate(stages):
        v = [contributions[c]["people_by_stage"][s]["mean"] for c in chans]
        ax2.barh(y - 0.4 + w * (j + 0.5), v, w, label=s)
    ax2.axvline(0, color="0.3", lw=0.8)
    ax2.set_yticks(y, chans)
    ax2.set_xlabel("people it adds to the stage (mean over the horizon's weeks)", fontsize=8)
    ax2.xaxis.set_major_formatter(axis_formatter())
    ax2.tick_params(axis="x", labelsize=7, labelrotation=30)
    ax2.set_title("people in each stage", fontsize=9)
    ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    fig.suptitle(title or "What each channel adds to the baseline (baseline minus the baseline without it)",
                 fontsize=10)
    fig.tight_layout()
    return fig
