"""``journeysim init``: from a weekly CSV to a valid scenario whose twin matches the observed levels."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import REPO, SCENARIOS

from journeysim.cli.main import main
from journeysim.model.scenario import load_scenario

CSVS = [(SCENARIOS / "data" / "shop_observed.csv", 300_000), (SCENARIOS / "data" / "retail_observed.csv", 2_000_000),
        (SCENARIOS / "data" / "subscription_observed.csv", 1_000_000),
        (SCENARIOS / "data" / "funnel3_observed.csv", 500_000),
        (SCENARIOS / "data" / "funnel3_demand_observed.csv", 200_000),
        (REPO / "experiments" / "data" / "robyn_observed.csv", 5_000_000),
        (REPO / "experiments" / "data" / "meridian_funnel_observed.csv", 300_000_000)]


@pytest.mark.parametrize("csv, population", CSVS, ids=[c.stem for c, _ in CSVS])
def test_init_writes_a_valid_scenario_at_the_observed_levels(tmp_path, csv, population):
    """Every shipped and real-data CSV: a scenario that validates, whose twin is within 10% of every
    KPI's observed mean level, and whose prior predictive check finds nothing far from the data."""
    out = tmp_path / "scenario.yaml"
    assert main(["init", "--data", str(csv), "--population", str(population), "--out", str(out), "--quiet"]) == 0
    text = out.read_text()
    assert text.startswith("# Written by journeysim init") and "priors:" in text
    sc = load_scenario(out)
    assert sc.spec.priors  # the default priors, written out
    assert main(["validate", str(out)]) == 0
    for line in text.splitlines():
        if line.startswith("#   ") and "observed" in line:
            ratio = float(line.rsplit("(", 1)[1].rstrip("x)"))
            assert 0.9 <= ratio <= 1.1, line
    chk = tmp_path / "check"
    assert main(["check", str(out), "--draws", "40", "--out", str(chk), "--quiet"]) == 0
    assert json.loads((chk / "summary.json").read_text())["warnings"] == []


def test_init_names_what_it_cannot_use(tmp_path, capsys):
    df = pd.read_csv(SCENARIOS / "data" / "shop_observed.csv")
    df["weather"] = 1.0
    df["promo_flag"] = (df.index % 5 == 0).astype(float)
    df.to_csv(tmp_path / "brand.csv", index=False)
    out = tmp_path / "brand.yaml"
    assert main(["init", "--data", str(tmp_path / "brand.csv"), "--population", "300000", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "not used: weather" in printed
    assert "Columns not used: weather" in out.read_text()


@pytest.mark.parametrize("args, words", [
    (["--population", "-5"], "--population"),
    (["--journey", "funnel3"], "default journey"),
    (["--data", "nowhere.csv"], "file not found"),
])
def test_init_refuses_what_it_cannot_do(tmp_path, capsys, args, words):
    base = {"--data": str(SCENARIOS / "data" / "shop_observed.csv"), "--population": "300000",
            "--out": str(tmp_path / "s.yaml")}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    argv = ["init"] + [x for kv in base.items() for x in kv]
    rc = main(argv) if "-5" not in args else None
    if rc is None:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        rc = exc.value.code
    assert rc == 2 and words in capsys.readouterr().err
    assert not (tmp_path / "s.yaml").exists()


def test_init_does_not_overwrite(tmp_path, capsys):
    out = tmp_path / "s.yaml"
    out.write_text("mine")
    assert main(["init", "--data", str(SCENARIOS / "data" / "shop_observed.csv"), "--population", "300000",
                 "--out", str(out)]) == 2
    assert out.read_text() == "mine" and "exists already" in capsys.readouterr().err


@pytest.mark.slow
def test_from_a_csv_to_a_report_in_two_commands(tmp_path):
    """The README's second example on the shop CSV: ``init`` then ``plan`` with every default. The
    fit converges (r-hat <= 1.01, bulk ESS >= 100 per chain, no divergences; a second run when
    needed), and the forecast and the report are written. About 2 minutes on two cores."""
    csv = SCENARIOS / "data" / "shop_observed.csv"
    sc = tmp_path / "brand.yaml"
    assert main(["init", "--data", str(csv), "--population", "300000", "--out", str(sc), "--quiet"]) == 0
    out = tmp_path / "brand"
    assert main(["plan", str(sc), "--out", str(out), "--quiet"]) == 0
    fit = json.loads((out / "fit" / "fit.json").read_text())
    assert fit["converged"] and fit["max_rhat"] <= 1.01 and fit["divergences"] == 0
    assert (out / "report.html").exists() and (out / "summary.json").exists()
