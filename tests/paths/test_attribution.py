"""Tests of journeysim.paths.attribution (and its plots).

Tolerances: exact computations are compared with ``rtol=1e-9`` (float64 linear algebra on small
systems is accurate to ~1e-14, so this leaves room without hiding real errors). The sampled
Shapley values are compared with the known values within 4 standard errors per channel, a
two-sided normal tail of 6e-5 per channel (under 1e-3 for 14 channels); the seed is fixed, so
the test is deterministic anyway.
"""

from __future__ import annotations

import itertools
import json
import math
import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.figure import Figure

from journeysim._util.files import save_figure
from journeysim.cli.attribute import run_attribute
from journeysim.errors import InputError
from journeysim.io.pathtable import write_path_table
from journeysim.paths.attribution import (
    DEFAULT_METHODS,
    attribute,
    attribution_to_xarray,
    first_touch,
    last_touch,
    linear_touch,
)
from journeysim.paths.markov import markov_removal_effects
from journeysim.paths.shapley import shapley_values
from journeysim.plots.attribution import plot_comparison, plot_credit

RTOL = 1e-9


def table(rows: list[tuple[str, float, float]], values: list[float] | None = None) -> pd.DataFrame:
    """Path table from (path, conversions, nulls) rows."""
    df = pd.DataFrame(rows, columns=["path", "total_conversions", "total_null"])
    if values is not None:
        df["total_conversion_value"] = values
    return df


def random_table(n_paths: int, n_channels: int, seed: int, max_len: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = [f"c{i:02d}" for i in range(n_channels)]
    paths = set()
    while len(paths) < n_paths:
        length = int(rng.integers(1, max_len + 1))
        paths.add(" > ".join(rng.choice(names, size=length)))
    paths = sorted(paths)
    conv = rng.integers(0, 6, size=n_paths).astype(float)
    null = rng.integers(0, 20, size=n_paths).astype(float)
    null[(conv == 0) & (null == 0)] = 1.0
    return pd.DataFrame(
        {
            "path": paths,
            "total_conversions": conv,
            "total_conversion_value": conv * rng.gamma(3.0, 10.0, size=n_paths),
            "total_null": null,
        }
    )


# ---------------------------------------------------------------------------------------------
# heuristics


def test_first_last_linear_by_hand():
    t = table([("a > b > a", 3, 1), ("b", 2, 0), ("c > a", 0, 5)])
    assert first_touch(t).to_dict() == {"a": 3.0, "b": 2.0, "c": 0.0}
    assert last_touch(t).to_dict() == {"a": 3.0, "b": 2.0, "c": 0.0}
    # a > b > a: a gets 2 of 3 touches -> 2, b gets 1; plus b's own path: 2
    assert linear_touch(t).to_dict() == {"a": 2.0, "b": 3.0, "c": 0.0}


def test_value_measure():
    t = table([("a > b", 1, 0), ("b", 1, 0)], values=[100.0, 10.0])
    assert first_touch(t, measure="value").to_dict() == {"a": 100.0, "b": 10.0}
    assert linear_touch(t, measure="value").to_dict() == {"a": 50.0, "b": 60.0}


# ---------------------------------------------------------------------------------------------
# Markov chains, by hand


def test_markov_order1_by_hand():
    t = table([("a > b", 1, 1), ("b", 1, 1)])
    # counts: start->a 2, start->b 2, a->b 2, b->conv 2, b->null 2
    # P = P(start->a) P(a->b) P(b->conv) + P(start->b) P(b->conv) = .5*1*.5 + .5*.5 = 0.5
    # without a: start->a goes to null:        P = .5*.5 = 0.25     -> RE_a = 1 - .25/.5 = 0.5
    # without b: every walk passes b:          P = 0                -> RE_b = 1
    # credits (2 conversions): a = 2 * .5/1.5 = 2/3, b = 2 * 1/1.5 = 4/3
    res = markov_removal_effects(t, order=1)
    assert res.conversion_probability == pytest.approx(0.5, rel=RTOL)
    np.testing.assert_allclose(res.removal_effects[["a", "b"]], [0.5, 1.0], rtol=RTOL)
    np.testing.assert_allclose(res.credits[["a", "b"]], [2 / 3, 4 / 3], rtol=RTOL)
    assert res.n_states == 3


def test_markov_order1_with_a_loop_by_hand():
    t = table([("a > b > a", 1, 0), ("a", 0, 1)])
    # counts: start->a 2; a->b 1, a->conv 1, a->null 1 (out of a: 3); b->a 1
    # x_a = 1/3 + 1/3 x_b,  x_b = x_a   =>  x_a = 1/2 = P
    # without b: x_a = 1/3                   -> RE_b = 1 - (1/3)/(1/2) = 1/3
    # without a: 0                           -> RE_a = 1
    # credits (1 conversion): a = 1/(4/3) = 3/4, b = (1/3)/(4/3) = 1/4
    res = markov_removal_effects(t, order=1)
    assert res.conversion_probability == pytest.approx(0.5, rel=RTOL)
    np.testing.assert_allclose(res.removal_effects[["a", "b"]], [1.0, 1 / 3], rtol=RTOL)
    np.testing.assert_allclose(res.credits[["a", "b"]], [0.75, 0.25], rtol=RTOL)


def test_markov_order2_separates_what_order1_mixes():
    t = table([("a > b", 1, 0), ("c > b", 0, 1)])
    # order 1: start->a .5, start->c .5, a->b 1, c->b 1, b->conv .5, b->null .5 ; P = .5
    #   without a: .5*.5 = .25 -> RE .5 ; without c: .25 -> RE .5 ; without b: RE 1
    #   credits = 1 * (.5, 1, .5) / 2 = (.25, .5, .25)
    res1 = markov_removal_effects(t, order=1)
    np.testing.assert_allclose(res1.credits[["a", "b", "c"]], [0.25, 0.5, 0.25], rtol=RTOL)
    # order 2: states (a), (c), (a,b) -> conv 1, (c,b) -> null 1 ; P = .5
    #   without a: 0 -> RE 1 ; without c: .5 -> RE 0 ; without b: RE 1
    #   credits = (1, 1, 0) / 2 = (.5, .5, 0)
    res2 = markov_removal_effects(t, order=2)
    np.testing.assert_allclose(res2.removal_effects[["a", "b", "c"]], [1.0, 1.0, 0.0], rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(res2.credits[["a", "b", "c"]], [0.5, 0.5, 0.0], rtol=RTOL, atol=1e-12)
    assert res2.n_states == 5  # start, (a), (c), (a,b), (c,b)


def test_markov_order3_by_hand():
    t = table([("a > b > c", 1, 0), ("d > b > c", 0, 1)])
    # order 2: the state (b,c) is shared: (b,c) -> conv .5, null .5 ; P = .5
    #   without a: only d's branch left: .5*.5 = .25 -> RE .5 ; same for d ; b, c: RE 1
    #   sum RE = 3 ; credits = (.5, 1, 1, .5)/3 = (1/6, 1/3, 1/3, 1/6)
    res2 = markov_removal_effects(t, order=2)
    np.testing.assert_allclose(res2.credits[["a", "b", "c", "d"]], [1 / 6, 1 / 3, 1 / 3, 1 / 6], rtol=RTOL)
    # order 3: (a,b,c) -> conv 1 and (d,b,c) -> null 1 are different states ; P = .5
    #   without a: 0 -> RE 1 ; without d: .5 -> RE 0 ; b, c: RE 1 ; credits = (1,1,1,0)/3
    res3 = markov_removal_effects(t, order=3)
    np.testing.assert_allclose(
        res3.credits[["a", "b", "c", "d"]], [1 / 3, 1 / 3, 1 / 3, 0.0], rtol=RTOL, atol=1e-12
    )


def test_markov_without_conversions_gives_zero():
    res = markov_removal_effects(table([("a > b", 0, 3)]), order=2)
    assert res.conversion_probability == 0.0
    assert res.credits.to_dict() == {"a": 0.0, "b": 0.0}


def reference_markov(t: pd.DataFrame, order: int) -> dict[str, float]:
    """Independent implementation: tuple states in dicts, dense numpy solve."""
    counts: dict[tuple, dict[object, float]] = {}
    for path, conv, null in zip(t["path"], t["total_conversions"], t["total_null"], strict=True):
        touches = path.split(" > ")
        walks = conv + null
        states = [("START",)] + [tuple(touches[max(0, i + 1 - order) : i + 1]) for i in range(len(touches))]
        for s, s_next in itertools.pairwise(states):
            counts.setdefault(s, {}).setdefault(s_next, 0.0)
            counts[s][s_next] += walks
        counts.setdefault(states[-1], {}).setdefault("CONV", 0.0)
        counts[states[-1]]["CONV"] += conv
        counts[states[-1]].setdefault("NULL", 0.0)
        counts[states[-1]]["NULL"] += null

    def p_conversion(removed: str | None) -> float:
        states = [s for s in counts if removed not in s]
        index = {s: i for i, s in enumerate(states)}
        q = np.zeros((len(states), len(states)))
        r = np.zeros(len(states))
        for s in states:
            out = sum(counts[s].values())
            for target, n in counts[s].items():
                if target == "CONV":
                    r[index[s]] += n / out
                elif target in index:
                    q[index[s], index[target]] += n / out
        return float(np.linalg.solve(np.eye(len(states)) - q, r)[index[("START",)]])

    p = p_conversion(None)
    channels = sorted({c for path in t["path"] for c in path.split(" > ")})
    effects = {c: 1 - p_conversion(c) / p for c in channels}
    total = t["total_conversions"].sum()
    return {c: total * e / sum(effects.values()) for c, e in effects.items()}


@pytest.mark.parametrize("order", [1, 2, 3])
def test_markov_matches_reference_implementation(order):
    t = random_table(60, 5, seed=order)
    got = markov_removal_effects(t, order=order).credits
    want = reference_markov(t, order)
    np.testing.assert_allclose(got[list(want)].to_numpy(), list(want.values()), rtol=RTOL, atol=1e-12)


def test_markov_rejects_bad_order():
    with pytest.raises(InputError, match="order: order must be a positive integer"):
        markov_removal_effects(table([("a", 1, 1)]), order=0)


# ---------------------------------------------------------------------------------------------
# Shapley values


def closed_form_shapley(t: pd.DataFrame) -> dict[str, float]:
    """The game v(S) = conversions of paths with channel set in S is a sum of unanimity games,
    so its Shapley value splits each path's conversions equally over its distinct channels."""
    out: dict[str, float] = {}
    for path, conv in zip(t["path"], t["total_conversions"], strict=True):
        channels = set(path.split(" > "))
        for c in channels:
            out[c] = out.get(c, 0.0) + conv / len(channels)
    return dict(sorted(out.items()))


def test_shapley_by_hand():
    t = table([("a", 3, 0), ("a > b", 2, 0)])
    # v({a}) = 3, v({b}) = 0, v({a,b}) = 5
    # phi_a = 1/2 (v(a) - v()) + 1/2 (v(ab) - v(b)) = 1/2*3 + 1/2*5 = 4
    # phi_b = 1/2 (v(b) - v()) + 1/2 (v(ab) - v(a)) = 0 + 1/2*2 = 1
    res = shapley_values(t)
    assert res.exact
    np.testing.assert_allclose(res.credits[["a", "b"]], [4.0, 1.0], rtol=RTOL)
    assert (res.standard_errors == 0).all()


def test_shapley_efficiency_symmetry_null_player():
    t = table([("a > c", 2, 1), ("b > c", 2, 1), ("c", 1, 0), ("a > b > c", 3, 2), ("d > a", 0, 9)])
    res = shapley_values(t).credits
    assert res.sum() == pytest.approx(t["total_conversions"].sum(), rel=RTOL)  # efficiency
    assert res["a"] == pytest.approx(res["b"], rel=RTOL)  # a and b play identical roles
    assert res["d"] == pytest.approx(0.0, abs=1e-12)  # d is only on a path that never converts


def test_shapley_exact_equals_closed_form():
    t = random_table(300, 10, seed=5)
    got = shapley_values(t).credits
    want = closed_form_shapley(t[t["total_conversions"] > 0])
    np.testing.assert_allclose(got[list(want)].to_numpy(), list(want.values()), rtol=RTOL)


def test_shapley_sampled_beyond_twelve_channels():
    t = random_table(400, 14, seed=3, max_len=4)
    res = shapley_values(t, n_permutations=3000, seed=42)
    assert not res.exact and res.n_permutations == 3000
    want = pd.Series(closed_form_shapley(t)).reindex(res.credits.index, fill_value=0.0)
    # within 4 standard errors per channel (see the module docstring); SE > 0 here
    assert (res.standard_errors > 0).all()
    assert (np.abs(res.credits - want) <= 4 * res.standard_errors).all()
    # the contributions in every sampled order add up to the total, so the estimate does too
    assert res.credits.sum() == pytest.approx(t["total_conversions"].sum(), rel=RTOL)
    # the standard error of a mean over 3000 orders is small compared with the values
    assert (res.standard_errors < 0.1 * want.abs().max()).all()
    # same seed, same numbers
    again = shapley_values(t, n_permutations=3000, seed=42)
    pd.testing.assert_series_equal(again.credits, res.credits)


def test_shapley_sampling_on_small_table_agrees_with_exact():
    t = random_table(100, 6, seed=9)
    exact = shapley_values(t).credits
    sampled = shapley_values(t, max_exact=0, n_permutations=2000, seed=np.random.default_rng(1))
    assert (np.abs(sampled.credits - exact) <= 4 * sampled.standard_errors + 1e-12).all()


def test_shapley_rejects_too_many_exact_channels():
    with pytest.raises(InputError, match="max_exact"):
        shapley_values(table([("a", 1, 1)]), max_exact=40)


# ---------------------------------------------------------------------------------------------
# all methods


@pytest.mark.parametrize("measure", ["conversions", "value"])
def test_every_method_sums_to_the_total(measure):
    t = random_table(500, 8, seed=1)
    column = "total_conversions" if measure == "conversions" else "total_conversion_value"
    credits = attribute(t, DEFAULT_METHODS, measure=measure)
    assert list(credits.columns) == list(DEFAULT_METHODS)
    assert credits.index.name == "channel" and list(credits.index) == sorted(credits.index)
    np.testing.assert_allclose(credits.sum(axis=0), t[column].sum(), rtol=RTOL)
    assert (credits.to_numpy() >= -1e-12).all()


def test_direct_is_a_channel():
    t = table([("(direct)", 2, 0), ("tv", 1, 3)])
    credits = attribute(t)
    assert set(credits.index) == {"(direct)", "tv"}
    np.testing.assert_allclose(credits.loc["(direct)"], 2.0, rtol=RTOL)


def test_attribute_to_xarray():
    t = random_table(50, 4, seed=2)
    credits = attribute(t, ["first", "markov2"], measure="value")
    da = attribution_to_xarray(credits)
    assert isinstance(da, xr.DataArray)
    assert da.dims == ("channel", "method")
    assert list(da["method"].values) == ["first", "markov2"]
    assert da.attrs["measure"] == "value"
    np.testing.assert_array_equal(da.sel({"method": "markov2"}).values, credits["markov2"].values)


def test_attribute_rejects_unknown_method():
    with pytest.raises(InputError, match=r"methods: unknown attribution method 'markov_1'.*did you mean 'markov1'"):
        attribute(table([("a", 1, 1)]), ["markov_1"])
    with pytest.raises(InputError, match="measure"):
        attribute(table([("a", 1, 1)]), measure="revenue")


def test_attribute_accepts_higher_markov_orders():
    t = table([("a > b > c > d", 1, 1), ("d", 0, 1)])
    credits = attribute(t, ["markov4"])
    assert credits["markov4"].sum() == pytest.approx(1.0, rel=RTOL)


def test_empty_table_is_an_error():
    with pytest.raises(InputError, match="no rows"):
        attribute(table([]))


# ---------------------------------------------------------------------------------------------
# run_attribute and plots


def test_run_attribute_writes_everything(tmp_path):
    t = random_table(80, 5, seed=4)
    csv = write_path_table(t, tmp_path / "paths.csv")
    out = tmp_path / "result"
    summary = run_attribute(csv, out, methods=("first", "markov1", "shapley"), seed=0)
    names = sorted(os.listdir(out))
    assert names == sorted(
        [
            "attribution.csv",
            "summary.json",
            "attribution_first.png",
            "attribution_markov1.png",
            "attribution_shapley.png",
            "attribution_comparison.png",
        ]
    )  # and no temporary files
    for png in (n for n in names if n.endswith(".png")):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary["totals"]["conversions"] == t["total_conversions"].sum()
    assert set(summary["timings_seconds"]) >= {"read", "first", "markov1", "shapley", "plots", "total"}
    assert summary["shapley"]["exact"] is True
    frame = pd.read_csv(out / "attribution.csv", index_col="channel")
    assert list(frame.columns) == ["first", "markov1", "shapley"]
    for method, credits in summary["credit"].items():
        assert math.isclose(sum(credits.values()), t["total_conversions"].sum(), rel_tol=RTOL)
        np.testing.assert_allclose(frame[method].to_numpy(), list(credits.values()), rtol=RTOL)


def test_run_attribute_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        run_attribute(tmp_path / "missing.csv", tmp_path / "out")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    csv = write_path_table(table([("a", 1, 1)]), tmp_path / "p.csv")
    with pytest.raises(InputError, match="not a directory"):
        run_attribute(csv, not_a_dir)


def test_plots_take_data_and_return_figures(tmp_path):
    credits = pd.Series({"tv": 2.0, "search": 1.0}, name="x")
    fig = plot_credit(credits, errors=pd.Series({"tv": 0.1, "search": 0.2}))
    assert isinstance(fig, Figure)
    frame = pd.DataFrame({"first": [1.0, 2.0], "last": [2.0, 1.0]}, index=["a", "b"])
    comparison = plot_comparison(frame)
    assert len(comparison.axes[0].patches) == 4
    path = save_figure(comparison, tmp_path / "c.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and os.listdir(tmp_path) == ["c.png"]
