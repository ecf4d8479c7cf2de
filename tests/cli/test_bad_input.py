"""The regression corpus of issue 19: bad input never gets through.

Every case runs the command line as a user would and asserts the checked boundary's contract:
exit status 2, a message naming the file and key (or row, column, flag), no traceback, nothing
written, and no sampling (``calibrate`` is replaced by a function that fails the test if called).
The valid cases at the end (a byte-order mark, CRLF line ends, unicode names, fractional path
counts) must keep working.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np
import pytest
from conftest import SCENARIOS

from journeysim.cli.main import main

SHOP = SCENARIOS / "shop.yaml"


# --------------------------------------------------------------------------------------------
# helpers


def run(argv, capsys) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``journeysim ARGV`` (argparse's own exits included)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def refused(argv, capsys, *where, verb: str | None = None) -> str:
    """Assert ``argv`` is refused by the boundary; return the message."""
    code, out, err = run(argv, capsys)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    verb = verb or argv[0]
    lines = [x for x in err.strip().splitlines() if x.strip() and not x.startswith("usage:")
             and not x.startswith(" ")]
    assert len(lines) == 1, err  # one line (argparse's usage lines aside)
    assert lines[0].startswith(f"journeysim {verb}: error:"), err
    for w in where:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture(autouse=True)
def no_sampling(monkeypatch):
    """Fail any test of this module that gets as far as sampling."""
    import journeysim.inference.sampling as sampling

    def calibrate(*a, **k):
        raise AssertionError("sampling started: the input should have been refused before")

    monkeypatch.setattr(sampling, "calibrate", calibrate)


@pytest.fixture
def shop(tmp_path):
    """A copy of the shop example (scenario, data, plans, plan CSV) to break."""
    d = tmp_path / "shop"
    (d / "data").mkdir(parents=True)
    (d / "plans").mkdir()
    shutil.copy(SHOP, d / "shop.yaml")
    shutil.copy(SCENARIOS / "shop_plan.csv", d / "shop_plan.csv")
    shutil.copy(SCENARIOS / "data" / "shop_observed.csv", d / "data" / "shop_observed.csv")
    for p in (SCENARIOS / "plans").glob("shop_*.yaml"):
        shutil.copy(p, d / "plans" / p.name)
    return d


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def nothing_written(tmp_path, out) -> None:
    assert not out.exists()
    assert not [f for f in os.listdir(tmp_path) if f.endswith((".tmp", ".partial"))]


@pytest.fixture
def fit_dir(tmp_path):
    """A converged 'fit' of the shop example without sampling (the scenario's own parameters, jittered)."""
    from journeysim.inference.posterior import known_fit
    from journeysim.model.scenario import load_scenario

    sc = load_scenario(SHOP)
    fit = known_fit(sc, draws=30, spread=0.05, seed=1)
    d = tmp_path / "fit"
    fit.save(d)
    return d


# --------------------------------------------------------------------------------------------
# NaN and infinity where a number goes; what `validate` did not look at


SCENARIO_CASES = {
    "NaN effect": ("effects: {unaware->interested: 0.004}", "effects: {unaware->interested: .nan}",
                   "channels.display.effects.unaware->interested", "finite"),
    "NaN base rate": ("  initial: {unaware: 0.85", "  rates: {unaware->interested: .nan}\n  initial: {unaware: 0.85",
                      "journey.rates.unaware->interested", "finite"),
    "NaN event multiplier": ("plan:\n", "events:\n  - {name: promo, weeks: 3, multiply: {unaware->interested: .nan}}\n"
                             "plan:\n", "events.0.multiply.unaware->interested", "finite"),
    "NaN stage share": ("initial: {unaware: 0.85", "initial: {unaware: .nan", "journey.initial.unaware", "finite"),
    "NaN prior parameter": ("lognormal(0.003, 1.0)", "lognormal(nan, 1.0)",
                            "priors.effect.display.unaware->interested", "finite"),
    "infinite population": ("population: 300_000", "population: .inf", "market.population", "finite"),
    "infinite volume": ("volume: 20_000", "volume: .inf", "channels.newsletter.volume", "finite"),
    "infinite value": ("value: 80.0", "value: .inf", "personas.everyone.value", "finite"),
    "infinite observation scale": ("scale: 0.3", "scale: .inf", "observations.0.scale", "finite"),
    "misspelt prior parameter": ("effect.display.unaware->interested:", "effect.display.unaware->intrested:",
                                 "priors.effect.display.unaware->intrested", "did you mean"),
    "unknown prior distribution": ("lognormal(0.004, 1.0)", "lognorml(0.004, 1.0)",
                                   "priors.effect.social.unaware->interested", "unknown prior 'lognorml'"),
    "negative sigma": ("lognormal(0.05, 1.0)", "lognormal(0.05, -1.0)",
                       "priors.effect.search.interested->customer", "sigma > 0"),
    "observation of an unknown stage": ("stages: [interested]\n    scale", "stages: [intrested]\n    scale",
                                        "observations[0].stages", "did you mean 'interested'"),
    "share without sample size": ("observations:\n", "observations:\n  - {column: interest, measures: share, "
                                  "stages: [interested]}\n", "observations[0]", "sample_size"),
    "missing data file": ("data: data/shop_observed.csv", "data: data/nope.csv", ": data", "nope.csv"),
    "missing plan file": ("plans/shop_social_up.yaml", "plans/nope.yaml", "plans[1]", "not found"),
    "10^12 agents": ("population: 300_000\n  agents: 30_000", "population: 1.0e13\n  agents: 1_000_000_000_000",
                     "market.agents", "100000000"),
}


@pytest.mark.parametrize("case", list(SCENARIO_CASES))
def test_validate_refuses(case, shop, capsys):
    old, new, key, words = SCENARIO_CASES[case]
    f = shop / "shop.yaml"
    edit(f, old, new)
    refused(["validate", f], capsys, str(f), key, words)


@pytest.mark.parametrize("case", ["NaN effect", "NaN base rate", "NaN event multiplier", "infinite population",
                                  "10^12 agents"])
def test_run_refuses_before_simulating(case, shop, tmp_path, capsys):
    old, new, key, words = SCENARIO_CASES[case]
    f = shop / "shop.yaml"
    edit(f, old, new)
    out = tmp_path / "out"
    refused(["run", f, "--engine", "twin", "--out", out, "--quiet"], capsys, str(f), key)
    nothing_written(tmp_path, out)


def test_fit_refuses_a_misspelt_prior_before_sampling(shop, tmp_path, capsys):
    f = shop / "shop.yaml"
    edit(f, "lognormal(0.003, 1.0)", "lognormal(0.003, sigma=1.0)")
    out = tmp_path / "out"
    refused(["fit", f, "--out", out, "--quiet"], capsys, str(f), "priors.effect.display")
    nothing_written(tmp_path, out)


def test_validate_data_checks_a_csv_against_the_scenario(shop, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    text = (shop / "data" / "shop_observed.csv").read_text().splitlines()
    text[5] = text[5].replace(text[5].split(",")[4], "lots", 1)
    bad.write_text("\n".join(text) + "\n")
    refused(["validate", shop / "shop.yaml", "--data", bad], capsys, str(bad), "row 6", "site_visits", "'lots'")
    code, out, _ = run(["validate", shop / "shop.yaml", "--data", shop / "data" / "shop_observed.csv"], capsys)
    assert code == 0 and "valid scenario" in out and "39 weeks" in out


# --------------------------------------------------------------------------------------------
# fit and forecast


def test_fit_refuses_spend_of_an_owned_channel_naming_the_file(shop, tmp_path, capsys):
    csv = shop / "data" / "shop_observed.csv"
    lines = csv.read_text().splitlines()
    lines = [lines[0] + ",spend_newsletter"] + [x + ",100" for x in lines[1:]]
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    refused(["fit", shop / "shop.yaml", "--out", out, "--quiet"], capsys, str(csv), "spend_newsletter", "owned")
    nothing_written(tmp_path, out)


def test_forecast_refuses_an_unknown_metric_before_writing(shop, fit_dir, tmp_path, capsys):
    out = tmp_path / "out"
    refused(["forecast", shop / "shop.yaml", "--posterior", fit_dir, "--metric", "happiness", "--out", out],
            capsys, "--metric", "happiness")
    nothing_written(tmp_path, out)


def test_forecast_refuses_a_one_chain_fit(shop, tmp_path, capsys):
    from journeysim.inference.posterior import known_fit
    from journeysim.model.scenario import load_scenario

    fit = known_fit(load_scenario(SHOP), draws=30, spread=0.05)
    fit = dataclasses.replace(fit, converged=False, info={**fit.info, "method": "nuts", "chains": 1,
                                                          "max_rhat": float("nan"), "min_ess_bulk": 30.0})
    d = tmp_path / "fit1"
    fit.save(d)
    out = tmp_path / "out"
    refused(["forecast", shop / "shop.yaml", "--posterior", d, "--out", out], capsys, str(d), "r-hat is undefined",
            "1 chain")
    nothing_written(tmp_path, out)


@pytest.mark.parametrize("argv, flag", [
    (["run", SHOP, "--agents", "-5"], "--agents"),
    (["run", SHOP, "--log-agents", "-7"], "--log-agents"),
    (["run", SHOP, "--log-agents", "0"], "--log-agents"),
    (["run", SHOP, "--weeks", "100000"], "--weeks"),
    (["run", SHOP, "--agents", "1000000000000"], "--agents"),
    (["fit", SHOP, "--target-accept", "1.5"], "--target-accept"),
    (["fit", SHOP, "--target-accept", "nan"], "--target-accept"),
    (["forecast", SHOP, "--posterior", "x", "--draws", "0"], "--draws"),
    (["forecast", SHOP, "--posterior", "x", "--horizon", "0"], "--horizon"),
    (["forecast", SHOP, "--posterior", "x", "--tail", "-1"], "--tail"),
    (["forecast", SHOP, "--posterior", "x", "--agents", "-5"], "--agents"),
    (["optimize", SHOP, "--posterior", "x", "--budget", "1000", "--search-draws", "0"], "--search-draws"),
    (["optimize", SHOP, "--posterior", "x", "--budget", "-1"], "--budget"),
    (["optimize", SHOP, "--posterior", "x", "--budget", "inf"], "--budget"),
    (["plan", SHOP, "--fit-draws", "0"], "--fit-draws"),
    (["attribute", "p.csv", "--permutations", "0"], "--permutations"),
])
def test_bad_flags_are_refused_by_argparse(argv, flag, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(argv + ["--out", out], capsys)
    assert code == 2 and f"argument {flag}" in err and "Traceback" not in err
    nothing_written(tmp_path, out)


@pytest.mark.parametrize("verb", ["run", "fit", "forecast", "attribute", "backtest"])
def test_out_that_is_a_file_is_refused_first(verb, shop, fit_dir, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("mine\n")
    extra = {"forecast": ["--posterior", fit_dir], "attribute": []}.get(verb, [])
    first = tmp_path / "paths.csv" if verb == "attribute" else shop / "shop.yaml"
    for out in (taken, taken / "below"):
        refused([verb, first, *extra, "--out", out], capsys, str(out), "--out")
    assert taken.read_text() == "mine\n"


def test_forecast_refuses_an_implausible_plan(shop, fit_dir, tmp_path, capsys):
    plan = tmp_path / "huge.yaml"
    plan.write_text("name: huge\nweekly: {display: 1.0e15, social: 1000, search: 1000}\n")
    out = tmp_path / "out"
    refused(["forecast", shop / "shop.yaml", "--posterior", fit_dir, "--plan", plan, "--out", out],
            capsys, str(plan), "display", "week 1")
    nothing_written(tmp_path, out)


def test_forecast_with_shorter_data_than_the_fit_warns(shop, tmp_path, capsys):
    from journeysim.inference.posterior import known_fit
    from journeysim.model.scenario import load_scenario

    fit = known_fit(load_scenario(SHOP), draws=20, spread=0.05)
    fit = dataclasses.replace(fit, info={**fit.info, "method": "nuts", "weeks": 39, "first_week": "2025-01-06",
                                         "data_file": "data/shop_observed.csv"})
    d = tmp_path / "fitw"
    fit.save(d)
    short = tmp_path / "short.csv"
    short.write_text("\n".join((shop / "data" / "shop_observed.csv").read_text().splitlines()[:31]) + "\n")
    out = tmp_path / "out"
    code, stdout, err = run(["forecast", shop / "shop.yaml", "--posterior", d, "--data", short, "--out", out,
                             "--draws", "10"], capsys)
    assert code == 0, err
    assert "30 weeks" in err and "calibrated on 39 weeks" in err
    import json

    assert any("calibrated on 39 weeks" in w for w in json.loads((out / "summary.json").read_text())["warnings"])


def test_forecast_failure_after_work_started_leaves_nothing(shop, fit_dir, tmp_path, capsys, monkeypatch):
    import journeysim.plots.planning

    def broken(*a, **k):
        raise RuntimeError("cannot draw")

    monkeypatch.setattr(journeysim.plots.planning, "plot_comparison", broken)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="cannot draw"):
        main(["forecast", str(shop / "shop.yaml"), "--posterior", str(fit_dir), "--out", str(out), "--draws", "10",
              "--quiet"])
    nothing_written(tmp_path, out)


# --------------------------------------------------------------------------------------------
# data that can be read but cannot support a fit: warnings before sampling, and in the summary


def _observed(shop, rows: int | None = None, **columns):
    import pandas as pd

    csv = shop / "data" / "shop_observed.csv"
    df = pd.read_csv(csv)
    if rows is not None:
        df = df.iloc[:rows]
    for k, v in columns.items():
        df[k] = v
    df.to_csv(csv, index=False)
    return csv


@pytest.mark.parametrize("change, words", [
    (dict(rows=2), "only 2 weeks of data for 4 uncertain parameters"),
    (dict(new_customers=0), "column new_customers (observations[1]) is 0 in every observed week"),
    (dict(new_customers=np.nan), "column new_customers (observations[1]) has no observed week"),
    (dict(spend_social=0.0), "'social' never spent"),
    (dict(spend_search=1500.0), "spend_search: spend never varies"),
])
def test_fit_warns_before_sampling_about_data_that_cannot_support_it(change, words, shop, tmp_path, capsys):
    _observed(shop, **change)
    out = tmp_path / "out"
    with pytest.raises(AssertionError, match="sampling started"):  # (the warning comes first, then sampling)
        main(["fit", str(shop / "shop.yaml"), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert f"warning: {shop / 'data' / 'shop_observed.csv'}" in err and words in err
    nothing_written(tmp_path, out)
    code, stdout, _ = run(["validate", shop / "shop.yaml"], capsys)
    assert code == 0 and words in stdout


def test_fit_on_one_week_is_refused(shop, tmp_path, capsys):
    csv = _observed(shop, rows=1)
    refused(["fit", shop / "shop.yaml", "--out", tmp_path / "out"], capsys, str(csv), "1 week of data")


# --------------------------------------------------------------------------------------------
# path tables


HEADER = "path,total_conversions,total_null\n"


@pytest.mark.parametrize("body, sep", [
    ("tv -> search,3,10\nsearch,1,4\n", None),
    ("tv|search,3,10\nsearch,1,4\n", None),
    ('"tv,search",3,10\nsearch,1,4\n', None),
    ("tv > search,3,10\nsearch,1,4\n", None),
    ("tv -> search,3,10\nsearch,1,4\n", "->"),
])
def test_path_separators_are_detected_or_declared(body, sep, tmp_path, capsys):
    import json

    csv = tmp_path / "paths.csv"
    csv.write_text(HEADER + body)
    out = tmp_path / "out"
    code, _, err = run(["attribute", csv, "--out", out, "--methods", "last", "--quiet"]
                       + ([f"--sep={sep}"] if sep else []), capsys)  # ('--sep ->' would read '->' as a flag)
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())
    assert s["credit"]["last"] == {"tv": 0.0, "search": 4.0}


@pytest.mark.parametrize("body, sep, where", [
    ("tv > search,3,10\ndisplay|search,1,4\n", None, "line 3"),
    ("display -> search,3,10\n", ">", "line 2"),
    ("tv > search,0,0\nsearch,0,0\n", None, "column total_conversions"),
    ("tv > search,0,10\nsearch,0,4\n", None, "column total_conversions"),
    ("", None, "no data rows"),
    ("tv > search,3,10\n", "=>", "--sep"),
])
def test_bad_path_tables_are_refused_naming_the_line(body, sep, where, tmp_path, capsys):
    csv = tmp_path / "paths.csv"
    csv.write_text(HEADER + body)
    out = tmp_path / "out"
    refused(["attribute", csv, "--out", out, "--quiet"] + (["--sep", sep] if sep else []), capsys, where)
    nothing_written(tmp_path, out)


# --------------------------------------------------------------------------------------------
# valid input that must keep working


def test_bom_and_crlf_and_unicode_names_still_work(tmp_path, capsys):
    scenario = (
        "name: café\r\nmarket: {population: 10000, agents: 500, weeks: 6}\r\njourney: funnel3\r\n"
        "personas: {Ünïcode: {share: 1.0, value: 5}}\r\n"
        "channels:\r\n  télé: {cpm: 5, effects: {unaware->interested: 0.01}}\r\n"
        "data: obs.csv\r\n"
        "observations:\r\n  - {column: visites, measures: entries, stages: [interested]}\r\n"
    )
    (tmp_path / "s.yaml").write_bytes(b"\xef\xbb\xbf" + scenario.encode())
    rows = ["date,spend_télé,visites"] + [f"2024-01-{1 + 7 * i:02d},{100 * (i + 1)},{10 + i}" for i in range(5)]
    (tmp_path / "obs.csv").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")
    code, out, err = run(["validate", tmp_path / "s.yaml"], capsys)
    assert code == 0, err
    assert "télé" in out and "5 weeks" in out
    code, _, err = run(["run", tmp_path / "s.yaml", "--engine", "twin", "--out", tmp_path / "o", "--quiet"], capsys)
    assert code == 0, err


def test_fractional_path_counts_with_crlf_and_bom_still_work(tmp_path, capsys):
    import json

    csv = tmp_path / "paths.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + (HEADER + "télé > e-mail,2.5,10.25\ne-mail,1.5,4\n").replace("\n", "\r\n")
                    .encode())
    out = tmp_path / "out"
    code, _, err = run(["attribute", csv, "--out", out, "--methods", "last", "--quiet"], capsys)
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text())["credit"]["last"] == {"télé": 0.0, "e-mail": 4.0}


# --------------------------------------------------------------------------------------------
# a fit that fails after sampling leaves nothing; its summary keeps the data warnings


def _fake_calibrate(monkeypatch):
    """``calibrate`` replaced by the scenario's own parameters (no sampling), with the info a fit records."""
    import journeysim.inference.sampling as sampling
    from journeysim.inference.posterior import known_fit

    def calibrate(sc, data, **kw):
        fit = known_fit(sc, draws=20, spread=0.05, seed=3)
        return dataclasses.replace(fit, info={**fit.info, "method": "nuts", "seed": 0, "seconds": 0.0, "max_rhat": 1.0,
                                              "min_ess_bulk": 400.0, "divergences": 0, "weeks": data.weeks})

    monkeypatch.setattr(sampling, "calibrate", calibrate)


def test_fit_failing_after_sampling_leaves_no_output(shop, tmp_path, capsys, monkeypatch):
    import journeysim.inference.checks

    _fake_calibrate(monkeypatch)

    def broken(*a, **k):
        raise RuntimeError("posterior predictive failed")

    monkeypatch.setattr(journeysim.inference.checks, "posterior_predictive", broken)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="posterior predictive failed"):
        main(["fit", str(shop / "shop.yaml"), "--out", str(out), "--quiet"])
    nothing_written(tmp_path, out)


def test_fit_summary_keeps_the_data_warnings(shop, tmp_path, capsys, monkeypatch):
    import json

    _fake_calibrate(monkeypatch)
    _observed(shop, spend_social=0.0)
    out = tmp_path / "out"
    code, stdout, err = run(["fit", shop / "shop.yaml", "--out", out], capsys)
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())
    assert any("'social' never spent" in w for w in s["data_warnings"])
    assert any("'social' never spent" in w for w in s["warnings"])
    assert "warning:" in err and "'social' never spent" in stdout
    assert sorted(os.listdir(out)) == ["decomposition.png", "diagnostics.csv", "fit.json", "posterior.nc", "ppc.png",
                                       "summary.json"]


def test_optimize_refuses_an_implausible_budget_before_work(shop, fit_dir, tmp_path, capsys):
    out = tmp_path / "out"
    refused(["optimize", shop / "shop.yaml", "--posterior", fit_dir, "--budget", "1e15", "--out", out],
            capsys, "--budget", "a week")
    nothing_written(tmp_path, out)


def test_out_that_cannot_be_written_is_refused_first(shop, tmp_path, capsys, monkeypatch):
    import journeysim.cli._args

    # (the tests may run as root, for whom every directory is writable: pretend this one is not)
    monkeypatch.setattr(journeysim.cli._args.os, "access", lambda path, mode: False)
    out = tmp_path / "locked" / "out"
    refused(["fit", shop / "shop.yaml", "--out", out], capsys, "--out", "permission denied")
    nothing_written(tmp_path, out)


def test_attribute_failing_while_plotting_leaves_nothing(tmp_path, capsys, monkeypatch):
    import journeysim.plots.attribution

    def broken(*a, **k):
        raise RuntimeError("cannot draw")

    monkeypatch.setattr(journeysim.plots.attribution, "plot_comparison", broken)
    csv = tmp_path / "paths.csv"
    csv.write_text(HEADER + "tv > search,3,10\nsearch,1,4\n")
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="cannot draw"):
        main(["attribute", str(csv), "--out", str(out), "--quiet"])
    nothing_written(tmp_path, out)
