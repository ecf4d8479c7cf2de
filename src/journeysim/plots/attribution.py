"""Charts of attribution results.

The functions take computed data (a Series or the DataFrame of
:func:`journeysim.paths.attribution.attribute`) and return a :class:`matplotlib.figure.Figure` built
directly, without :mod:`matplotlib.pyplot`: no backend is selected and no global figure state is
touched, so they are safe in libraries, servers and threads. :func:`journeysim._util.files.save_figure` writes PNGs
atomically.

Examples
--------
>>> import pandas as pd
>>> credits = pd.Series({"tv": 3.0, "search": 5.0}, name="linear")
>>> fig = plot_credit(credits, title="Linear")
>>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
['tv', 'search']
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from journeysim.errors import InputError
from journeysim.plots._axes import axis_formatter

__all__ = ['plot_truth_comparison', 'plot_comparison', 'plot_credit']


def plot_truth_comparison(table: pd.DataFrame, *, title: str | None = None):
    """Two panels: credit by method beside the truth, and each method's error (credit - truth).

    Parameters
    ----------
    table
        From :func:`compare_with_attribution`.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Built without :mod:`matplotlib.pyplot`. Truth whiskers are +/- 2 standard errors.

    Examples
    --------
    >>> t = pd.DataFrame({"truth": [3.0, 1.0], "truth_se": [0.1, 0.1], "last": [2.0, 2.0]},
    ...                  index=pd.Index(["tv", "search"], name="channel"))
    >>> len(plot_truth_comparison(t).axes)
    2
    """
    from matplotlib.figure import Figure

    if not isinstance(table, pd.DataFrame) or "truth" not in table.columns:
        raise InputError("expected the table of compare_with_attribution (with a 'truth' column)", "table")
    methods = [c for c in table.columns if c not in ("truth", "truth_se")]
    channels = [str(c) for c in table.index]
    n_ch, n_m = len(channels), len(methods)
    height = float(np.clip(1.5 + 0.55 * n_ch * max(1.0, (n_m + 1) / 4), 3.0, 16.0))
    fig = Figure(figsize=(13.0, height), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    y = np.arange(n_ch)
    width = 0.8 / (n_m + 1)
    truth = table["truth"].to_numpy(dtype=float)
    se = table["truth_se"].to_numpy(dtype=float) if "truth_se" in table else np.zeros(n_ch)
    off = (0 - n_m / 2) * width
    left.barh(y + off, np.nan_to_num(truth), height=width, color="black", label="truth (channel off)",
              xerr=np.where(np.isfinite(se), 2 * se, 0.0), ecolor="grey", capsize=2)
    colours = [f"C{i % 10}" for i in range(n_m)]
    for i, m in enumerate(methods):
        off = (i + 1 - n_m / 2) * width
        left.barh(y + off, table[m].to_numpy(dtype=float), height=width, color=colours[i], label=m)
    left.set_yticks(y, channels)
    left.invert_yaxis()
    unit = table.attrs.get("conversions", "conversions")
    left.set_xlabel(f"{unit}: credited, or caused (truth)")
    left.xaxis.set_major_formatter(axis_formatter())
    left.grid(axis="x", alpha=0.3)
    left.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", frameon=False)
    left.set_title("Credit by method vs true incremental", fontsize=10, loc="left")

    err = table[methods].sub(table["truth"], axis=0)
    width_r = 0.8 / max(n_m, 1)
    for i, m in enumerate(methods):
        off = (i - (n_m - 1) / 2) * width_r
        right.barh(y + off, err[m].to_numpy(dtype=float), height=width_r, color=colours[i], label=m)
    right.axvline(0.0, color="black", lw=0.8)
    right.set_xlabel("credit - truth  (> 0: over-credited, < 0: under-credited)")
    right.xaxis.set_major_formatter(axis_formatter())
    right.grid(axis="x", alpha=0.3)
    right.set_title("Over / under-credit", fontsize=10, loc="left")
    total, nothing = table.attrs.get("total"), table.attrs.get("all_off")
    sub = ""
    if total is not None:
        sub = f"total {total:,.0f} {unit}; sum of channel truths {table.attrs.get('sum_truth', np.nan):,.0f}"
        if nothing is not None and np.isfinite(nothing):
            sub += f"; with every channel off {nothing:,.0f}"
    fig.suptitle((title or "Attribution vs ground truth") + (f"\n{sub}" if sub else ""), fontsize=11)
    return fig




def _height(n_bars: int) -> float:
    return float(np.clip(1.2 + 0.32 * n_bars, 2.5, 14.0))


def plot_credit(
    credits: pd.Series,
    *,
    errors: pd.Series | None = None,
    title: str | None = None,
    xlabel: str = "conversions credited",
) -> Figure:
    """Horizontal bar chart of one method's credit per channel.

    Parameters
    ----------
    credits
        Credit per channel (index: channel names).
    errors
        Optional standard errors per channel, drawn as +/- 2 SE whiskers.
    title, xlabel
        Labels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(credits, pd.Series):
        raise InputError(f"expected a pandas Series, got {type(credits).__name__}", where="credits")
    fig = Figure(figsize=(7.0, _height(len(credits))), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(credits))
    xerr = None
    if errors is not None:
        xerr = 2.0 * errors.reindex(credits.index).to_numpy(dtype=np.float64)
    ax.barh(y, credits.to_numpy(dtype=np.float64), xerr=xerr, color="tab:blue", capsize=3)
    ax.set_yticks(y, [str(c) for c in credits.index])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel + (" (whiskers: +/- 2 standard errors)" if errors is not None else ""))
    ax.xaxis.set_major_formatter(axis_formatter())
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title if title is not None else str(credits.name or "attribution"))
    return fig


def plot_comparison(
    table: pd.DataFrame, *, title: str = "Attribution by method", xlabel: str = "conversions credited"
) -> Figure:
    """Grouped horizontal bars: one group per channel, one bar per method.

    Parameters
    ----------
    table
        Index channel, one column per method (the result of
        :func:`journeysim.paths.attribution.attribute`).
    title, xlabel
        Labels.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"first": [1.0, 2.0], "last": [2.0, 1.0]}, index=["a", "b"])
    >>> len(plot_comparison(t).axes[0].patches)
    4
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame, got {type(table).__name__}", where="table")
    n_channels, n_methods = table.shape
    fig = Figure(figsize=(8.0, _height(n_channels * max(n_methods, 1) * 0.45 + n_channels)),
                 layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(n_channels)
    width = 0.8 / max(n_methods, 1)
    for k, method in enumerate(table.columns):
        offset = (k - (n_methods - 1) / 2) * width
        ax.barh(y + offset, table[method].to_numpy(dtype=np.float64), height=width, label=str(method))
    ax.set_yticks(y, [str(c) for c in table.index])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_formatter(axis_formatter())
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    if n_methods:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", frameon=False)
    return fig
