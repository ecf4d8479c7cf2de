"""The sampler's coordinates (journeysim.inference.coordinates): the same model in other coordinates.

Each change of coordinates has unit Jacobian, so the log density (with PyMC's Jacobians of its own
transforms) at corresponding points is the same with and without it, to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from test_calibrate import DATA_SEED, TINY, TRUTH, simulate_observed

from journeysim.inference.coordinates import typical_exposure
from journeysim.inference.inputs import observed_inputs
from journeysim.inference.likelihood import build_model
from journeysim.io.observed import read_observed
from journeysim.model.scenario import load_scenario

NOISE = {"noise_enquiries": 0.04, "noise_new_customers": 0.07}


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    """The tiny funnel's observed CSV (test_calibrate's data)."""
    d = tmp_path_factory.mktemp("coords")
    (d / "tiny.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    simulate_observed(load_scenario(d / "tiny.yaml"), TRUTH, seed=DATA_SEED).to_csv(d / "observed.csv", index=False)
    return d / "observed.csv"


def _scenario(csv, tmp_path, priors):
    path = tmp_path / "coords.yaml"
    path.write_text(yaml.safe_dump({**TINY, "priors": {**TINY["priors"], **priors}}))
    sc = load_scenario(path)
    data = read_observed(csv, sc)
    touches, em, cm, _ = observed_inputs(sc, data)
    return sc, data, typical_exposure(sc.with_data(data), touches, em, cm)


def _logp(model, values):
    point = {}
    for name, val in values.items():
        rv = model[name]
        tr = model.rvs_to_transforms.get(rv)
        point[model.rvs_to_values[rv].name] = np.asarray(tr.forward(val, *rv.owner.inputs).eval() if tr else val)
    return model.compile_logp()(point)


def test_effects_at_the_typical_frequency_give_the_same_model(observed, tmp_path):
    sc, data, typ = _scenario(observed, tmp_path, {"saturation.display": "gamma(3, 1.5)"})
    f = typ["frequency"][0]
    assert 0.1 < f < 50.0  # weekly touches per targeted person: a plausible frequency
    base, coords = build_model(sc, data, typical=False), build_model(sc, data)
    assert "effect.display.unaware->interested@typical" in [v.name for v in coords.free_RVs]
    beta, fhalf = 0.0035, 2.4
    common = {"rate.interested->customer": 1.2, "rate.customer->interested": 0.9, "saturation.display": fhalf, **NOISE}
    want = _logp(base, {**common, "effect.display.unaware->interested": beta})
    got = _logp(coords, {**common, "effect.display.unaware->interested@typical": np.log(beta / (1 + f / fhalf))})
    assert got == pytest.approx(want, rel=1e-10)


def test_a_base_rate_and_an_effect_on_one_transition_as_a_hazard_and_a_share(observed, tmp_path):
    edge = "unaware->interested"
    sc, data, typ = _scenario(observed, tmp_path, {"saturation.display": "gamma(3, 1.5)", f"rate.{edge}": "lognormal(1, 0.5)"})
    e = sc.structure.edges.index(edge)
    b_bar, mem, f = typ["base"][e], typ["memory"][0, e], typ["frequency"][0]
    q0 = 1.0 / (1.0 + f / float(sc.params.fhalf[0]))
    assert b_bar > 0 and mem > 0
    base, coords = build_model(sc, data, typical=False), build_model(sc, data)
    names = [v.name for v in coords.free_RVs]
    assert f"hazard.{edge}@typical" in names and f"share.{edge}@typical" in names
    assert f"effect.display.{edge}@typical" not in names  # (in the hazard's coordinates instead)
    for r, beta, fhalf in ((1.3, 0.0035, 2.4), (0.6, 0.012, 9.0)):
        common = {"rate.interested->customer": 1.2, "rate.customer->interested": 0.9, "saturation.display": fhalf,
                  **NOISE}
        want = _logp(base, {**common, f"rate.{edge}": r, f"effect.display.{edge}": beta})
        channel = beta / (1 + f / fhalf) * mem / q0  # the channel's typical hazard, as the coordinates count it
        got = _logp(coords, {**common, f"hazard.{edge}@typical": np.log(r * b_bar + channel),
                             f"share.{edge}@typical": np.array([np.log(channel / (r * b_bar))])})
        assert got == pytest.approx(want, rel=1e-7)  # (measured 6e-12 and 8e-9: exp and log round trips)
