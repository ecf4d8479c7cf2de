"""Charts of attribution results.

The functions take computed data (a Series or the DataFrame of
:func:`journeysim.attribution.attribute`) and return a :class:`matplotlib.figure.Figure` built
directly, without :mod:`matplotlib.pyplot`: no backend is selected and no global figure state is
touched, so they are safe in libraries, servers and threads. :func:`save_figure` writes PNGs
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

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from journeysim.errors import InputError
from journeysim.paths import _atomic_output

__all__ = ["plot_comparison", "plot_credit", "save_figure"]


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
        :func:`journeysim.attribution.attribute`).
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
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    if n_methods:
        ax.legend(loc="best", fontsize="small")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Save a figure as PNG atomically (temporary file in the same directory, then rename).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    with _atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)
