"""The demand: section (journeysim.model.demand): seasonality, trend and controls on base hazards.

One definition for every engine: the agents and the twin agree on a market with moving demand
(tolerance as in tests/twin/test_twin.py), and the likelihood's gradient with respect to the
demand coefficients equals finite differences of its log density.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SCENARIOS, check_agreement

from journeysim.errors import InputError
from journeysim.io.observed import read_observed
from journeysim.model.dynamics import edge_multipliers
from journeysim.model.scenario import load_scenario

DEMAND = {
    "transitions": ["interested->customer"],
    "seasonality": {"order": 1, "coefficients": [0.4, -0.2]},
    "trend": {"value": 0.15},
    "controls": {"promo": {"sign": "positive", "value": 0.2}},
}


def shop(tmp_path, demand=DEMAND, promo=True, **market):
    raw = yaml.safe_load((SCENARIOS / "shop.yaml").read_text())
    raw["demand"] = demand
    raw["plan"] = {"csv": str(SCENARIOS / "shop_plan.csv")}
    raw["market"].update(market)
    data = pd.read_csv(SCENARIOS / "data" / "shop_observed.csv")
    if promo:
        data["promo"] = (np.arange(len(data)) % 6 == 0).astype(float)
    data.to_csv(tmp_path / "observed.csv", index=False)
    raw["data"] = str(tmp_path / "observed.csv")
    raw.pop("plans", None)
    path = tmp_path / "shop_demand.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_scenario(path)


def test_terms_names_and_values(tmp_path):
    sc = shop(tmp_path)
    d = sc.structure.demand
    assert d.names == ("demand.season.sin1", "demand.season.cos1", "demand.trend", "demand.control.promo")
    np.testing.assert_array_equal(sc.params.demand, [0.4, -0.2, 0.15, 0.2])
    assert d.edges.tolist() == [float(e == "interested->customer") for e in sc.structure.edges]
    # the controls came from the scenario's data file, standardised over it
    z = d.table[:, 0]
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12


def test_multiplier_is_exp_of_design_on_named_transitions_only(tmp_path):
    sc = shop(tmp_path)
    st = sc.structure
    weeks = np.arange(60)  # past the 39-week horizon: seasonality and trend go on, the control at its level
    em = edge_multipliers(np, st, sc.params.demand, weeks)
    want = np.exp(st.demand.design(weeks) @ sc.params.demand)
    e = st.edges.index("interested->customer")
    np.testing.assert_allclose(em[:, 0, e], want, rtol=1e-12)
    others = np.delete(np.arange(len(st.edges)), e)
    np.testing.assert_array_equal(em[:, :, others], 1.0)
    X = st.demand.design(weeks)
    np.testing.assert_allclose(X[39:, 3], st.demand.table[-13:, 0].mean())  # held at its recent level
    # a batch of coefficients gives a batch of multipliers
    batch = np.stack([sc.params.demand, np.zeros(4)])
    em_b = edge_multipliers(np, st, batch, weeks)
    assert em_b.shape == (2, 60) + em.shape[1:]
    np.testing.assert_allclose(em_b[0], em)
    np.testing.assert_allclose(em_b[1], 1.0)


def test_seasonality_follows_the_calendar(tmp_path):
    """The same calendar week a year later has the same seasonal terms (to the 1.25 days a
    52-week shift leaves), whatever the market's start date."""
    d = shop(tmp_path).structure.demand
    X = d.design(np.array([0, 52]))
    np.testing.assert_allclose(X[0, :2], X[1, :2], atol=2 * np.pi * 1.25 / 365.25)
    later = type(d)(**{**d.__dict__, "start": d.start + dt.timedelta(weeks=10)})
    np.testing.assert_allclose(later.design([0])[0, :2], d.design([10])[0, :2], atol=1e-12)


def test_agents_and_twin_agree_with_moving_demand(tmp_path):
    check_agreement(shop(tmp_path, agents=30_000), R=6)


def test_data_gives_the_controls(tmp_path):
    sc = shop(tmp_path)
    data = read_observed(tmp_path / "observed.csv", sc)
    assert data.controls["promo"].sum() == 7
    assert data.head(10).controls["promo"].shape == (10,)
    fitted = sc.over(data.head(30))
    assert fitted.structure.demand.horizon == 39 and fitted.structure.demand.table.shape == (30, 1)


@pytest.mark.parametrize("demand, key, words", [
    ({"transitions": ["interested->nowhere"]}, "demand.transitions", "nowhere"),
    ({"seasonality": {"order": 1, "coefficients": [0.1]}}, "demand.seasonality.coefficients", "order 1 has 2"),
    ({"seasonality": {"ordre": 1}}, "demand.seasonality", "did you mean 'order'"),
    ({"controls": {"promo": {"sign": "up"}}}, "demand.controls.promo.sign", "positive"),
])
def test_bad_demand_section_names_the_key(tmp_path, demand, key, words):
    with pytest.raises(InputError) as exc:
        shop(tmp_path, demand=demand)
    assert key in str(exc.value) and words in str(exc.value)


def test_missing_control_column_is_refused(tmp_path):
    with pytest.raises(InputError, match="no column 'promo'"):
        shop(tmp_path, promo=False)


def test_likelihood_gradient_of_demand_terms_equals_finite_differences(tmp_path):
    """The fused twin's gradient reaches the demand coefficients (through each step's base
    multipliers): the model's gradient equals central differences of its log density."""
    from journeysim.inference.likelihood import build_model

    sc = shop(tmp_path)
    data = read_observed(tmp_path / "observed.csv", sc)
    model = build_model(sc, data, fused=True)
    names = [n for n in sc.structure.demand.names]
    assert all(n in model.named_vars for n in names)
    point = model.initial_point()
    logp = model.compile_logp()
    dlogp = model.compile_dlogp()
    g = dict(zip([v.name for v in model.value_vars], np.split(dlogp(point), np.cumsum(
        [np.size(point[v.name]) for v in model.value_vars])[:-1])))
    for n in names:
        key = next(k for k in point if k == n or k.startswith(n + "_"))
        h = 1e-5
        up, dn = dict(point), dict(point)
        up[key] = point[key] + h
        dn[key] = point[key] - h
        fd = (logp(up) - logp(dn)) / (2 * h)
        assert g[key].item() == pytest.approx(fd, rel=1e-4, abs=1e-3), n
        assert abs(fd) > 1e-3, n  # the data inform every term


def test_latent_demand_is_a_centred_piecewise_linear_random_walk(tmp_path):
    sc = shop(tmp_path, demand={"latent": {"sd": 0.05, "every": 4}})
    d = sc.structure.demand
    assert d.latent_knots == 10 and d.names[-1] == "demand.latent.10"  # 38 weeks / 4, rounded up
    X = d.design(np.arange(39))
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-12)  # centred over the horizon
    z = np.random.default_rng(0).standard_normal(10)
    level = X @ z
    # between knots the level moves by sd * sqrt(every) * z_k, linearly
    np.testing.assert_allclose(level[4] - level[0], 0.05 * 2.0 * z[0], rtol=1e-12)
    np.testing.assert_allclose(level[2] - level[0], 0.5 * (level[4] - level[0]), rtol=1e-12)
    # after the horizon, without future steps, the level stays where the last knot left it
    ahead = d.design(np.array([40, 60, 100])) @ z
    np.testing.assert_allclose(ahead, ahead[0])
    # with future steps it goes on moving
    f = d.with_future(5)
    assert f.size == 15 and f.names == d.names
    zf = np.concatenate([z, np.ones(5)])
    np.testing.assert_allclose(f.design([44])[0] @ zf - f.design([40])[0] @ zf, 0.05 * 2.0, rtol=1e-12)


def test_plans_set_controls_and_forecasts_say_so(tmp_path):
    """A plan that runs a promotion every week (control_promo) forecasts more purchases than the
    same spend with the promotion held at its recent level, by the promotion's multiplier; the
    media counterfactual meets the same controls; an unknown control is refused by name."""
    from journeysim.inference.posterior import known_fit
    from journeysim.planning.forecasting import forecast
    from journeysim.planning.history import prepare

    sc = shop(tmp_path)
    data = read_observed(tmp_path / "observed.csv", sc)
    hist = prepare(sc, known_fit(sc, draws=4), data)
    base = pd.DataFrame({"week": np.arange(1, 14)})
    for c in sc.channels[:3]:
        base[f"spend_{c}"] = float(data.plan.spend[-13:, sc.channels.index(c)].mean())
    base.to_csv(tmp_path / "same.csv", index=False)
    promo = base.assign(control_promo=1.0)
    promo.to_csv(tmp_path / "promo.csv", index=False)
    fc = forecast(hist, [str(tmp_path / "same.csv"), str(tmp_path / "promo.csv")], horizon=13, tail=0)
    same, with_promo = (float(fc.purchases.sel(plan=p).mean()) for p in ("same", "promo"))
    assert with_promo > 1.02 * same
    assert fc.attrs["controls_from_plans"] == "promo: promo"
    np.testing.assert_allclose(fc.media_new_customers.sel(plan="same"), fc.media_new_customers.sel(plan="baseline"),
                               rtol=1e-9)
    promo.rename(columns={"control_promo": "control_promotion"}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match="unknown demand control 'promotion'.*did you mean 'promo'"):
        forecast(hist, [str(tmp_path / "bad.csv")], horizon=13, tail=0)


def test_holidays_follow_the_calendar_in_the_history_and_beyond(tmp_path):
    """A holiday is 1 in the weeks whose middle falls in one of its ISO weeks of the year, every
    year, also after the history (no column needed); its prior follows its sign."""
    demand = {**DEMAND, "holidays": {"black_friday": {"weeks": [47], "sign": "positive", "value": 0.3},
                                     "christmas": {"weeks": [50, 51], "value": 0.2}}}
    sc = shop(tmp_path, demand=demand)
    d = sc.structure.demand
    assert d.names[-2:] == ("demand.holiday.black_friday", "demand.holiday.christmas")
    np.testing.assert_array_equal(sc.params.demand[-2:], [0.3, 0.2])
    weeks = np.arange(160)
    X = d.design(weeks)
    iso = np.array([(d.start + dt.timedelta(days=7 * int(w) + 3)).isocalendar()[1] for w in weeks])
    np.testing.assert_array_equal(X[:, -2], iso == 47)
    np.testing.assert_array_equal(X[:, -1], np.isin(iso, [50, 51]))
    assert X[:, -2].sum() == 3 and X[:, -1].sum() == 6  # three years of weeks from January 2025
    from journeysim.inference.priors import demand_priors

    pri = demand_priors(sc)
    assert pri["demand.holiday.black_friday"] == "halfnormal(0.3)"
    assert pri["demand.holiday.christmas"] == "normal(0.2, 0.3)"
    assert "in the same weeks of the year" in d.forecast_note()


def test_a_week_of_the_year_out_of_range_is_named(tmp_path):
    with pytest.raises(InputError, match="demand.holidays.peak.weeks.*54 is not a week of the year"):
        shop(tmp_path, demand={**DEMAND, "holidays": {"peak": {"weeks": [54]}}})


def test_iso_weeks_of_the_calendar_are_those_of_the_standard_library():
    """Every day from 1999 to 2031 (years with week 53, years starting on each weekday)."""
    from journeysim.model.demand import _iso_week

    days = np.arange(dt.date(1999, 12, 20).toordinal(), dt.date(2031, 1, 10).toordinal())
    want = [dt.date.fromordinal(int(o)).isocalendar()[1] for o in days]
    np.testing.assert_array_equal(_iso_week(days), want)


def test_weekly_shocks_move_one_week_each_and_vanish_beyond_the_history(tmp_path):
    """``demand.shocks``: one standard-normal parameter per week of the history (before the latent
    steps, whose future continuation follows them), each moving only its own week's log-level by
    ``sd * z``; zero beyond the history, the latent steps' design unchanged."""
    sc = shop(tmp_path, demand={"shocks": {"sd": 0.05}, "latent": {"sd": 0.03, "every": 4}})
    d = sc.structure.demand
    H = sc.weeks
    assert d.shock_weeks == H
    assert d.names[:H] == tuple(f"demand.shock.{k}" for k in range(1, H + 1))
    assert d.names[H] == "demand.latent.1" and len(sc.params.demand) == len(d.names)
    X = d.design(np.arange(H + 3))
    np.testing.assert_array_equal(X[:H, :H], 0.05 * np.eye(H))
    np.testing.assert_array_equal(X[H:, :H], 0.0)
    plain = shop(tmp_path, demand={"latent": {"sd": 0.03, "every": 4}}).structure.demand
    np.testing.assert_array_equal(X[:, H:], plain.design(np.arange(H + 3)))
    from journeysim.inference.priors import demand_priors

    priors = demand_priors(sc)
    assert priors["demand.shock.1"] == "normal(0, 1)" and priors[f"demand.shock.{H}"] == "normal(0, 1)"
    assert "weekly demand shocks at their mean" in d.forecast_note()
