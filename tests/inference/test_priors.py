"""Default priors: what calibration learns when a scenario names no priors."""

from __future__ import annotations

import pytest
import yaml
from conftest import SCENARIOS

from journeysim.errors import InputError
from journeysim.inference.priors import build_space, default_priors, parse_prior
from journeysim.model.scenario import load_scenario


def _shop(tmp_path, **channel_changes):
    raw = yaml.safe_load((SCENARIOS / "shop.yaml").read_text())
    raw.pop("priors")
    raw["plan"] = {"csv": str(SCENARIOS / "shop_plan.csv")}
    raw.pop("data")
    raw.pop("plans")
    for c, ch in channel_changes.items():
        raw["channels"][c].update(ch)
        if ch.get("linear"):
            raw["channels"][c].pop("saturation", None)
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_scenario(path)


def test_every_paid_channel_gets_a_saturation_prior(tmp_path):
    pri = default_priors(_shop(tmp_path))
    # display and social state a saturation (the prior's mean), search none (the default mean, 5)
    assert parse_prior(pri["saturation.display"]).args == (3.0, 1.8)
    assert parse_prior(pri["saturation.search"]).args == (5.0, 3.0)
    assert "saturation.newsletter" not in pri  # owned: no spend to saturate
    assert "carryover.search" in pri and "effect.search.interested->customer" in pri


def test_a_channel_declared_linear_gets_none(tmp_path):
    pri = default_priors(_shop(tmp_path, search={"linear": True}, social={"linear": True}))
    assert "saturation.search" not in pri and "saturation.social" not in pri
    assert "saturation.display" in pri


def test_linear_and_saturation_together_are_refused(tmp_path):
    raw = yaml.safe_load((SCENARIOS / "shop.yaml").read_text())
    raw["channels"]["display"]["linear"] = True
    raw["plan"] = {"csv": str(SCENARIOS / "shop_plan.csv")}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match="channels.display.*linear"):
        load_scenario(path)


def test_demand_terms_are_learned_even_with_a_priors_section(tmp_path):
    raw = yaml.safe_load((SCENARIOS / "shop.yaml").read_text())
    raw["plan"] = {"csv": str(SCENARIOS / "shop_plan.csv")}
    raw.pop("data")
    raw.pop("plans")
    raw["demand"] = {"seasonality": {"order": 1, "prior_sd": 0.2}, "trend": {}}
    raw["priors"]["demand.trend"] = "normal(0, 0.05)"
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(raw))
    space = build_space(load_scenario(path))
    pri = dict(zip(space.names, map(str, space.priors)))
    assert pri["demand.season.sin1"] == "normal(0, 0.2)" and pri["demand.season.cos1"] == "normal(0, 0.2)"
    assert pri["demand.trend"] == "normal(0, 0.05)"  # the priors: section wins
    assert "effect.search.interested->customer" in pri
