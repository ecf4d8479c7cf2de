"""Where a plan's effect runs: the change of the people in each stage against the baseline."""

from __future__ import annotations

import pytest
from conftest import SCENARIOS

from journeysim.cli.plan import stage_effects
from journeysim.inference.posterior import known_fit
from journeysim.io.observed import read_observed
from journeysim.model.scenario import load_scenario
from journeysim.planning.forecasting import forecast


def test_stage_effects_move_people_between_stages():
    sc = load_scenario(SCENARIOS / "shop.yaml")
    data = read_observed(SCENARIOS / "data" / "shop_observed.csv", sc)
    fc = forecast(sc, known_fit(sc, draws=6, spread=0.05), data,
                  [{"name": "more social", "changes": [{"scale": {"social": 2.0}}]}], horizon=8, tail=0)
    eff = stage_effects(fc)["more social"]
    # people are neither made nor lost: the changes over the stages add up to zero
    assert sum(r["mean"] for r in eff.values()) == pytest.approx(0.0, abs=1e-6 * 300_000)
    assert eff["interested"]["mean"] > 0 > eff["unaware"]["mean"]  # social makes people interested
    assert eff["interested"]["lower"] <= eff["interested"]["mean"] <= eff["interested"]["upper"]
