"""Demand-capped channels: search delivers at most ``cap`` touches a week to a person in its
targeted stages, the same in agents, twin and likelihood."""

from __future__ import annotations

import numpy as np
import yaml
from conftest import SCENARIOS, check_agreement

from journeysim.engine.simulation import simulate
from journeysim.model.plan import Plan
from journeysim.model.scenario import load_scenario
from journeysim.twin.run import run_twin


def shop(tmp_path, cap=0.03, **market):
    raw = yaml.safe_load((SCENARIOS / "shop.yaml").read_text())
    raw["plan"] = {"csv": str(SCENARIOS / "shop_plan.csv")}
    raw.pop("data")
    raw.pop("plans")
    raw["channels"]["search"]["cap"] = cap
    raw["market"].update(market)
    path = tmp_path / "shop_cap.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_scenario(path)


def test_cap_limits_delivery_and_spend_beyond_buys_nothing(tmp_path):
    sc = shop(tmp_path)
    free = shop(tmp_path, cap=1e9)
    k = sc.channels.index("search")
    bought = run_twin(free).impressions.sel(channel="search").values
    got = run_twin(sc).impressions.sel(channel="search").values
    assert np.all(got < bought) and np.all(got > 0)
    interested = run_twin(sc).stage_size.sum("persona").sel(stage=["interested", "customer"])
    weights = np.array([1.0, 0.3])  # search's targeting of interested people and customers
    targeted = (interested.values * weights).sum(axis=1)
    assert np.all(got[1:] <= 0.03 * targeted[:-1] * 1.05)  # never more than the cap a week (people targeted)
    spend = np.array(sc.plan.spend, float)
    more = spend.copy()
    more[:, k] *= 3
    base = float(run_twin(sc).purchases.sum())
    tripled = float(run_twin(sc, plan=Plan(more, sc.channels)).purchases.sum())
    base_free = float(run_twin(free).purchases.sum())
    tripled_free = float(run_twin(free, plan=Plan(more, sc.channels)).purchases.sum())
    assert (tripled - base) < 0.25 * (tripled_free - base_free)


def test_agents_and_twin_agree_with_a_binding_cap(tmp_path):
    sc = shop(tmp_path, agents=30_000)
    check_agreement(sc, R=6)
    ag = np.mean([simulate(sc, replication=r).impressions.sel(channel="search").sum().item() for r in range(3)])
    tw = run_twin(sc).impressions.sel(channel="search").sum().item()
    assert abs(ag - tw) < 0.03 * tw


def test_delivery_curve_is_learned_from_observed_impressions(tmp_path):
    """With impressions_search observed and a prior on cap.search, the likelihood compares them with
    what the cap lets the spend buy from the people targeted: at the true cap the model's impressions
    are the twin's (the same definition)."""
    import pandas as pd
    import pytensor

    from journeysim.inference.likelihood import build_model
    from journeysim.io.observed import read_observed

    sc = shop(tmp_path)
    tw = run_twin(sc)
    df = pd.read_csv(SCENARIOS / "data" / "shop_observed.csv")
    df["impressions_search"] = tw.impressions.sel(channel="search").values
    df.to_csv(tmp_path / "obs.csv", index=False)
    raw = yaml.safe_load((tmp_path / "shop_cap.yaml").read_text())
    raw["priors"]["cap.search"] = "lognormal(0.03, 0.5)"
    (tmp_path / "shop_cap.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    sc = load_scenario(tmp_path / "shop_cap.yaml")
    model = build_model(sc, read_observed(tmp_path / "obs.csv", sc), typical=False)  # (points in the parameters' logs)
    assert "obs_impressions_search" in model.named_vars
    (mu,) = model.replace_rvs_by_values([model["impressions_search_model"]])
    fn = pytensor.function(model.value_vars, mu, on_unused_input="ignore")
    space = model._journeysim_space  # noqa: SLF001
    vals = dict(zip(space.names, space.values_of(sc.params)))  # (rate multipliers: 1)
    point = model.initial_point()
    for name, prior in zip(space.names, space.priors):
        if prior.form == "lognormal":
            point[f"{name}_log__"] = np.log(vals[name])
    got = fn(**point)
    # (to 1e-4: the history runs on the observed weekly impressions spread evenly over the days, the
    # twin on each day's own delivery)
    np.testing.assert_allclose(got, df["impressions_search"].to_numpy(), rtol=1e-4)
