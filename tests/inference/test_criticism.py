"""Model criticism: the warnings fire on the misfit they name, and stay quiet on a good fit."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from journeysim.inference.criticism import criticize, identification
from journeysim.inference.priors import Prior

WEEKS = 104


def _ppc(observed, expected_draws, column="purchases"):
    t = pd.date_range("2023-01-02", periods=len(observed), freq="7D")
    return xr.Dataset({f"{column}_observed": (("time",), observed),
                       f"{column}_expected": (("draw", "time"), expected_draws)},
                      coords={"time": t, "draw": np.arange(expected_draws.shape[0])})


def _fit(noise_cv, column="purchases", space=None, extra=None):
    post = {f"noise_{column}": (("chain", "draw"), np.full((2, 500), noise_cv))}
    post.update(extra or {})
    return SimpleNamespace(idata=SimpleNamespace(posterior=xr.Dataset(post)), space=space)


def _data(column="purchases", plan=None):
    return SimpleNamespace(observations=(SimpleNamespace(column=column, likelihood="negbin"),), plan=plan)


def _season(weeks=WEEKS):
    return np.sin(2 * np.pi * np.arange(weeks) / (365.25 / 7))


def test_a_flat_fit_of_a_seasonal_series_is_caught():
    """The trap of the issue: a near-flat median through a series that swings with the season, inside
    a band widened by 14% noise. R² below 50%, autocorrelated and seasonal residuals, and the noise."""
    rng = np.random.default_rng(0)
    y = 50_000 * (1 + 0.25 * _season()) * (1 + 0.01 * rng.standard_normal(WEEKS))
    flat = np.full((20, WEEKS), y.mean()) * (1 + 0.001 * rng.standard_normal((20, WEEKS)))
    rows, warnings = criticize(_ppc(y, flat), _fit(0.14), _data())
    (row,) = rows
    assert row["r2"] < 0.05
    assert row["residual_autocorrelation"] > 0.9
    assert row["residual_seasonal_share"] > 0.95
    text = " ".join(warnings)
    for phrase in ("explains", "autocorrelated", "yearly pattern", "fitted noise 14.0%"):
        assert phrase in text


def test_a_good_fit_raises_no_warning():
    rng = np.random.default_rng(1)
    mu = 50_000 * (1 + 0.25 * _season())
    y = mu * (1 + 0.02 * rng.standard_normal(WEEKS))
    draws = mu[None] * (1 + 0.002 * rng.standard_normal((20, WEEKS)))
    rows, warnings = criticize(_ppc(y, draws), _fit(0.02), _data())
    assert rows[0]["r2"] > 0.9
    assert abs(rows[0]["residual_autocorrelation"]) < 0.3
    assert rows[0]["residual_seasonal_share"] < 0.1
    assert warnings == []


def _identification_inputs(search_spend, social_spend, posterior_sd):
    channels = ("tv", "search", "social")
    spend = np.column_stack([np.full(WEEKS, 1000.0) + 100 * np.arange(WEEKS) % 7, search_spend, social_spend])
    plan = SimpleNamespace(aligned=lambda ch: spend)
    sc = SimpleNamespace(structure=SimpleNamespace(channels=channels, cost_per_touch=np.array([0.01, 0.5, 0.01])))
    names = ("effect.tv", "effect.search", "effect.social")
    space = SimpleNamespace(names=names, priors=(Prior("lognormal", (1.0, 0.5)),) * 3,
                            kinds=("effect",) * 3, __len__=lambda self=None: 3)
    rng = np.random.default_rng(2)
    prior_sd = float(Prior("lognormal", (1.0, 0.5)).scipy().std())
    extra = {n: (("chain", "draw"), 1.0 + prior_sd * s * rng.standard_normal((2, 500))) for n, s in zip(names, posterior_sd)}
    return sc, _fit(0.02, space=space, extra=extra), _data(plan=plan)


def test_a_channel_whose_spend_follows_the_season_is_flagged_and_one_that_does_not_is_not():
    rng = np.random.default_rng(3)
    search = 5000 * (1 + 0.5 * _season()) + 50 * rng.standard_normal(WEEKS)
    social = 3000 + 1000 * rng.random(WEEKS)
    rows, warnings = identification(*_identification_inputs(search, social, (0.2, 0.2, 0.2)))
    by = {r["channel"]: r for r in rows}
    assert by["search"]["weak"] and by["search"]["season_correlation"] > 0.95
    assert not by["social"]["weak"] and not by["tv"]["weak"]
    assert len(warnings) == 1 and warnings[0].startswith("search: effect barely identified")


def test_a_prior_the_data_did_not_move_and_two_channels_moving_together_are_flagged():
    rng = np.random.default_rng(4)
    search = 3000 + 2000 * rng.random(WEEKS)
    social = 0.5 * search + 10 * rng.standard_normal(WEEKS)
    rows, warnings = identification(*_identification_inputs(search, social, (0.95, 0.1, 0.1)))
    by = {r["channel"]: r for r in rows}
    assert by["tv"]["weak"] and by["tv"]["posterior_to_prior_sd"] == pytest.approx(0.95, abs=0.1)
    assert by["search"]["weak"] and by["search"]["with"] == "social" and by["search"]["max_channel_correlation"] > 0.99
    assert by["social"]["weak"]
    assert "narrowed its prior only to" in warnings[0] and "moved with social's" in " ".join(warnings)
