"""Path-level attribution: share a path table's conversions among its channels.

Every method takes a path table (see :mod:`journeysim.io.pathtable`) and gives one credit per channel;
the credits of a method add up to the table's total conversions (or, with
``measure="value"``, to its total conversion value). Channels are the distinct touchpoint names,
in sorted order; ``"(direct)"`` (a conversion with no touch) is a channel like any other.

Methods
-------
``first``, ``last``
    All of a path's conversions go to its first (last) touchpoint.
``linear``
    A path's conversions are split equally among its touches; a channel touched twice on a path
    gets two shares.
``markov<k>`` (``markov1``, ``markov2``, ``markov3``, ...)
    Removal effects of an absorbing Markov chain of order ``k``, solved exactly
    (:func:`markov_removal_effects`).
``shapley``
    Shapley values of the game "conversions of the paths whose channels are all in the
    coalition" (:func:`shapley_values`).

Examples
--------
>>> import pandas as pd
>>> table = pd.DataFrame({
...     "path": ["tv > search", "search", "tv"],
...     "total_conversions": [3, 1, 0],
...     "total_null": [7, 4, 5],
... })
>>> attribute(table, methods=("first", "last", "linear", "shapley"))  # doctest: +NORMALIZE_WHITESPACE
method   first  last  linear  shapley
channel
search     1.0   4.0     2.5      2.5
tv         3.0   0.0     1.5      1.5
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from journeysim.errors import InputError, did_you_mean
from journeysim.paths.markov import markov_removal_effects
from journeysim.paths.pathdata import Measure, Seed, _PathData, check_measure, prepare_paths
from journeysim.paths.shapley import shapley_values

__all__ = ['DEFAULT_METHODS', 'attribute', 'attribution_to_xarray', 'first_touch', 'last_touch', 'linear_touch']


DEFAULT_METHODS = ("first", "last", "linear", "markov1", "markov2", "markov3", "shapley")
"""The methods :func:`attribute` computes unless told otherwise."""

_MARKOV = re.compile(r"markov(\d+)")


# --------------------------------------------------------------------------------------------
# heuristics


def first_touch(table: pd.DataFrame, *, measure: Measure = "conversions") -> pd.Series:
    """Credit every path's conversions to its first touchpoint.

    Parameters
    ----------
    table
        A path table.
    measure
        ``"conversions"`` or ``"value"`` (conversion value) to share.

    Returns
    -------
    pandas.Series
        Credit per channel (index ``channel``), summing to the total of ``measure``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [2, 1], "total_null": [0, 0]})
    >>> first_touch(t).to_dict()
    {'a': 2.0, 'b': 1.0}
    """
    check_measure(measure)
    data = prepare_paths(table)
    first = data.codes[data.offsets[:-1]]
    credit = np.bincount(first, weights=data.weights(measure), minlength=data.channels.size)
    return data.series(credit, "first")


def last_touch(table: pd.DataFrame, *, measure: Measure = "conversions") -> pd.Series:
    """Credit every path's conversions to its last touchpoint.

    Parameters and result as in :func:`first_touch`.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [2, 1], "total_null": [0, 0]})
    >>> last_touch(t).to_dict()
    {'a': 0.0, 'b': 3.0}
    """
    check_measure(measure)
    data = prepare_paths(table)
    last = data.codes[data.offsets[1:] - 1]
    credit = np.bincount(last, weights=data.weights(measure), minlength=data.channels.size)
    return data.series(credit, "last")


def linear_touch(table: pd.DataFrame, *, measure: Measure = "conversions") -> pd.Series:
    """Split every path's conversions equally among its touches.

    A channel that appears twice on a path gets two shares (``a > b > a`` gives ``a`` two
    thirds). Parameters and result as in :func:`first_touch`.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"path": ["a > b > a"], "total_conversions": [3], "total_null": [0]})
    >>> linear_touch(t).to_dict()
    {'a': 2.0, 'b': 1.0}
    """
    check_measure(measure)
    data = prepare_paths(table)
    share = data.weights(measure) / data.lengths
    credit = np.bincount(
        data.codes, weights=share[data.path_of_touch], minlength=data.channels.size
    )
    return data.series(credit, "linear")


# --------------------------------------------------------------------------------------------
# all methods together


def parse_methods(methods: str | Iterable[str]) -> list[str]:
    """Validate method names; returns them without repeats, in the given order."""
    if isinstance(methods, str):
        methods = [methods]
    out: list[str] = []
    for raw in methods:
        name = str(raw).strip().lower()
        match = _MARKOV.fullmatch(name)
        ok = name in ("first", "last", "linear", "shapley") or (match and int(match[1]) >= 1)
        if not ok:
            raise InputError(
                f"unknown attribution method {raw!r}{did_you_mean(name, DEFAULT_METHODS)}; "
                "choose from first, last, linear, markov1, markov2, markov3 (any markovK), shapley",
                where="methods",
            )
        if name not in out:
            out.append(name)
    if not out:
        raise InputError("no attribution method given", where="methods")
    return out


def compute_methods(
    data: _PathData,
    methods: Sequence[str],
    *,
    measure: Measure,
    max_exact: int,
    n_permutations: int,
    seed: Seed,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, float]]:
    """Run the methods; return credits, per-method details, and per-method seconds."""
    columns: dict[str, pd.Series] = {}
    details: dict[str, Any] = {}
    timings: dict[str, float] = {}
    simple = {"first": first_touch, "last": last_touch, "linear": linear_touch}
    for name in methods:
        start = time.perf_counter()
        if name in simple:
            columns[name] = simple[name](data, measure=measure)  # type: ignore[arg-type]
        elif name == "shapley":
            res = shapley_values(
                data,  # type: ignore[arg-type]
                measure=measure,
                max_exact=max_exact,
                n_permutations=n_permutations,
                seed=seed,
            )
            columns[name] = res.credits
            details[name] = res
        else:
            order = int(name.removeprefix("markov"))
            mres = markov_removal_effects(data, order, measure=measure)  # type: ignore[arg-type]
            columns[name] = mres.credits
            details[name] = mres
        timings[name] = time.perf_counter() - start
    frame = pd.DataFrame({k: v.to_numpy() for k, v in columns.items()}, index=columns[methods[0]].index)
    frame.columns.name = "method"
    frame.attrs["measure"] = measure
    return frame, details, timings


def attribute(
    table: pd.DataFrame,
    methods: str | Iterable[str] = DEFAULT_METHODS,
    *,
    measure: Measure = "conversions",
    max_exact: int = 12,
    n_permutations: int = 2000,
    seed: Seed = 0,
) -> pd.DataFrame:
    """Attribute a path table's conversions to channels with several methods.

    Parameters
    ----------
    table
        A path table (:mod:`journeysim.io.pathtable`).
    methods
        Any of ``"first"``, ``"last"``, ``"linear"``, ``"markov1"``, ``"markov2"``,
        ``"markov3"`` (any ``"markov<k>"``) and ``"shapley"``.
    measure
        ``"conversions"`` (default) or ``"value"``: what is shared.
    max_exact, n_permutations, seed
        Passed to :func:`shapley_values`.

    Returns
    -------
    pandas.DataFrame
        Index ``channel`` (sorted), one column per method; every column adds up to the total of
        ``measure``. ``frame.attrs["measure"]`` records the measure.
        :func:`attribution_to_xarray` gives the same as a labelled array.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [1, 1], "total_null": [1, 1]})
    >>> attribute(t, methods=["last", "markov1"]).round(4)  # doctest: +NORMALIZE_WHITESPACE
    method   last  markov1
    channel
    a         0.0   0.6667
    b         2.0   1.3333
    """
    check_measure(measure)
    names = parse_methods(methods)
    frame, _, _ = compute_methods(
        prepare_paths(table),
        names,
        measure=measure,
        max_exact=max_exact,
        n_permutations=n_permutations,
        seed=seed,
    )
    return frame


def attribution_to_xarray(frame: pd.DataFrame) -> xr.DataArray:
    """Turn the result of :func:`attribute` into a DataArray with dims ``(channel, method)``.

    The DataArray is named ``credit`` and ``attrs["measure"]`` says what was shared. Because
    :meth:`xarray.DataArray.sel` has its own ``method`` argument, select a method with a dict:
    ``da.sel({"method": "linear"})``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"path": ["a > b"], "total_conversions": [2], "total_null": [0]})
    >>> da = attribution_to_xarray(attribute(t, methods=["first", "linear"]))
    >>> da.dims, da.sel({"channel": "a", "method": "linear"}).item()
    (('channel', 'method'), 1.0)
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"expected a DataFrame, got {type(frame).__name__}", where="frame")
    return xr.DataArray(
        frame.to_numpy(dtype=np.float64),
        dims=("channel", "method"),
        coords={
            "channel": [str(c) for c in frame.index],
            "method": [str(m) for m in frame.columns],
        },
        name="credit",
        attrs={"measure": str(frame.attrs.get("measure", "conversions"))},
    )
