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


def test_a_plan_outside_the_spend_the_history_ran_is_named():
    """Cutting a channel the history always ran, or running it at four times its most, gets a note
    naming the plan, the channel and the range the history ran; a modest change gets none."""
    from journeysim.cli.plan import extrapolation_notes

    sc = load_scenario(SCENARIOS / "shop.yaml")
    data = read_observed(SCENARIOS / "data" / "shop_observed.csv", sc)
    plans = [{"name": "no display", "changes": [{"scale": {"display": 0.0}}]},
             {"name": "four times social", "changes": [{"scale": {"social": 4.0}}]},
             {"name": "a bit more search", "changes": [{"scale": {"search": 1.1}}]}]
    fc = forecast(sc, known_fit(sc, draws=4, spread=0.05), data, plans, horizon=6, tail=2)
    notes = extrapolation_notes(fc, data, "EUR")
    assert len(notes) == 2
    assert notes[0].startswith("plan 'no display' runs display at 0 EUR a week, where the history ran it between")
    assert "plan 'four times social' runs social at" in notes[1] and "response curve" in notes[1]
