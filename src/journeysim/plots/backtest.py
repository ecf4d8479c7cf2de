"""Figure of a backtest: each KPI's held-back weeks against the forecast made without them."""

from __future__ import annotations

__all__ = ["plot_backtest"]


def plot_backtest(result: dict, title: str = "Backtest"):
    """One panel per KPI: observed held-back weeks, and each fold's posterior mean and 90% interval."""
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    kpis = sorted(result["kpis"])
    fig = Figure(figsize=(9, 2.4 * len(kpis) + 0.6))
    axes = np.atleast_1d(fig.subplots(len(kpis), 1, sharex=True))
    for ax, kpi in zip(axes, kpis):
        for i, fold in enumerate(result["folds"]):
            s = fold["kpis"].get(kpi)
            if s is None:
                continue
            t = pd.to_datetime(s["dates"])
            ax.fill_between(t, s["lower"], s["upper"], color=f"C{i % 10}", alpha=0.25, lw=0,
                            label="90% forecast interval" if i == 0 else None)
            ax.plot(t, s["mean"], color=f"C{i % 10}", lw=1.4,
                    label=f"fold {fold['fold']}: fitted on {fold['train_weeks']} weeks")
            ax.plot(t, s["observed"], "k.", ms=4, label="observed" if i == 0 else None)
        p = result["kpis"][kpi]
        ax.set_ylabel(kpi.replace("_", " "), fontsize=9)
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax.set_title(f"{kpi.replace('_', ' ')}: {p['coverage_90']:.0%} of {p['weeks']} held-back weeks inside the "
                     f"90% interval; mean abs. error {p['mape']:.1%}", fontsize=9, loc="left")
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
    fig.suptitle(title)
    fig.autofmt_xdate()
    return fig
