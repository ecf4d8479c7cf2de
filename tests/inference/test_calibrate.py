"""Tests of calibration (journeysim.inference.sampling, priors, ``journeysim fit``).

The fitted scenario is a small three-stage funnel built from a dict: one persona, one paid channel
(display) whose weekly spend varies, weekly steps, 16 weeks, three uncertain parameters. Its
observed data are simulated from the twin at known parameter values (the truth) with
negative-binomial noise (coefficient of variation 5%) from a fixed seed, so the likelihood is
exactly the model's and the fit is deterministic. One NUTS fit (2 chains x 500 draws through the
``fit`` command) is shared by the tests of the command's outputs, parameter recovery, and the
``load_fit`` round trip; compiling the model dominates its time (about 40-80 s on two shared cores).

Recovery tolerance: the truth must lie inside the central 90% posterior interval of every
parameter, and the data must shrink each posterior below half its prior's spread. Each interval
misses 10% of datasets when the posterior is calibrated (``experiments/sbc.py`` checks that), so
with three parameters a random seed fails about a quarter of the time: the noise seed is fixed
(``DATA_SEED = 43``). Scanned over noise seeds 40-51 with this fit (2 x 500 draws), 7 of the 36
intervals missed (3.6 expected; binomial tail probability 0.11); at seed 43 the truths sit at
normalised ranks 0.71, 0.32 and 0.77.
"""

from __future__ import annotations

import json
import os

import arviz as az
import numpy as np
import pandas as pd
import pytest
import yaml

import journeysim.inference.sampling as cal
from journeysim.cli.main import main
from journeysim.errors import ConvergenceError, InputError, JourneysimWarning
from journeysim.inference.checks import posterior_predictive
from journeysim.inference.likelihood import build_model
from journeysim.inference.posterior import load_fit, require_converged
from journeysim.inference.priors import build_space, parse_prior
from journeysim.inference.sampling import calibrate
from journeysim.io.observed import read_observed
from journeysim.model.observe import expected_kpi, sample_kpi, weekly_arrays
from journeysim.model.scenario import load_scenario
from journeysim.twin.run import Twin

PNG = b"\x89PNG\r\n\x1a\n"
WEEKS = 16
SPEND = [2000, 6000, 2000, 2000, 8000, 8000, 2000, 0, 0, 4000, 4000, 2000, 6000, 2000, 2000, 1000]
TINY = {
    "name": "tiny-funnel",
    "market": {"population": 100_000, "agents": 5_000, "start": "2025-01-06", "weeks": WEEKS, "seed": 5,
               "step": "week"},
    "journey": {"template": "funnel3", "initial": {"unaware": 0.85, "interested": 0.10, "customer": 0.05}},
    "personas": {"everyone": {"share": 1.0, "value": 100.0}},
    "channels": {"display": {"cpm": 4.0, "effects": {"unaware->interested": 0.004}, "carryover": 0.6,
                             "saturation": 3.0}},
    "plan": {"spend": {"display": SPEND}},
    "observations": [
        {"column": "enquiries", "measures": "entries", "stages": ["interested"], "likelihood": "negbin"},
        {"column": "new_customers", "measures": "new_customers", "likelihood": "negbin"},
    ],
    "priors": {
        "effect.display.unaware->interested": "lognormal(0.003, 0.7)",
        "rate.interested->customer": "lognormal(1, 0.5)",
        "rate.customer->interested": "lognormal(1, 0.5)",
    },
}
#: The values that generate the data (the scenario's own effect is 0.004; rates are multipliers).
TRUTH = {"effect.display.unaware->interested": 0.004, "rate.interested->customer": 1.3,
         "rate.customer->interested": 0.8}
NOISE = 0.05
#: Seed of the observation noise (see the module docstring).
DATA_SEED = 43


def simulate_observed(sc, truth: dict, seed: int) -> pd.DataFrame:
    """The observed CSV of the tiny funnel: twin expectation at ``truth`` plus negative-binomial noise."""
    space = build_space(sc)
    params = space.to_params(np, [truth[n] for n in space.names], sc.params)
    arrays = weekly_arrays(Twin(sc, params=params).run())
    st = sc.structure
    rng = np.random.default_rng(seed)
    cols = {"date": pd.date_range(sc.start, periods=WEEKS, freq="7D").strftime("%Y-%m-%d"), "spend_display": SPEND}
    for obs in sc.spec.observations:
        mask = np.array([s in obs.stages for s in st.stages], float)
        mu = expected_kpi(np, arrays, obs.measures, mask, st.population, obs.scale)
        cols[obs.column] = sample_kpi(rng, mu, "negbin", noise=NOISE)
    return pd.DataFrame(cols)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny scenario written as a YAML file, with its observed CSV beside it."""
    d = tmp_path_factory.mktemp("tiny")
    path = d / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY, sort_keys=False))
    sc = load_scenario(path)
    simulate_observed(sc, TRUTH, seed=DATA_SEED).to_csv(d / "observed.csv", index=False)
    return sc, path, d / "observed.csv"


@pytest.fixture(scope="module")
def fitted(tiny, tmp_path_factory):
    """One run of ``journeysim fit`` on the tiny scenario (the expensive part of this file)."""
    sc, path, csv = tiny
    out = tmp_path_factory.mktemp("fit") / "out"
    code = main(["fit", str(path), "--data", str(csv), "--out", str(out), "--draws", "500", "--tune", "500",
                 "--chains", "2", "--seed", "1", "--quiet"])
    return code, out


# ---------------------------------------------------------------------------------------------
# the fit command, recovery, saving and loading


def test_fit_command_writes_its_outputs(fitted):
    code, out = fitted
    assert code == 0
    assert {"posterior.nc", "diagnostics.csv", "fit.json", "ppc.png", "summary.json"} <= set(os.listdir(out))
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    idata = az.from_netcdf(str(out / "posterior.nc"))
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 500
    for name in list(TRUTH) + ["noise_enquiries", "noise_new_customers"]:
        assert name in idata.posterior
    assert int(idata.sample_stats["diverging"].sum()) == 0
    diag = pd.read_csv(out / "diagnostics.csv", index_col=0)
    assert set(TRUTH) <= set(diag.index) and {"r_hat", "ess_bulk", "hdi_5%", "hdi_95%"} <= set(diag.columns)
    png = (out / "ppc.png").read_bytes()
    assert png.startswith(PNG) and len(png) > 5000
    s = json.loads((out / "summary.json").read_text())
    assert s["converged"] is True and s["max_rhat"] <= 1.01 and s["divergences"] == 0
    assert s["weeks"] == WEEKS and s["chains"] == 2 and s["draws"] == 500 and s["method"] == "nuts"
    assert set(TRUTH) <= set(s["parameters"])
    # the posterior predictive covers the data: at least 75% of weeks inside the 90% band
    assert all(v >= 0.75 for v in s["ppc_coverage_90"].values()), s["ppc_coverage_90"]
    # model criticism: a fit of the model's own world explains most of each KPI's variation
    assert set(s["criticism"]) == {"enquiries", "new_customers"}
    assert all(c["r2"] > 0.5 and c["noise_cv"] < 0.10 for c in s["criticism"].values()), s["criticism"]
    assert isinstance(s["warnings"], list) and set(s["identification"]) <= {"tv", "social", "search", "display"}


def test_fit_recovers_the_truth(fitted):
    _, out = fitted
    post = az.from_netcdf(str(out / "posterior.nc")).posterior
    priors = TINY["priors"]
    ranks = {}
    for name, true in TRUTH.items():
        x = post[name].values.reshape(-1)
        ranks[name] = float(np.mean(x < true))
    for name, true in TRUTH.items():
        x = post[name].values.reshape(-1)
        lo, hi = np.quantile(x, [0.05, 0.95])
        assert lo <= true <= hi, f"{name}: truth {true} outside [{lo:.4g}, {hi:.4g}]; normalised ranks {ranks}"
        prior_sd = parse_prior(priors[name]).scipy().std()
        assert x.std() < 0.5 * prior_sd, f"{name}: the data did not inform it (sd {x.std():.3g}, prior {prior_sd:.3g})"


def test_load_fit_round_trip(fitted, tiny, tmp_path):
    sc, _, csv = tiny
    _, out = fitted
    fit = load_fit(out, sc)
    assert fit.converged and fit.space.names == tuple(TINY["priors"])
    assert fit.info["seed"] == 1 and fit.info["scenario"] == "tiny-funnel"
    require_converged(fit, allow=False)  # a converged fit is accepted
    # save again and read back: the same draws and diagnostics
    fit.save(tmp_path / "again")
    back = load_fit(tmp_path / "again", sc)
    for name in TRUTH:
        np.testing.assert_array_equal(back.posterior[name].values, fit.posterior[name].values)
    pd.testing.assert_frame_equal(back.diagnostics, fit.diagnostics, check_exact=False, rtol=1e-12)
    assert back.info["max_rhat"] == fit.info["max_rhat"]
    # the loaded fit forecasts: posterior draws as batched parameters through the twin
    params, values = fit.params(sc, max_draws=50)
    assert values.shape == (50, 3) and np.asarray(params.wom_rate).shape == (50,)
    ppc = posterior_predictive(sc, fit, read_observed(csv, sc), max_draws=50)
    assert ppc["enquiries_expected"].shape == (50, WEEKS)


def test_load_fit_refuses_the_wrong_directory_or_scenario(fitted, tmp_path):
    _, out = fitted
    with pytest.raises(InputError, match="no fit.json: is this the --out directory"):
        load_fit(tmp_path, load_scenario(TINY))
    # the saved priors name a channel the other scenario does not have
    other = dict(TINY, channels={"banner": TINY["channels"]["display"]}, plan={"spend": {"banner": SPEND}},
                 priors={"effect.banner.unaware->interested": "lognormal(0.003, 0.7)"})
    with pytest.raises(InputError, match="priors.effect.display.unaware->interested: unknown channel 'display'"):
        load_fit(out, load_scenario(other))


# ---------------------------------------------------------------------------------------------
# an unconverged fit


def badly_mixed(names, chains=2, draws=100, seed=0):
    """A posterior whose chains sit in different places (what a stuck sampler leaves)."""
    rng = np.random.default_rng(seed)
    post = {n: np.abs(1.0 + rng.normal(0, 0.05, (chains, draws)) + np.arange(chains)[:, None] * 0.5) * 0.01
            for n in names}
    return az.from_dict(posterior=post, sample_stats={"diverging": np.zeros((chains, draws), bool)})


@pytest.fixture
def stuck_sampler(monkeypatch):
    names = list(TINY["priors"]) + ["noise_enquiries", "noise_new_customers"]
    monkeypatch.setattr(cal, "_sample", lambda *a, **k: (badly_mixed(names), None))


def sticky(names, chains=2, draws=1000, rho=0.85, seed=1):
    """Chains that agree but move slowly (AR(1) draws): r-hat near 1, few effective draws."""
    rng = np.random.default_rng(seed)
    post = {}
    for n in names:
        e = rng.normal(0, 1, (chains, draws))
        x = np.zeros_like(e)
        for t in range(1, draws):
            x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho ** 2) * e[:, t]
        post[n] = 0.01 * np.exp(0.05 * x)
    return az.from_dict(posterior=post, sample_stats={"diverging": np.zeros((chains, draws), bool)})


def test_a_second_run_only_when_it_would_help():
    """Chains that agree (r-hat <= 1.03): as many more draws as should reach 100 effective per chain,
    with a 25% margin, at least 1.5x and at most 4x, in hundreds; a few divergences (at most 1% of the
    draws): the target acceptance halfway to 1."""
    ok = {"chains": 2, "max_rhat": 1.005, "min_ess_bulk": 176.0, "divergences": 0, "converged": False}
    assert cal.extension_settings(ok, 1000, 0.9) == (1500, 0.9)  # 1.25 * 200 / 176 = 1.42 -> at least 1.5
    assert cal.extension_settings({**ok, "min_ess_bulk": 50.0}, 1000, 0.9) == (4000, 0.9)  # 5x -> at most 4x
    assert cal.extension_settings({**ok, "min_ess_bulk": 90.0}, 300, 0.9) == (900, 0.9)  # 2.78x: 834 -> 900
    assert cal.extension_settings({**ok, "divergences": 1}, 1000, 0.95) == (1500, 0.975)
    assert cal.extension_settings({**ok, "min_ess_bulk": 400.0, "divergences": 2}, 1000, 0.9) == (1000, 0.95)
    assert cal.extension_settings({**ok, "max_rhat": 1.2}, 1000, 0.9) is None  # chains disagree
    assert cal.extension_settings({**ok, "divergences": 30}, 1000, 0.9) is None  # 1.5% of the draws
    assert cal.extension_settings({**ok, "min_ess_bulk": 250.0, "converged": True}, 1000, 0.9) is None


def test_a_fit_short_of_effective_draws_is_extended_unless_draws_were_given(tiny, monkeypatch):
    sc, _, csv = tiny
    data = read_observed(csv, sc)
    names = list(TINY["priors"]) + ["noise_enquiries", "noise_new_customers"]
    runs = []
    monkeypatch.setattr(cal, "_sample", lambda model, sampler, draws, *a: (runs.append(draws) or sticky(names), "c"))
    monkeypatch.setattr(cal, "_nutpie", lambda compiled, draws, *a: (runs.append(draws) or sticky(names, rho=0.0)))
    fit = calibrate(sc, data, tune=10, chains=2, defaults={"draws": 1000})
    assert runs[0] == 1000 and runs[1] > 1000 and fit.converged
    assert fit.info["extended_from"]["draws"] == 1000 and fit.info["min_ess_bulk"] >= 200
    runs.clear()
    with pytest.warns(JourneysimWarning, match="did NOT converge"):
        fit = calibrate(sc, data, draws=1000, tune=10, chains=2)  # draws asked for: kept
    assert runs == [1000] and "extended_from" not in fit.info


def test_unconverged_fit_warns_and_is_refused(tiny, stuck_sampler):
    sc, _, csv = tiny
    data = read_observed(csv, sc)
    with pytest.warns(JourneysimWarning, match="did NOT converge.*r-hat.*What to try: the chains settled on different "
                                               "values of 'effect.display.unaware->interested'"):  # (noise last)
        fit = calibrate(sc, data, draws=100, tune=10, chains=2)
    assert not fit.converged and fit.info["max_rhat"] > 1.1
    assert any(a.startswith("run longer: --draws 800 --tune 800 --chains 4") for a in fit.info["advice"])
    with pytest.raises(ConvergenceError, match="did not converge.*--allow-unconverged"):
        require_converged(fit, allow=False)
    require_converged(fit, allow=True)  # told to go on anyway


def test_convergence_advice_says_what_went_wrong():
    from journeysim.inference.posterior import convergence_advice

    rng = np.random.default_rng(1)
    mixed = az.from_dict(posterior={"a": rng.normal(0, 1, (2, 300)), "b": rng.normal(5, 1, (2, 300))})
    summ = az.summary(mixed, kind="diagnostics")
    # well mixed but short: more draws (to reach 100 effective per chain, at least twice as many)
    stats = {"converged": False, "max_rhat": 1.004, "min_ess_bulk": 150.0, "divergences": 3, "chains": 2, "draws": 300}
    advice = convergence_advice(mixed, summ, stats)
    assert advice == ["run longer: --draws 600 --tune 600 --chains 4",
                      "raise the target acceptance (--target-accept 0.95, then 0.99)"]
    assert convergence_advice(mixed, summ, {**stats, "converged": True}) == []
    # two chains that found different values of b: named, with what decides between them
    split = az.from_dict(posterior={"a": rng.normal(0, 1, (2, 300)),
                                    "b": rng.normal(0, 1, (2, 300)) + np.array([[0.0], [6.0]])})
    advice = convergence_advice(split, az.summary(split, kind="diagnostics"),
                                {**stats, "max_rhat": 2.5, "min_ess_bulk": 4.0, "divergences": 0})
    assert advice[0].startswith("the chains settled on different values of 'b':") and "'a'" not in advice[0]
    assert advice[1] == "run longer: --draws 2400 --tune 2400 --chains 4"


def test_fit_command_flags_an_unconverged_fit(tiny, stuck_sampler, tmp_path, capsys):
    _, path, csv = tiny
    args = ["fit", str(path), "--data", str(csv), "--out", str(tmp_path / "o"), "--quiet"]
    assert main(args) == 0  # written, with a warning
    assert "WARNING: the fit did NOT converge" in capsys.readouterr().err
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["converged"] is False
    assert main(args + ["--strict"]) == 3


# ---------------------------------------------------------------------------------------------
# sampler settings: a flag given, else the scenario's fit: section, else the command's default


def test_fit_settings_take_the_argument_then_the_scenario_then_the_default(tiny):
    sc = load_scenario({**TINY, "fit": {"tune": 300, "coords": "softplus", "chains": 3}})
    settings, source = cal.fit_settings(sc, {"chains": 5, "draws": None}, {"target_accept": 0.95})
    assert settings == {"draws": 1000, "tune": 300, "chains": 5, "target_accept": 0.95, "coords": "softplus",
                        "sampler": "nutpie"}
    assert source == {"draws": "default", "tune": "scenario", "chains": "given", "target_accept": "default",
                      "coords": "scenario", "sampler": "default"}
    assert cal.fit_settings(tiny[0])[0] == cal.FIT_DEFAULTS  # no fit: section
    with pytest.raises(TypeError, match="unknown fit settings: \\['tunes'\\]"):
        cal.fit_settings(sc, {"tunes": 3})


@pytest.mark.parametrize("flag, value, message", [("--draws", "0", "draws must be a whole number >= 1, got 0"),
                                                   ("--tune", "-5", "tune must be a whole number >= 0, got -5"),
                                                   ("--chains", "0", "chains must be a whole number >= 1, got 0")])
def test_bad_sampler_sizes_are_named(tiny, tmp_path, capsys, flag, value, message):
    _, path, csv = tiny
    assert main(["fit", str(path), "--data", str(csv), "--out", str(tmp_path / "o"), flag, value, "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["fit", "plan"])
def test_the_scenarios_fit_section_reaches_the_sampler(command, tiny, tmp_path, monkeypatch, capsys):
    _, _, csv = tiny
    path = tmp_path / "withfit.yaml"
    path.write_text(yaml.safe_dump({**TINY, "fit": {"tune": 123, "target_accept": 0.85, "coords": "softplus"}}))
    seen = {}
    names = list(TINY["priors"]) + ["noise_enquiries", "noise_new_customers"]

    def fake_sample(model, sampler, draws, tune, chains, seed, target_accept, progress):
        seen.update(sampler=sampler, draws=draws, tune=tune, chains=chains, target_accept=target_accept,
                    coords="softplus" if any(v.name.endswith("_softplus__") for v in model.value_vars) else "log")
        return badly_mixed(names), None

    monkeypatch.setattr(cal, "_sample", fake_sample)
    draws = "--draws" if command == "fit" else "--fit-draws"
    main([command, str(path), "--data", str(csv), "--out", str(tmp_path / "o"), draws, "200"])
    # flags win (draws), the scenario's section next (tune, target acceptance, coordinates), then the
    # command's own defaults (chains: 4 for fit, 2 for plan)
    assert seen == {"sampler": "nutpie", "draws": 200, "tune": 123, "chains": 4 if command == "fit" else 2,
                    "target_accept": 0.85, "coords": "softplus"}
    out = capsys.readouterr().out
    assert "from the scenario's fit: section: tune 123, target_accept 0.85, coords softplus" in out
    info = json.loads((tmp_path / "o" / ("fit.json" if command == "fit" else "fit/fit.json")).read_text())
    assert info["settings_from"]["tune"] == "scenario" and info["settings_from"]["draws"] == "given"
    assert info["tune"] == 123 and info["target_accept"] == 0.85


def test_the_fit_sections_choices_are_the_packages():
    from typing import get_args

    from journeysim.inference.priors import COORDS
    from journeysim.model.schema import FitSpec

    def choices(key):  # (Literal[...] | None)
        return {a for t in get_args(FitSpec.model_fields[key].annotation) for a in get_args(t)}

    assert choices("coords") == set(COORDS) and choices("sampler") == set(cal.SAMPLERS)
    assert set(cal.FIT_DEFAULTS) == set(FitSpec.model_fields)


# ---------------------------------------------------------------------------------------------
# reproducibility whatever the compile caches hold


FIT_IN_A_PROCESS = """
import sys
import numpy as np
from journeysim.inference.sampling import calibrate
from journeysim.io.observed import read_observed
from journeysim.model.scenario import load_scenario
sc = load_scenario(sys.argv[1])
fit = calibrate(sc, read_observed(sys.argv[2], sc), draws=200, tune=200, chains=2, seed=3)
post = fit.idata.posterior
np.savez(sys.argv[3], **{v: post[v].values for v in post.data_vars})
"""


@pytest.mark.slow
def test_cold_and_warm_compiles_give_the_same_draws(tiny, tmp_path):
    """The first fit on a machine (every compile cache empty: numba's for the twin kernels,
    PyTensor's for the model) and a later one (everything loaded from the caches) give the same draws
    bit for bit. (With fast-math reassociation they differed in the last bits, and a chain went
    elsewhere.) About 2-3 minutes: the kernels and the model are compiled from scratch once."""
    import subprocess
    import sys

    _, path, csv = tiny
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "PYTENSOR_FLAGS": f"base_compiledir={tmp_path / 'pytensor'}"}
    draws = []
    for run in ("cold", "warm"):
        out = tmp_path / f"{run}.npz"
        subprocess.run([sys.executable, "-c", FIT_IN_A_PROCESS, str(path), str(csv), str(out)], env=env,
                       check=True, capture_output=True, timeout=1200)
        draws.append(dict(np.load(out)))
    assert draws[0].keys() == draws[1].keys()
    for name in draws[0]:
        assert np.array_equal(draws[0][name], draws[1][name]), name


# ---------------------------------------------------------------------------------------------
# the likelihood-free route


def test_abc_route_returns_a_posterior(tiny):
    """SMC-ABC with the agent engine, at a size that only shows it works (500 agents, 20 particles,
    one chain: some 400 simulations, ~5 s); ``experiments/`` is the place for a real ABC fit.

    The agent runs go to the executor in batches (one per SMC stage); on a real Dask LocalCluster of
    two worker processes the posterior is bit for bit the one computed in this process, because each
    particle's run draws from a stream keyed by the particle, not by the order of evaluation."""
    sc, _, csv = tiny
    data = read_observed(csv, sc)
    with pytest.warns(JourneysimWarning, match="did NOT converge"):  # one chain: no r-hat, so flagged
        fit = calibrate(sc, data, method="abc", abc_draws=20, abc_agents=500, chains=1, seed=3, executor="inline")
    assert fit.info["method"] == "abc" and fit.info["sampler"] == "smc"
    assert fit.info["abc_executor"] == "InProcessExecutor()" and fit.info["abc_simulations"] >= 60
    x = fit.posterior["effect.display.unaware->interested"].values
    assert x.shape == (1, 20) and np.all(x > 0)
    # the data inform the display effect: the ABC posterior is far narrower than the prior, near the truth
    assert x.std() < 0.3 * parse_prior(TINY["priors"]["effect.display.unaware->interested"]).scipy().std()
    assert abs(np.median(x) / TRUTH["effect.display.unaware->interested"] - 1) < 0.25

    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        with pytest.warns(JourneysimWarning, match="did NOT converge"):
            on_dask = calibrate(sc, data, method="abc", abc_draws=20, abc_agents=500, chains=1, seed=3,
                                executor=client)
    assert on_dask.info["abc_executor"].startswith("DaskExecutor")
    assert on_dask.info["abc_simulations"] == fit.info["abc_simulations"]
    for name in fit.posterior.data_vars:
        np.testing.assert_array_equal(on_dask.posterior[name].values, fit.posterior[name].values)


# ---------------------------------------------------------------------------------------------
# priors


@pytest.mark.parametrize("text, fragment", [
    ("lognormal(0.1)", "lognormal takes 2 argument(s), got 1"),
    ("lognormal(-1, 1)", "needs median > 0 and sigma > 0"),
    ("gama(2, 1)", "unknown prior 'gama' (did you mean 'gamma'?)"),
    ("beta(a, 2)", "the arguments must be numbers"),
    ("normal(0, 0)", "sigma must be > 0"),
    ("uniform(2, 1)", "needs lower < upper"),
    ("beta(0, 2)", "arguments must be > 0"),
    ("lognormal 0.1 1", "is not a prior"),
])
def test_bad_prior_formula_is_named(text, fragment):
    with pytest.raises(InputError) as info:
        parse_prior(text, "s.yaml: priors.x")
    assert str(info.value).startswith("s.yaml: priors.x: ") and fragment in str(info.value)


@pytest.mark.parametrize("name, text, fragment", [
    ("efect.display.unaware->interested", "lognormal(0.1, 1)", "unknown parameter 'efect.display.unaware->interested' "
                                                               "(did you mean 'effect'?)"),
    ("effect.radio.unaware->interested", "lognormal(0.1, 1)", "unknown channel 'radio'"),
    ("effect.display.unaware->customer", "lognormal(0.1, 1)", "unaware->customer"),
    ("carryover.display", "lognormal(0.5, 1)", "a carry-over lies in (0, 1)"),
    ("saturation.word_of_mouth", "gamma(3, 1)", "unknown channel 'word_of_mouth'"),
    ("rate.interested->customer", "normal(1, 0.5)", "must be positive"),
    ("wom.rate", "lognormal(0, 1)", "needs median > 0"),
])
def test_bad_prior_entry_names_its_key(name, text, fragment):
    sc = load_scenario(TINY)
    with pytest.raises(InputError) as info:
        build_space(sc, {name: text})
    msg = str(info.value)
    assert f"priors.{name}" in msg and fragment in msg, msg


def test_good_priors_resolve():
    sc = load_scenario(TINY)
    space = build_space(sc)
    assert space.names == tuple(TINY["priors"])
    assert space.kinds == ("effect", "rate", "rate")
    draws = space.sample_prior(20_000, np.random.default_rng(0))
    # lognormal(median, sigma): the sample median is the stated median (within 3%)
    np.testing.assert_allclose(np.median(draws, axis=0), [0.003, 1.0, 1.0], rtol=0.03)
    with pytest.raises(InputError, match="unknown sampler 'nutpy' \\(did you mean 'nutpie'\\?\\)"):
        calibrate(sc, None, sampler="nutpy")
    with pytest.raises(InputError, match="target_accept must lie strictly between 0 and 1, got 1.2"):
        calibrate(sc, None, target_accept=1.2)


def test_fit_command_names_a_bad_scheduler(tiny, tmp_path, capsys):
    """A bad --scheduler is named as the user wrote it, before any work, and nothing is written."""
    _, path, csv = tiny
    out = tmp_path / "o"
    assert main(["fit", str(path), "--data", str(csv), "--method", "abc", "--scheduler", "bogus",
                 "--out", str(out), "--quiet"]) == 2
    assert "--scheduler: unknown executor 'bogus'" in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# the sampler's coordinates of lognormal parameters


def test_softplus_coordinates_round_trip_with_the_right_jacobian():
    import pytensor.tensor as pt

    from journeysim.inference.priors import SoftplusScaled

    tr = SoftplusScaled(0.002)
    x = np.geomspace(1e-9, 10.0, 41)  # from far below the scale (log-like) to far above it (linear)
    y = tr.forward(pt.as_tensor(x)).eval()
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(tr.backward(pt.as_tensor(y)).eval(), x, rtol=1e-12)
    h = 1e-6  # log |dx/dy| against central differences of the map itself
    fd = (tr.backward(pt.as_tensor(y + h)).eval() - tr.backward(pt.as_tensor(y - h)).eval()) / (2 * h)
    np.testing.assert_allclose(tr.log_jac_det(pt.as_tensor(y)).eval(), np.log(fd), rtol=1e-6, atol=1e-6)
    assert SoftplusScaled(0.002) == tr and hash(SoftplusScaled(0.002)) == hash(tr) and SoftplusScaled(0.003) != tr


def test_softplus_coordinates_give_the_same_model(tiny):
    # The density of the parameters themselves (jacobian=False: the value in each model's own
    # coordinates, mapped back) is the same in both: only the sampler's coordinates differ.
    sc, _, csv = tiny
    data = read_observed(csv, sc)
    models = {sp: build_model(sc, data, coords="softplus" if sp else "log") for sp in (True, False)}
    values = {"effect.display.unaware->interested": 0.0035, "rate.interested->customer": 1.2,
              "rate.customer->interested": 0.9, "noise_enquiries": 0.04, "noise_new_customers": 0.07}
    logps = {}
    for sp, model in models.items():
        point = {}
        for name, val in values.items():
            rv = model[name]
            value_var = model.rvs_to_values[rv]
            tr = model.rvs_to_transforms[rv]
            point[value_var.name] = np.asarray(tr.forward(val, *rv.owner.inputs).eval())
        if sp:
            assert "effect.display.unaware->interested_softplus__" in point
        logps[sp] = model.compile_logp(jacobian=False)(point)
    assert logps[True] == pytest.approx(logps[False], rel=1e-10)
    with pytest.raises(InputError, match="unknown coords 'softplux' \\(did you mean 'softplus'\\?\\)"):
        calibrate(sc, data, coords="softplux")
    with pytest.raises(InputError, match="unknown coords 'lg'"):  # (build_model itself, no lognormal needed)
        build_model(sc, data, coords="lg")
    # the CLI spells the choices out (it imports nothing heavy to build its parser): the same ones
    import argparse

    from journeysim.cli import fit as cli_fit, plan as cli_plan
    from journeysim.inference.priors import COORDS

    sub = argparse.ArgumentParser().add_subparsers()
    for register in (cli_fit.register, cli_plan.register):
        register(sub)
    for command in ("fit", "plan"):
        opt = next(a for a in sub.choices[command]._actions if "--coords" in a.option_strings)  # noqa: SLF001
        assert tuple(opt.choices) == COORDS


def test_backtest_command_end_to_end(tiny, tmp_path, capsys):
    """``journeysim backtest`` at a small size: 2 folds of 4 weeks, a table, a figure, summary.json with
    per-fold and pooled scores (coverage of held-back weeks between 0 and 1, finite CRPS)."""
    sc, path, csv = tiny
    out = tmp_path / "bt"
    code = main(["backtest", str(path), "--data", str(csv), "--folds", "2", "--horizon", "4", "--draws", "150",
                 "--tune", "150", "--chains", "2", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "fold 2/2" in text and "inside the 90% interval" in text
    s = json.loads((out / "summary.json").read_text())
    assert len(s["folds"]) == 2 and s["folds"][1]["train_weeks"] == s["folds"][0]["train_weeks"] + 4
    assert set(s["kpis"]) == {"enquiries", "new_customers"}
    for v in s["kpis"].values():
        assert v["weeks"] == 8 and 0.0 <= v["coverage_90"] <= 1.0 and np.isfinite(v["crps"]) and v["mape"] < 0.5
    assert (out / "backtest.png").read_bytes().startswith(PNG)


def test_backtest_refuses_folds_that_leave_too_few_weeks(tiny, tmp_path, capsys):
    sc, path, csv = tiny
    assert main(["backtest", str(path), "--data", str(csv), "--folds", "9", "--horizon", "8",
                 "--out", str(tmp_path / "bt")]) == 2
    err = capsys.readouterr().err
    assert "--folds" in err and "at least 8" in err and not (tmp_path / "bt").exists()
