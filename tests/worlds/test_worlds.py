"""Tests of the independent ground-truth worlds in ``experiments/worlds`` (no journeysim inside).

Tolerances: people conservation 1e-6 relative; "never raises"/"never lowers" comparisons allow
1e-9 relative round-off; exact zeros are exact (``== 0.0``).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from experiments.worlds import CHANNELS, KPIS, WORLDS, make

SEEDS = (0, 1)
CASES = [(n, s) for n in WORLDS for s in SEEDS]
RTOL = 1e-9


@functools.cache
def world(name, seed):
    return make(name, seed)


@pytest.mark.parametrize("name,seed", CASES)
def test_people_are_conserved_every_week(name, seed):
    w = world(name, seed)
    for plan in ("baseline", "cut_tv", "total_plus_20"):
        states, _ = w.trajectory(w.plans()[plan])
        assert states.shape[1] == len(w.compartments)
        assert (states >= -1e-6 * w.N).all()
        np.testing.assert_allclose(states.sum(axis=1), w.N, rtol=1e-6)


@pytest.mark.parametrize("name,seed", CASES)
def test_baseline_truth_is_exactly_zero(name, seed):
    w = world(name, seed)
    t = w.truth(w.baseline_plan())
    assert t["delta_purchases"] == 0.0 and t["pct_purchases"] == 0.0
    assert all(t[k]["delta"] == 0.0 for k in KPIS)


@pytest.mark.parametrize("name,seed", CASES)
def test_plans_share_dates_and_tail(name, seed):
    w = world(name, seed)
    base = w.baseline_plan()
    plans = w.plans()
    for key in ("tv_to_search", "search_to_social", "social_to_tv", "total_plus_20", "total_minus_20",
                "cut_display", "cut_tv"):
        p = plans[key]
        assert list(p["date"]) == list(base["date"]) and len(p) == w.n_plan + w.n_tail
        pd.testing.assert_frame_equal(p.iloc[w.n_plan:], base.iloc[w.n_plan:])
    # moves keep the total budget
    cols = [f"spend_{c}" for c in CHANNELS]
    np.testing.assert_allclose(plans["tv_to_search"][cols].to_numpy().sum(), base[cols].to_numpy().sum(), rtol=1e-6)


@pytest.mark.parametrize("name,seed", CASES)
def test_cutting_a_channel_never_raises_purchases_in_any_week(name, seed):
    w = world(name, seed)
    b = w.expected(w.baseline_plan())["purchases"]
    for c in CHANNELS:
        cut = w.expected(w.plans()[f"cut_{c}"])["purchases"]
        assert (cut <= b * (1 + RTOL)).all(), (c, np.max(cut - b))


@pytest.mark.parametrize("name,seed", CASES)
def test_more_spend_on_an_effective_channel_never_lowers_total_purchases(name, seed):
    w = world(name, seed)
    base = w._baseline[: w.n_plan]
    factors = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    for c in w.effective_channels:
        i = CHANNELS.index(c)
        stack = np.repeat(base[None], len(factors), axis=0)
        stack[:, :, i] *= factors[:, None]
        if base[:, i].sum() == 0:
            continue
        tot = w.response(stack)
        assert (np.diff(tot) >= -RTOL * tot[:-1]).all(), (c, tot)
        assert tot[-1] > tot[0], c  # a positive effect


@pytest.mark.parametrize("seed", SEEDS)
def test_display_has_zero_truth_in_latent_demand(seed):
    w = world("latent_demand", seed)
    t = w.truth(w.plans()["cut_display"])
    assert t["delta_purchases"] == 0.0 and all(t[k]["delta"] == 0.0 for k in KPIS)
    more = w._baseline.copy()
    more[: w.n_plan, 3] *= 5
    assert w.truth(more)["delta_purchases"] == 0.0
    # ... yet its historical spend correlates with sales (season, holidays, promos): the trap
    h = w.history()
    assert np.corrcoef(h["spend_display"], h["purchases"])[0, 1] > 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_search_is_capped_by_query_volume_in_brand_equity(seed):
    w = world("brand_equity", seed)
    cap = w.search_cap()  # spend buying ~95% of the queries
    at_cap = w._baseline.copy()
    at_cap[: w.n_plan, 2] = cap[: w.n_plan]
    doubled = at_cap.copy()
    doubled[: w.n_plan, 2] *= 2
    gain = w.response(doubled[: w.n_plan]) / w.response(at_cap[: w.n_plan]) - 1
    assert 0 <= gain < 0.01
    # the historical search spend follows the demand forecast (the confounding trap)
    h = w.history()
    assert np.corrcoef(h["spend_search"], w.season[w.t_hist:w.t_fc])[0, 1] > 0.8


@pytest.mark.parametrize("name,seed", CASES)
def test_history_csv_is_well_formed(name, seed, tmp_path):
    w = world(name, seed)
    w.write(tmp_path)
    h = pd.read_csv(tmp_path / "history.csv")
    d = pd.to_datetime(h["date"])
    assert len(h) == w.n_history and d.iloc[0] == pd.Timestamp("2023-01-02") and (d.dt.day_of_week == 0).all()
    assert (d.diff().dropna() == pd.Timedelta(days=7)).all()
    assert not h.isna().any().any()
    for c in CHANNELS:
        assert (h[f"spend_{c}"] >= 0).all() and (h[f"impressions_{c}"] >= 0).all()
    for k in KPIS:
        assert k in h
    assert h["awareness_survey"].between(0, 1).all() and (h["awareness_survey_n"] == 1000).all()
    assert 20e3 <= h["purchases"].mean() <= 60e3
    for c in w.controls:
        assert c in h
    # observation noise is realistic: a few percent around the expected counts
    rel = h["purchases"] / w.history_expected()["purchases"] - 1
    assert 0.005 < rel.std() < 0.06
    assert (tmp_path / "truth.json").exists() and (tmp_path / "plans" / "baseline.csv").exists()
    assert (tmp_path / "README.md").read_text().strip()


@pytest.mark.parametrize("name", list(WORLDS))
def test_same_seed_identical_and_different_seeds_differ(name):
    a = make(name, 0).history().to_csv(index=False)
    b = world(name, 0).history().to_csv(index=False)
    c = world(name, 1).history().to_csv(index=False)
    assert a == b
    assert a != c


def _tv_impulse(name, seed):
    w = world(name, seed)
    p = w._baseline.copy()
    p[0, 0] += 300e3
    return w.expected(p)["purchases"] - w.expected(w._baseline)["purchases"]


@pytest.mark.parametrize("seed", SEEDS)
def test_worlds_differ_in_tv_impulse_response(seed):
    d = {n: _tv_impulse(n, seed) for n in WORLDS}
    half = {n: int(np.argmax(np.cumsum(v) / v.sum() >= 0.5)) for n, v in d.items()}
    assert all(v.sum() > 0 for v in d.values())
    # latent_demand: delayed kernel, nothing in the same week, peak at least 2 weeks later
    assert d["latent_demand"][0] == 0.0 and int(np.argmax(d["latent_demand"])) >= 2
    # brand_equity and segments respond in the week of the pulse
    assert d["brand_equity"][0] > 0 and d["segments"][0] > 0
    # segments: renewal echo (a renewed rise after the initial decay) and the longest half-mass
    v = d["segments"]
    assert np.any(np.diff(v[2:10]) > 0)
    assert half["segments"] >= half["brand_equity"] + 3
    # brand_equity: smooth memory decay, no echo, after the peak
    pk = int(np.argmax(d["brand_equity"]))
    assert np.all(np.diff(d["brand_equity"][pk:pk + 8]) < 0)


def test_true_optimum_beats_the_baseline_split():
    w = world("latent_demand", 0)
    r = w.true_optimum(n_starts=2)
    assert r["gain"] >= 0 and abs(sum(r["shares"].values()) - 1) < 1e-9
    assert r["shares"]["display"] < 1e-6  # zero-effect channel gets nothing


def test_true_optimum_within_a_limit_stays_near_the_baseline_split():
    """With ``max_change=0.3`` every share lies within 70%-130% of the baseline's, the gain is at
    least the baseline split's (zero) and at most the unlimited optimum's (tolerance 1e-6 of it)."""
    w = world("latent_demand", 0)
    free = w.true_optimum(n_starts=2)
    near = w.true_optimum(n_starts=2, max_change=0.3)
    for c, b in near["baseline_shares"].items():
        assert 0.7 * b - 1e-9 <= near["shares"][c] <= 1.3 * b + 1e-9
    assert abs(sum(near["shares"].values()) - 1) < 1e-9
    assert -1e-6 * abs(free["gain"]) <= near["gain"] <= free["gain"] * (1 + 1e-6)
    assert near["shares"]["display"] == pytest.approx(0.7 * near["baseline_shares"]["display"], rel=1e-3)
