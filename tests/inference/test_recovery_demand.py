"""Recovery of demand terms on ``scenarios/funnel3_demand.yaml`` (issue 15).

The example is funnel3 over 78 weekly steps with a yearly seasonality (order 1), a trend and a 0/1
promotion control on the purchase transition, at the values its ``demand:`` section writes, and
priors centred on zero (the promotion's is ``halfnormal(0.2)``). ``scenarios/make_data.py`` writes
the promotion calendar (``CONTROLS``) into the observed CSV and runs the agents with it.

The fast tests check that the scenario validates, that the data generator writes the control column
the scenario reads, and that the agents run with those controls. The slow test refits the example
with ``experiments/recovery.py`` (the agents regenerate the data at every seed) and checks coverage
of the central 90% interval.

Tolerance of the slow test: for a calibrated posterior, the number of seeds out of ``n = 12``
whose interval holds the truth is Binomial(12, 0.9) for each quantity, so "at least ``k = 8``"
fails by chance with probability P(X <= 7) = 0.0043, at most 1.3% for the three quantities
checked (seasonal amplitude, trend, promotion coefficient; union bound), while a fit whose
intervals cover only half the time fails it with probability 0.81. The seeds are fixed (1-12), so
the test is deterministic on a given machine; 2 chains x (300 + 300) draws, about 20 s to compile
and 4 s a fit on two shared cores. Measured with these settings: amplitude 9/12, trend 11/12,
promotion 10/12 (``experiments/results/recovery_demand.json``, 20 seeds: 85%, 95%, 85%).
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, SCENARIOS

from journeysim.io.observed import read_observed
from journeysim.model.scenario import load_scenario

NAME = "funnel3_demand"
SEEDS = list(range(1, 13))
AT_LEAST = 8
CHECKED = ("demand.season.amplitude1", "demand.trend", "demand.control.promo")


def _module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def make_data():
    return _module(SCENARIOS / "make_data.py", "make_data")


def test_demand_example_validates_and_names_its_demand_terms():
    sc = load_scenario(SCENARIOS / f"{NAME}.yaml")
    d = sc.structure.demand
    assert d is not None and d.order == 1 and d.trend and d.controls == ("promo",)
    assert d.names == ("demand.season.sin1", "demand.season.cos1", "demand.trend", "demand.control.promo")
    np.testing.assert_allclose(sc.params.demand, [0.15, -0.10, 0.10, 0.12])


def test_generated_csv_has_the_control_and_the_agents_use_it(make_data, tmp_path):
    df = make_data.make(NAME, tmp_path, seed=1)
    assert "promo" in df.columns
    written = pd.read_csv(tmp_path / f"{NAME}_observed.csv")
    np.testing.assert_array_equal(written["promo"], make_data.CONTROLS[NAME]["promo"])
    committed = pd.read_csv(SCENARIOS / "data" / f"{NAME}_observed.csv")
    assert list(committed.columns) == list(written.columns)
    np.testing.assert_array_equal(committed["promo"], written["promo"])
    # the fit reads the column as the control, standardised as the agents had it
    sc = load_scenario(SCENARIOS / f"{NAME}.yaml")
    data = read_observed(tmp_path / f"{NAME}_observed.csv", sc)
    simulated = make_data.with_controls(sc, NAME).structure.demand
    np.testing.assert_allclose(sc.with_data(data).structure.demand.table, simulated.table, atol=1e-12)
    truth = json.loads((tmp_path / f"{NAME}_truth.json").read_text())["truth"]
    assert {k: truth[k] for k in simulated.names} == pytest.approx(dict(zip(simulated.names, [0.15, -0.10, 0.10, 0.12])))


@pytest.mark.slow
def test_demand_terms_are_recovered_over_seeds():
    """Seasonal amplitude, trend and promotion coefficient inside the 90% interval in at least 8
    of 12 seeds (tolerance: the module's docstring)."""
    recovery = _module(REPO / "experiments" / "recovery.py", "recovery")
    res = recovery.recover(NAME, SEEDS, draws=300, tune=300, chains=2)
    covered = {n: sum(r["parameters"][n]["covered"] for r in res["runs"]) for n in CHECKED}
    assert all(c >= AT_LEAST for c in covered.values()), covered
