"""Delivery curves learned from observed impressions (:mod:`journeysim.model.delivery`): what a
week's spend buys, where the data's ``impressions_<channel>`` columns say it."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SCENARIOS

from journeysim.errors import InputError
from journeysim.io.observed import read_observed
from journeysim.model.delivery import learn_delivery
from journeysim.model.plan import Plan
from journeysim.model.scenario import load_scenario
from journeysim.twin.run import run_twin


def _scenario(tmp_path, **display):
    raw = yaml.safe_load((SCENARIOS / "shop.yaml").read_text())
    raw["plan"] = {"csv": str(SCENARIOS / "shop_plan.csv")}
    raw.pop("data")
    raw.pop("plans")
    raw["channels"]["display"].update(display)
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_scenario(path)


def _data(tmp_path, sc, cpm: float, elasticity: float, scatter: float, seed: int = 0):
    """The shop's CSV with display's spend varied week by week and its impressions bought at a cost per
    thousand of ``cpm`` at 3,000 a week, rising with spend at ``elasticity``, with log-normal ``scatter``."""
    rng = np.random.default_rng(seed)
    df = pd.read_csv(SCENARIOS / "data" / "shop_observed.csv")
    spend = 3000.0 * np.exp(rng.normal(0.0, 0.4, len(df)))
    df["spend_display"] = np.round(spend, 2)
    cost = cpm / 1000.0 * (spend / 3000.0) ** elasticity
    df["impressions_display"] = np.round(spend / cost * np.exp(rng.normal(0.0, scatter, len(df))))
    df.to_csv(tmp_path / "obs.csv", index=False)
    return read_observed(tmp_path / "obs.csv", sc)


def test_the_cost_and_its_elasticity_are_learned_within_tolerance(tmp_path):
    """A cost per thousand of 5.00 at 3,000 a week rising at elasticity 0.25 (the scenario says 4.00):
    learned within 2% and 0.05 from the CSV's 39 weeks with 5% scatter."""
    sc = _scenario(tmp_path)
    curve = learn_delivery(sc, _data(tmp_path, sc, cpm=5.0, elasticity=0.25, scatter=0.05))["display"]
    assert curve.stated_cost == pytest.approx(0.004)
    assert curve.cost_at(3000.0) == pytest.approx(0.005, rel=0.02)
    assert curve.elasticity == pytest.approx(0.25, abs=0.05)
    assert curve.sigma == pytest.approx(0.05, rel=0.3)


def test_a_constant_cost_stays_constant(tmp_path):
    """Constant cost with 10% scatter: over 20 seeds the learned elasticity is centred on zero
    (mean within 0.02, every seed within 0.1)."""
    sc = _scenario(tmp_path)
    g = [learn_delivery(sc, _data(tmp_path, sc, 4.0, 0.0, 0.10, seed=s))["display"].elasticity for s in range(20)]
    assert abs(np.mean(g)) < 0.02 and np.max(np.abs(g)) < 0.1


def test_forecasts_buy_touches_along_the_learned_curve(tmp_path):
    """After ``with_data``, spend buys the touches the history's impressions say (the twin's own
    impressions of the history's spend match the observed within the scatter), where the scenario's
    stated cost would be 20% off."""
    sc = _scenario(tmp_path)
    data = _data(tmp_path, sc, cpm=5.0, elasticity=0.0, scatter=0.02)
    learned = sc.with_data(data)
    k = sc.channels.index("display")
    spend = data.plan.aligned(sc.channels)
    week = learned.structure.touches(spend)[:, k] * 7.0
    np.testing.assert_allclose(week, data.impressions[:, k], rtol=0.08)
    stated = sc.structure.touches(spend)[:, k] * 7.0
    assert np.median(stated / data.impressions[:, k]) == pytest.approx(1.25, rel=0.03)
    plan = Plan(np.asarray(sc.plan.spend, float), sc.channels)
    got = run_twin(learned, plan=plan).impressions.sel(channel="display").values
    want = run_twin(sc, plan=plan).impressions.sel(channel="display").values
    np.testing.assert_allclose(got, want * 4.0 / 5.0, rtol=0.02)


def test_fixed_delivery_and_a_capped_channel_keep_the_stated_cost(tmp_path):
    sc = _scenario(tmp_path, delivery="fixed")
    data = _data(tmp_path, sc, cpm=5.0, elasticity=0.2, scatter=0.02)
    assert learn_delivery(sc, data) == {}
    assert sc.with_data(data).structure.cost_per_touch[sc.channels.index("display")] == pytest.approx(0.004)
    capped = _scenario(tmp_path, cap=2.0)
    assert learn_delivery(capped, data) == {}


def test_a_misspelt_delivery_is_refused_naming_the_key(tmp_path):
    with pytest.raises(InputError, match=r"channels\.display\.delivery"):
        _scenario(tmp_path, delivery="learnt")


def test_without_impressions_nothing_changes(tmp_path):
    sc = _scenario(tmp_path)
    data = read_observed(SCENARIOS / "data" / "shop_observed.csv", sc)
    assert sc.with_data(data) is sc


def test_the_fit_and_the_forecast_say_what_spend_buys(tmp_path):
    """``journeysim fit`` prints the learned curve in words with its currency unit, and forecasts note it."""
    from journeysim.cli.fit import delivery_notes

    sc = _scenario(tmp_path)
    data = _data(tmp_path, sc, cpm=5.0, elasticity=0.0, scatter=0.02)
    (line,) = delivery_notes(sc, data)
    assert re.fullmatch(r"delivery learned from impressions_display: CPM 4\.9\d at 2,\d{3} a week, "
                        r"(constant in spend|[-+][0-3]% per doubling of spend) \(scenario 4\.00; 39 weeks of "
                        r"impressions, weekly scatter 2%\)", line), line
