"""The ``ar1`` likelihood: log-scale errors that persist from week to week.

Its log density is checked against the multivariate normal it stands for (gaps in the observed
weeks included), its replicates against the AR(1) they are drawn from (statistically, fixed seed),
and its input check against a zero it cannot take.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy import stats

from journeysim.errors import InputError
from journeysim.inference.likelihood import _add_ar1
from journeysim.io.observed import read_observed
from journeysim.model.observe import sample_kpi
from journeysim.model.scenario import load_scenario


def test_ar1_log_density_is_the_multivariate_normal_it_stands_for():
    import pymc as pm
    import pytensor.tensor as pt

    rng = np.random.default_rng(3)
    weeks = np.array([0, 1, 2, 4, 5, 9, 10, 11])  # (weeks 3 and 6-8 missing)
    mu = rng.uniform(500, 2000, weeks.size)
    y = mu * np.exp(rng.normal(0, 0.1, weeks.size))
    sigma, rho = 0.08, 0.7
    with pm.Model() as model:
        _add_ar1(pm, pt, "obs", pt.as_tensor(mu), pt.as_tensor(y), weeks, pt.as_tensor(sigma), pt.as_tensor(rho))
    got = model.compile_logp()({})
    lag = np.abs(weeks[:, None] - weeks[None, :])
    cov = sigma**2 / (1 - rho**2) * rho**lag
    want = stats.multivariate_normal(np.log(mu), cov).logpdf(np.log(y)) - np.sum(np.log(y))
    assert got == pytest.approx(want, rel=1e-10)


def test_ar1_replicates_persist_as_stated():
    # 400 series of 200 weeks: the lag-one correlation of log(y / mu) and the innovations' sd
    # are estimated to about +-0.005 and +-0.2% (4 standard errors well inside the tolerances)
    rng = np.random.default_rng(11)
    mu = np.full((400, 200), 1000.0)
    y = sample_kpi(rng, mu, "ar1", noise=0.05, persistence=0.6)
    u = np.log(y / mu)
    r1 = np.sum(u[:, 1:] * u[:, :-1]) / np.sum(u[:, :-1] ** 2)
    assert r1 == pytest.approx(0.6, abs=0.02)
    assert np.std(u[:, 1:] - 0.6 * u[:, :-1]) == pytest.approx(0.05, rel=0.02)
    assert np.std(u) == pytest.approx(0.05 / np.sqrt(1 - 0.36), rel=0.03)  # stationary from the first week


def test_ar1_refuses_a_value_it_cannot_take(tmp_path):
    sc_dict = {
        "name": "ar1", "market": {"population": 10_000, "agents": 1_000, "start": "2025-01-06", "weeks": 4,
                                  "step": "week"},
        "journey": {"template": "funnel3"},
        "channels": {"display": {"cpm": 4.0, "effects": {"unaware->interested": 0.004}}},
        "plan": {"spend": {"display": [100, 100, 100, 100]}},
        "observations": [{"column": "enquiries", "measures": "entries", "stages": ["interested"],
                          "likelihood": "ar1"}],
    }
    path = tmp_path / "ar1.yaml"
    path.write_text(yaml.safe_dump(sc_dict))
    sc = load_scenario(path)
    csv = tmp_path / "observed.csv"
    csv.write_text("date,spend_display,enquiries\n2025-01-06,100,12\n2025-01-13,100,0\n2025-01-20,100,9\n"
                   "2025-01-27,100,11\n")
    with pytest.raises(InputError, match="row 3, column enquiries: 0 cannot be observed with likelihood ar1"):
        read_observed(csv, sc)
