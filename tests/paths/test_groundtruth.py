"""Ground truth of attribution: channel-off runs under common random numbers, and the comparison.

Sizes: funnel3 with 4,000 agents over its 26 weeks (about 0.2 s a run).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import SCENARIOS

from journeysim.cli.main import main
from journeysim.engine.crn import CRNSimulation
from journeysim.errors import InputError
from journeysim.model.plan import Plan
from journeysim.model.scenario import load_scenario
from journeysim.paths.attribution import DEFAULT_METHODS
from journeysim.paths.groundtruth import (
    GroundTruth,
    compare_with_attribution,
    incremental_truth,
    switch_off,
)
from journeysim.plots.attribution import plot_truth_comparison


@pytest.fixture(scope="module")
def funnel() -> object:
    return load_scenario(SCENARIOS / "funnel3.yaml", agents=4_000)


@pytest.fixture(scope="module")
def truth(funnel) -> GroundTruth:
    return incremental_truth(funnel, replications=2, log_agents=4_000)


def _purchases(sc, replication: int) -> float:
    return float(CRNSimulation(sc, replication=replication).run().purchases.sum())


def test_common_random_numbers_shrink_the_variance_of_a_channel_off_difference(funnel):
    # Switching email off, 10 replications: under CRN (same replication, so the same keyed
    # numbers) against independent runs (replications 10..19 for the off runs). The ratio of
    # the two variances, measured over 30 replications, is about 20 (the engine's own streams
    # give 1.1); requiring 4 with 10 replications fails with probability about 1% (the 1%
    # quantile of F(9, 9) is 0.19 = 3.8 / 20).
    off = switch_off(funnel, "email")
    reps = 10
    full = np.array([_purchases(funnel, r) for r in range(reps)])
    same = np.array([_purchases(off, r) for r in range(reps)])
    other = np.array([_purchases(off, r + reps) for r in range(reps)])
    crn, independent = full - same, full - other
    assert crn.mean() > 0
    assert np.var(independent, ddof=1) > 4 * np.var(crn, ddof=1)
    # both estimate the same effect (within 4 standard errors of the independent estimate)
    assert abs(crn.mean() - independent.mean()) < 4 * np.std(independent, ddof=1) / np.sqrt(reps)


def test_crn_simulation_is_reproducible_and_keeps_the_engine_totals(funnel):
    a = CRNSimulation(funnel, replication=3).run()
    b = CRNSimulation(funnel, replication=3).run()
    assert a.purchases.sum().item() == b.purchases.sum().item()
    assert np.array_equal(a.stage_size.values, b.stage_size.values)
    # same model as the engine: the totals agree within Monte Carlo error (4 runs each, 6 SE)
    from journeysim.engine.simulation import Simulation

    crn = [float(CRNSimulation(funnel, replication=r).run().purchases.sum()) for r in range(4)]
    eng = [float(Simulation(funnel, replication=r).run().purchases.sum()) for r in range(4)]
    se = np.sqrt(np.var(crn, ddof=1) / 4 + np.var(eng, ddof=1) / 4)
    assert abs(np.mean(crn) - np.mean(eng)) < 6 * se


def test_zero_spend_channel_has_zero_truth_and_zero_credit(funnel):
    spend = np.array(funnel.plan.spend)
    spend[:, funnel.channels.index("display")] = 0.0
    sc = funnel.replace(plan=Plan(spend, funnel.plan.channels, "no display"))
    t = incremental_truth(sc, replications=2, channels=["display", "email"], all_off=False)
    assert np.all(t.incremental.sel(channel="display").values == 0.0)  # bit-identical runs
    assert np.all(t.incremental.sel(channel="email").values > 0)
    table = compare_with_attribution(t)
    assert table.loc["display", "truth"] == 0.0
    for method in DEFAULT_METHODS:
        assert table.loc["display", method] == 0.0
    assert "display" not in " ".join(t.paths["path"])


def test_path_conversions_match_the_simulated_total(truth):
    # every agent logged: the scaled path table holds exactly the runs' purchases
    assert truth.paths["total_conversions"].sum() == pytest.approx(float(truth.total.mean()), rel=1e-9)
    table = compare_with_attribution(truth)
    for method in DEFAULT_METHODS:
        assert table[method].sum() == pytest.approx(float(truth.total.mean()), rel=1e-6)
    assert list(table.index[:2]) == ["display", "email"]
    assert np.isnan(table.loc["(direct)", "truth"])
    assert table.attrs["all_off"] < table.attrs["total"]
    assert np.all(table.loc[["display", "email"], "truth_se"] > 0)


def test_buyers_are_counted_once_per_person(funnel):
    t = incremental_truth(funnel, replications=1, conversions="buyers", channels=["email"], all_off=False)
    purchases = incremental_truth(funnel, replications=1, channels=["email"], all_off=False)
    assert 0 < float(t.total[0]) < float(purchases.total[0])
    assert t.paths["total_conversions"].sum() == pytest.approx(float(t.total[0]), rel=1e-9)
    # one journey per logged agent with a touch or a purchase
    assert t.paths[["total_conversions", "total_null"]].to_numpy().sum() <= 200_000


def test_log_sample_is_scaled_to_the_market(funnel):
    t = incremental_truth(funnel, replications=1, channels=["email"], log_agents=1_000, all_off=False)
    assert t.info["path_scale"] == pytest.approx(200_000 / 1_000)
    # a quarter of the agents: the scaled conversions estimate the total within 10%
    assert t.paths["total_conversions"].sum() == pytest.approx(float(t.total[0]), rel=0.1)


def test_switch_off_each_kind_of_source(funnel):
    assert switch_off(funnel, "display").plan.by_channel()["display"] == 0.0
    assert switch_off(funnel, "display").plan.total == 0.0
    email = switch_off(funnel, "email")
    assert email.structure.owned_volume[funnel.channels.index("email")] == 0.0
    assert funnel.structure.owned_volume[funnel.channels.index("email")] > 0  # original untouched
    retail = load_scenario(SCENARIOS / "retail.yaml", agents=1000, weeks=4)
    assert float(switch_off(retail, "word_of_mouth").params.wom_rate) == 0.0
    assert float(retail.params.wom_rate) > 0


def test_bad_input_is_named(funnel):
    with pytest.raises(InputError, match="unknown channel 'emial'.*did you mean 'email'"):
        incremental_truth(funnel, channels=["emial"])
    with pytest.raises(InputError, match="conversions must be one of"):
        incremental_truth(funnel, conversions="orders")
    with pytest.raises(InputError, match="replications"):
        incremental_truth(funnel, replications=0)
    with pytest.raises(InputError, match="expected a Scenario"):
        incremental_truth("scenarios/funnel3.yaml")


def test_plot_has_truth_and_error_panels(truth):
    fig = plot_truth_comparison(compare_with_attribution(truth, ["first", "last"]))
    left, right = fig.axes
    assert [t.get_text() for t in left.get_yticklabels()] == ["display", "email", "(direct)"]
    assert len(left.patches) == 3 * 3  # truth + 2 methods, 3 channels


def test_cli_scenario_form_writes_truth(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["attribute", "--scenario", str(SCENARIOS / "funnel3.yaml"), "--agents", "2000", "--weeks", "8",
                 "--replications", "2", "--methods", "last,markov1", "--out", str(out), "--quiet"])
    assert code == 0
    for name in ("paths.csv", "attribution.csv", "attribution_truth.csv", "attribution_truth.png",
                 "truth_replications.csv", "summary.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["truth"]["replications"] == 2
    assert set(summary["truth"]["table"]) == {"truth", "truth_se", "last", "markov1"}
    table = pd.read_csv(out / "attribution_truth.csv", index_col="channel")
    assert table.loc["email", "truth"] == pytest.approx(summary["truth"]["table"]["truth"]["email"])


def test_cli_needs_exactly_one_input(tmp_path, capsys):
    paths = tmp_path / "p.csv"
    paths.write_text("path,total_conversions,total_null\na > b,1,1\n")
    assert main(["attribute", str(paths), "--scenario", str(SCENARIOS / "funnel3.yaml"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "not both or neither" in capsys.readouterr().err
    assert main(["attribute", str(paths), "--agents", "10", "--out", str(tmp_path / "o")]) == 2
    assert "only apply with --scenario" in capsys.readouterr().err
    assert main(["attribute", str(paths), "--out", str(tmp_path / "o"), "--quiet"]) == 0
