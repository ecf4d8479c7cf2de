"""``journeysim check`` (the prior predictive check) flags a mis-scaled scenario, and ``fit`` stops on it."""

from __future__ import annotations

import json

import yaml
from conftest import SCENARIOS

from journeysim.cli.main import main


def _misscaled(tmp_path, factor=8.0):
    raw = yaml.safe_load((SCENARIOS / "shop.yaml").read_text())
    raw["plan"] = {"csv": str(SCENARIOS / "shop_plan.csv")}
    raw["data"] = str(SCENARIOS / "data" / "shop_observed.csv")
    raw.pop("plans")
    raw["observations"][0]["scale"] *= factor  # site visits tracked at 8x the right rate: 8x too many
    path = tmp_path / "misscaled.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_check_passes_the_shipped_example(tmp_path):
    out = tmp_path / "ok"
    assert main(["check", str(SCENARIOS / "shop.yaml"), "--draws", "40", "--out", str(out), "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["warnings"] == []
    assert 0.5 < s["kpis"]["site_visits"]["ratio"] < 2 and s["kpis"]["new_customers"]["inside_90"] > 0.9


def test_check_flags_a_misscaled_scenario(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["check", str(_misscaled(tmp_path)), "--draws", "40", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert len(s["warnings"]) == 1 and s["warnings"][0].startswith("site_visits: the scenario's level is")
    assert 6 < s["kpis"]["site_visits"]["ratio"] < 10
    assert "warning: site_visits" in capsys.readouterr().out


def test_fit_stops_before_sampling_on_a_scenario_far_from_its_data(tmp_path, capsys):
    out = tmp_path / "fit"
    rc = main(["fit", str(_misscaled(tmp_path)), "--draws", "10", "--tune", "10", "--chains", "1", "--out", str(out),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "far from its data" in err and "--no-check" in err and "site_visits" in err
    assert not out.exists()
