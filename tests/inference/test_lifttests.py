"""Lift tests (journeysim.model.lifttests) in the likelihood: the model's lift is the twin's
counterfactual difference, computed exactly as two twin runs of the history would."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import SCENARIOS

from journeysim.errors import InputError
from journeysim.io.observed import read_observed
from journeysim.model.plan import Plan
from journeysim.model.scenario import load_scenario
from journeysim.twin.run import run_twin

TEST = {"name": "search holdout", "channel": "search", "weeks": [10, 13], "spend": 0.0, "share": 0.25,
        "window": 2, "measures": "new_customers", "lift": -300.0, "se": 100.0}


def _scenario(tmp_path, tests, fixed=True):
    raw = yaml.safe_load((SCENARIOS / "shop.yaml").read_text())
    raw["plan"] = {"csv": str(SCENARIOS / "shop_plan.csv")}
    raw["data"] = str(SCENARIOS / "data" / "shop_observed.csv")
    raw.pop("plans")
    raw["lift_tests"] = tests
    if fixed:  # one free parameter, at 1 in the initial point; the rest at the scenario's values
        raw["priors"] = {"rate.interested->customer": "lognormal(1, 0.5)",
                         "effect.search.interested->customer": "fixed(0.08)"}
    path = tmp_path / "shop_lift.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    sc = load_scenario(path)
    return sc, read_observed(SCENARIOS / "data" / "shop_observed.csv", sc)


@pytest.mark.parametrize("fused", [True, False])
def test_model_lift_is_the_twins_counterfactual_difference(tmp_path, fused):
    from journeysim.inference.likelihood import build_model

    sc, data = _scenario(tmp_path, [TEST])
    model = build_model(sc, data, fused=fused)
    import pytensor

    (lift,) = model.replace_rvs_by_values([model["lift_0_model"]])
    fn = pytensor.function(model.value_vars, lift, on_unused_input="ignore")
    point = model.initial_point()
    point["rate.interested->customer_log__"] = np.array(0.0)  # the multiplier at 1: the scenario's values
    got = float(fn(**point))
    # two numpy twin runs over the observed history: as it was, and with search off in weeks 10-13
    spend = np.array(data.plan.spend, float)
    hist = sc.over(data)
    actual = run_twin(hist, plan=Plan(spend.copy(), sc.channels))
    spend[9:13, sc.channels.index("search")] = 0.0
    cf = run_twin(hist, plan=Plan(spend, sc.channels))
    weeks = slice(9, 15)  # the test's four weeks and the two-week window
    want = 0.25 * float(cf.purchases_new.sum("persona")[weeks].sum() - actual.purchases_new.sum("persona")[weeks].sum())
    assert want < 0
    assert got == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("change, key, words", [
    ({"channel": "radio"}, "lift_tests[0].channel", "unknown channel 'radio'"),
    ({"weeks": [13, 10]}, "lift_tests[0].weeks", "after the last"),
    ({"measures": "entries"}, "lift_tests[0].stages", "needs the stages"),
    ({"se": 0}, "lift_tests.0.se", "greater than 0"),
])
def test_bad_lift_test_names_the_key(tmp_path, change, key, words):
    with pytest.raises(InputError) as exc:
        _scenario(tmp_path, [{**TEST, **change}])
    assert key in str(exc.value) and words in str(exc.value)


def test_lift_test_outside_the_data_is_refused(tmp_path):
    from journeysim.inference.likelihood import build_model

    sc, data = _scenario(tmp_path, [{**TEST, "weeks": [36, 38]}])
    with pytest.raises(InputError, match=r"lift_tests\[0\].weeks.*inside the 39 observed weeks"):
        build_model(sc, data)
