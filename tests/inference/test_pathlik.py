"""The path-table likelihood: counts, predicted follow probabilities, and the posterior it narrows.

The posterior comparison is exact rather than sampled (NUTS over the twin's ``scan`` needs a C
compilation of about 40 s per model on this machine): with one uncertain parameter, the email
channel's effect on ``interested->customer`` of ``scenarios/funnel3.yaml``, the posterior density is
evaluated on a grid of its logarithm, with and without the path table, the model error of the path
likelihood integrated out by quadrature. A separate test checks that this quadrature scores the
same numbers as the PyMC model :func:`journeysim.inference.likelihood.build_model` builds with ``paths=``, and
a slow test runs :func:`journeysim.inference.sampling.calibrate` itself.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import SCENARIOS
from scipy import stats
from scipy.special import expit, logit

from journeysim.cli.main import main
from journeysim.engine.simulation import Simulation
from journeysim.errors import InputError
from journeysim.inference.likelihood import build_model
from journeysim.inference.pathlik import (
    NOISE_PRIOR_SIGMA,
    path_counts,
    predict_follow,
    select_channels,
)
from journeysim.inference.posterior import Fit
from journeysim.inference.priors import build_space
from journeysim.inference.sampling import calibrate
from journeysim.io.observed import Observation, ObservedData
from journeysim.model.observe import expected_kpi, sample_kpi, weekly_arrays
from journeysim.model.scenario import load_scenario
from journeysim.paths.from_events import paths_from_events
from journeysim.twin.run import run_twin

EMAIL = "effect.email.interested->customer"
RATE = "rate.interested->customer"
TRUE_EMAIL = 0.02  # scenarios/funnel3.yaml


@pytest.fixture(scope="module")
def setting():
    """funnel3 over 8 weeks: Poisson weekly KPIs from the twin, and the paths of 20,000 agents."""
    sc = load_scenario(SCENARIOS / "funnel3.yaml", agents=20_000, weeks=8)
    st = sc.structure
    ds = run_twin(sc)
    arrays = weekly_arrays(ds)
    rng = np.random.default_rng(5)
    obs = []
    for o in sc.spec.observations:
        mask = np.array([s in o.stages for s in st.stages], float)
        mu = expected_kpi(np, arrays, o.measures, mask, st.population, o.scale)
        obs.append(Observation(o.column, o.measures, tuple(o.stages), "poisson", sample_kpi(rng, mu, "poisson"),
                               None, o.scale))
    data = ObservedData(pd.DatetimeIndex(ds.time.values), sc.plan, None, tuple(obs), "synthetic")
    sim = Simulation(sc, log_agents=-1, seed=11)
    sim.run()
    paths = paths_from_events(sim.events(), per_purchase=True)
    return sc, data, paths


def test_counts_of_a_small_table():
    sc = load_scenario(SCENARIOS / "funnel3.yaml", agents=100, weeks=2)
    table = pd.DataFrame({"path": ["display > email", "email > email", "display", "(direct)"],
                          "total_conversions": [3, 1, 0, 5], "total_null": [7, 1, 10, 0]})
    c = path_counts(table, sc)
    assert c.sources == ("display", "email", "word_of_mouth")
    np.testing.assert_array_equal(c.touches, [20.0, 14.0, 0.0])  # 10 + 10; 10 + 2 * 2
    np.testing.assert_array_equal(c.followed, [0.0, 4.0, 0.0])
    assert (c.journeys, c.conversions, c.direct) == (27.0, 9.0, 5.0)


def test_unknown_touchpoints_and_scaled_counts_are_named():
    sc = load_scenario(SCENARIOS / "funnel3.yaml", agents=100, weeks=2)
    table = pd.DataFrame({"path": ["dispaly > email", "radio"], "total_conversions": [1, 1], "total_null": [1, 1]})
    with pytest.raises(InputError, match="touchpoint 'dispaly'.*did you mean 'display'"):
        path_counts(table, sc)
    c = path_counts(table, sc, unknown="ignore")
    assert c.ignored == {"dispaly": 2.0, "radio": 2.0}
    np.testing.assert_array_equal(c.touches, [0.0, 2.0, 0.0])
    assert c.followed[1] == 1.0
    scaled = pd.DataFrame({"path": ["email"], "total_conversions": [2.5], "total_null": [1]})
    with pytest.raises(InputError, match="row 0, column total_conversions.*not a whole number"):
        path_counts(scaled, sc)
    with pytest.raises(InputError, match="unknown channel 'emal'"):
        path_counts(pd.DataFrame({"path": ["email"], "total_conversions": [1], "total_null": [1]}), sc,
                    channels=["emal"])


def test_predicted_follow_rates_match_simulated_paths(setting):
    # the follow probability at the true parameters against what the agents did: within 10%
    # (relative) for both channels; binomial standard errors here are about 1% and 5%.
    sc, data, paths = setting
    table = path_counts(paths, sc).table()
    pred = predict_follow(sc, data)
    for channel in ("display", "email"):
        assert table.loc[channel, "observed_rate"] == pytest.approx(pred[channel], rel=0.1), channel


def test_only_channels_with_an_own_purchase_effect_are_used(setting):
    sc, data, paths = setting
    from journeysim.inference.inputs import observed_inputs

    touches, em, cm, _ = observed_inputs(sc, data)
    chosen = select_channels(sc, path_counts(paths, sc), touches, em, cm)
    assert chosen["used"].to_dict() == {"display": False, "email": True, "word_of_mouth": False}
    assert chosen.loc["email", "effect_share"] > 0.25 and chosen.loc["display", "effect_share"] == 0.0
    forced = select_channels(sc, path_counts(paths, sc, channels=["display"]), touches, em, cm)
    assert forced["used"].to_dict() == {"display": True, "email": False, "word_of_mouth": False}
    with pytest.raises(InputError, match="'word_of_mouth' cannot inform the fit"):
        select_channels(sc, path_counts(paths, sc, channels=["word_of_mouth"]), touches, em, cm)


def _noise_quadrature(n: int = 41):
    """Nodes and weights of the marginal model error eps = sigma z, sigma ~ HalfNormal(0.1), z ~ N(0, 1)."""
    eps = np.linspace(-5, 5, n) * NOISE_PRIOR_SIGMA
    sig = np.linspace(1e-4, 6, 400) * NOISE_PRIOR_SIGMA
    dens = np.trapezoid(stats.halfnorm.pdf(sig, scale=NOISE_PRIOR_SIGMA)[None, :]
                        * stats.norm.pdf(eps[:, None], scale=sig[None, :]), sig, axis=1)
    w = dens * (eps[1] - eps[0])
    return eps, w / w.sum()


def _path_loglik(pi: float, n: float, c: float, eps: np.ndarray, w: np.ndarray) -> float:
    p = expit(logit(pi) + eps)
    ll = stats.binom.logpmf(int(c), int(n), p)
    top = ll.max()
    return float(top + np.log(np.sum(w * np.exp(ll - top))))


PRIORS = {EMAIL: "lognormal(0.03, 1.0)", RATE: "lognormal(1, 0.5)"}


@pytest.fixture(scope="module")
def weekly_logp(setting):
    """Log posterior density (transformed space) of the model without paths, compiled once."""
    sc, data, _ = setting
    model = build_model(sc, data, build_space(sc, PRIORS), coords="log", typical=False)  # (log coordinates: _point)
    return model.compile_logp(mode="FAST_COMPILE")


def _point(email: float, rate: float) -> dict:
    return {f"{EMAIL}_log__": np.log(email), f"{RATE}_log__": np.log(rate)}


def _params(sc, email: float, rate: float):
    k = sc.channels.index("email")
    e = sc.structure.edges.index("interested->customer")
    beta = np.array(sc.params.beta)
    beta[k, e] = email
    base = np.array(sc.params.base)
    base[:, e] *= rate
    return sc.params.replace(beta=beta, base=base)


def test_path_data_narrow_the_posterior_of_the_email_effect(setting, weekly_logp):
    # Two uncertain parameters: the email effect and the base rate of interested->customer, which
    # the weekly new-customer counts confound (either one raises purchases). The follow rate of
    # email touches separates them. Grid: 21 x 21 in log space (uniform spacing, so the
    # transformed-space density is the right one to sum).
    sc, data, paths = setting
    counts = path_counts(paths, sc)
    k = counts.sources.index("email")
    emails = np.geomspace(0.004, 0.1, 21)
    rates = np.geomspace(0.4, 2.5, 21)
    eps, w = _noise_quadrature()
    weekly = np.empty((emails.size, rates.size))
    path_ll = np.empty_like(weekly)
    for i, em in enumerate(emails):
        for j, r in enumerate(rates):
            weekly[i, j] = weekly_logp(_point(em, r))
            pi = float(predict_follow(sc, data, _params(sc, em, r)).iloc[k])
            path_ll[i, j] = _path_loglik(pi, counts.touches[k], counts.followed[k], eps, w)
    u = np.log(emails)

    def marginal(logp):
        p = np.exp(logp - logp.max()).sum(axis=1)
        p /= p.sum()
        mean = np.sum(u * p)
        sd = np.sqrt(np.sum((u - mean) ** 2 * p))
        cdf = np.cumsum(p)
        return sd, u[np.searchsorted(cdf, 0.01)], u[min(np.searchsorted(cdf, 0.99), u.size - 1)]

    sd0, lo0, hi0 = marginal(weekly)
    sd1, lo1, hi1 = marginal(weekly + path_ll)
    # measured: sd of log(effect) 0.33 without the paths, 0.064 with them; 98% intervals
    # 0.0105..0.038 and 0.0145..0.0235 (truth 0.02)
    assert sd1 < 0.7 * sd0
    for lo, hi in ((lo0, hi0), (lo1, hi1)):
        assert lo <= np.log(TRUE_EMAIL) <= hi


def test_model_scores_what_the_quadrature_scores(setting, weekly_logp):
    # The PyMC model with paths= adds exactly: the binomial at the follow probability of
    # pathlik.follow_probability (here shifted by sigma * z), and the priors of sigma and z.
    sc, data, paths = setting
    counts = path_counts(paths, sc)
    k = counts.sources.index("email")
    model = build_model(sc, data, build_space(sc, PRIORS), paths=paths, coords="log", typical=False)
    assert model._journeysim_paths["used"].to_dict()["email"]
    with_paths = model.compile_logp(mode="FAST_COMPILE")
    for email, rate, sigma, z in ((0.02, 1.0, 0.1, 0.5), (0.05, 0.7, 0.05, -1.0)):
        point = {**_point(email, rate), "noise_paths_log__": np.log(sigma), "paths_offset": np.array([z])}
        pi = float(predict_follow(sc, data, _params(sc, email, rate)).iloc[k])
        expected = (weekly_logp(_point(email, rate))
                    + stats.binom.logpmf(int(counts.followed[k]), int(counts.touches[k]), expit(logit(pi) + sigma * z))
                    + stats.halfnorm.logpdf(sigma, scale=NOISE_PRIOR_SIGMA) + np.log(sigma)  # log transform
                    + stats.norm.logpdf(z))
        assert with_paths(point) == pytest.approx(expected, rel=1e-8, abs=1e-6)


def test_paths_need_nuts_and_a_readable_file(setting, tmp_path, capsys):
    sc, data, paths = setting
    with pytest.raises(InputError, match="method='nuts'"):
        calibrate(sc, data, method="abc", paths=paths)
    code = main(["fit", str(SCENARIOS / "funnel3.yaml"), "--paths", str(tmp_path / "nope.csv"),
                 "--out", str(tmp_path / "fit")])
    assert code == 2
    assert "nope.csv: file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_calibrate_with_paths_narrows_the_effect(setting):
    # NUTS (PyMC's sampler, 2 chains x 300 draws) with and without the paths; several minutes.
    sc, data, paths = setting
    priors = PRIORS
    sds = []
    for p in (None, paths):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = calibrate(sc, data, draws=300, tune=300, chains=2, sampler="pymc", seed=1, priors=priors, paths=p)
        post = np.log(fit.posterior[EMAIL].values.ravel())
        sds.append(post.std())
        assert np.quantile(post, 0.01) < np.log(TRUE_EMAIL) < np.quantile(post, 0.99)
    assert sds[1] < 0.8 * sds[0]


def test_cli_fit_with_paths_writes_the_path_check(setting, tmp_path, monkeypatch, capsys):
    # Sampling is replaced by prior draws (what is tested is the command's handling of --paths).
    import arviz as az

    import journeysim.inference.sampling as cal
    from journeysim.io.pathtable import write_path_table

    sc, data, paths = setting
    seen = {}

    def fake_calibrate(scenario, data, **kw):
        seen.update(kw)
        space = build_space(scenario)
        draws = space.sample_prior(20, np.random.default_rng(0))
        post = {n: draws[None, :, j] for j, n in enumerate(space.names)}
        for obs in data.observations:
            post[f"noise_{obs.column}"] = np.full((1, 20), 0.05)
        idata = az.from_dict(posterior=post, sample_stats={"diverging": np.zeros((1, 20), bool)})
        diag = pd.DataFrame({k: [0.0] for k in ("mean", "sd", "hdi_5%", "hdi_95%", "r_hat", "ess_bulk")},
                            index=[space.names[0]])
        return Fit(idata, space, diag, True, {"seed": 0, "seconds": 0.0, "max_rhat": 1.0, "min_ess_bulk": 400,
                                                  "divergences": 0})

    monkeypatch.setattr(cal, "calibrate", fake_calibrate)
    csv = write_path_table(paths, tmp_path / "paths.csv")
    out = tmp_path / "fit"
    assert main(["fit", str(SCENARIOS / "funnel3.yaml"), "--paths", str(csv), "--out", str(out)]) == 0
    assert "touches followed by a purchase" in capsys.readouterr().out
    assert seen["paths"].sources == ("display", "email", "word_of_mouth")
    check = pd.read_csv(out / "paths_check.csv", index_col="channel")
    assert list(check.index) == ["display", "email"]
    assert (check["predicted_5%"] <= check["predicted_95%"]).all()
