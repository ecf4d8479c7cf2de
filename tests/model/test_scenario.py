"""Malformed scenario files: each is refused with an InputError naming where and what.

Every case is a small YAML file written to ``tmp_path``; the test checks that the message names
the file, the key path (or CSV row and column, or YAML line and column) and the problem, with a
did-you-mean hint where a name is misspelt. The command line prints the same message on stderr,
without a traceback, and exits 2.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, SCENARIOS

from journeysim.cli.main import main
from journeysim.errors import InputError
from journeysim.model.scenario import load_scenario

MARKET = "market: {population: 10000, agents: 1000, weeks: 4}\n"
TV = "channels:\n  tv: {cpm: 8.0, effects: {unaware->aware: 0.003}}\n"

#: name -> (YAML text, fragments the message must contain)
CASES: dict[str, tuple[str, list[str]]] = {
    "misspelt_top_level_key": (
        MARKET + "chanels: {}\n",
        ["(top level)", "unknown key 'chanels'", "did you mean 'channels'?"],
    ),
    "misspelt_nested_key": (
        MARKET + "channels:\n  tv: {cmp: 8.0}\n",
        ["channels.tv", "unknown key 'cmp'", "did you mean 'cpm'?"],
    ),
    "effect_on_a_non_transition": (
        MARKET + "channels:\n  tv: {cpm: 8.0, effects: {unaware->considering: 0.1}}\n",
        ["channels.tv.effects.unaware->considering", "is not a transition of this journey", "did you mean"],
    ),
    "effect_with_misspelt_stage": (
        MARKET + "channels:\n  tv: {cpm: 8.0, effects: {considering->purchasd: 0.1}}\n",
        ["channels.tv.effects.considering->purchasd", "unknown stage 'purchasd'", "did you mean 'purchased'?"],
    ),
    "unknown_stage_in_initial": (
        MARKET + "journey: {template: default, initial: {unaware: 0.5, awre: 0.5}}\n",
        ["journey.initial.awre", "unknown stage 'awre'", "did you mean 'aware'?"],
    ),
    "persona_shares_not_one": (
        MARKET + "personas: {a: {share: 0.5}, b: {share: 0.4}}\n",
        ["personas", "shares add up to 0.9, not 1"],
    ),
    "negative_spend": (
        MARKET + TV + "plan: {spend: {tv: [100, 100, -5, 100]}}\n",
        ["plan.spend", "'tv'", "-5", "week 3", "must be >= 0"],
    ),
    "plan_list_of_wrong_length": (
        MARKET + TV + "plan: {spend: {tv: [100, 100, 100]}}\n",
        ["plan.spend.tv", "3 weekly values", "horizon is 4 weeks"],
    ),
    "plan_for_unknown_channel": (
        MARKET + TV + "plan: {spend: {tvv: 100}}\n",
        ["plan.spend.tvv", "unknown channel 'tvv'", "did you mean 'tv'?"],
    ),
    "misspelt_fit_setting": (
        MARKET + "fit: {target_acept: 0.8}\n",
        ["fit", "unknown key 'target_acept'", "did you mean 'target_accept'?"],
    ),
    "fit_target_accept_out_of_range": (
        MARKET + "fit: {target_accept: 1.2}\n",
        ["fit.target_accept", "less than 1"],
    ),
    "fit_unknown_coords": (
        MARKET + "fit: {coords: softplux}\n",
        ["fit.coords", "'log' or 'softplus'"],
    ),
    "event_outside_horizon": (
        MARKET + "events: [{name: promo, weeks: [3, 6], multiply: {considering->purchased: 0.5}}]\n",
        ["events[0] (promo).weeks", "3..6", "not inside the horizon 1..4"],
    ),
    "channel_with_cpm_and_volume": (
        MARKET + "channels: {tv: {cpm: 8, volume: 100}}\n",
        ["channels.tv", "exactly one of 'cpm'", "'volume'"],
    ),
    "invalid_yaml_syntax": (
        "market:\n  population: 10000\n agents: 1000\n",
        ["line 3, column 2", "not valid YAML"],
    ),
    "duplicate_key": (
        "market:\n  population: 10000\n  agents: 1000\n  population: 20000\n",
        ["line 4, column 3", "the key 'population' is given twice (first on line 2)"],
    ),
    "duplicate_channel": (
        MARKET + "channels:\n  tv: {cpm: 8}\n  tv: {cpm: 9}\n",
        ["the key 'tv' is given twice"],
    ),
    "list_instead_of_mapping": (
        "- market\n- channels\n",
        ["must be a mapping", "found list"],
    ),
    "more_agents_than_people": (
        "market: {population: 1000, agents: 5000, weeks: 4}\n",
        ["market", "agents (5000) cannot exceed population (1000)"],
    ),
    "misspelt_template": (
        MARKET + "journey: {template: defualt}\n",
        ["journey.template", "unknown journey template 'defualt'", "did you mean 'default'?"],
    ),
    "missing_market": (
        "channels: {}\n",
        ["market", "required key is missing"],
    ),
    "non_integer_weeks": (
        "market: {population: 10000, agents: 1000, weeks: four}\n",
        ["market.weeks", "valid integer"],
    ),
    "targeting_unknown_stage": (
        MARKET + "channels: {tv: {cpm: 8, targeting: {stages: {considring: 1}}}}\n",
        ["channels.tv.targeting.stages.considring", "unknown stage", "did you mean 'considering'?"],
    ),
}

#: Plan CSVs referred to by a scenario: name -> (CSV text, fragments)
CSV_CASES: dict[str, tuple[str, list[str]]] = {
    "csv_missing_week": (
        "date,spend_tv\n2024-01-01,10\n2024-01-08,10\n2024-01-22,10\n2024-01-29,10\n",
        ["row 4, column date", "2024-01-22", "missing or out-of-order week"],
    ),
    "csv_non_numeric": (
        "week,spend_tv\n1,10\n2,ten\n3,10\n4,10\n",
        ["row 3, column spend_tv", "'ten'", "not a non-negative number"],
    ),
    "csv_too_short": (
        "week,spend_tv\n1,10\n2,10\n",
        ["plan.csv", "covers 2 weeks", "horizon is 4 weeks"],
    ),
    "csv_unknown_channel": (
        "week,spend_tv,spend_radio\n1,10,1\n2,10,1\n3,10,1\n4,10,1\n",
        ["unknown channel 'radio'", "channels are tv"],
    ),
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_there_are_enough_cases():
    assert len(CASES) + len(CSV_CASES) >= 15


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_scenario_names_key_and_problem(tmp_path, name):
    text, fragments = CASES[name]
    path = write(tmp_path, name, text)
    with pytest.raises(InputError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg  # the file comes first
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    assert "\n" not in msg.strip() or "problems" in msg  # one problem, one line


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_malformed_plan_csv_names_row_and_column(tmp_path, name):
    csv_text, fragments = CSV_CASES[name]
    (tmp_path / "plan.csv").write_text(csv_text)
    path = write(tmp_path, name, MARKET + TV + "plan: {csv: plan.csv}\n")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert "plan.csv" in msg
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"


def test_well_formed_plan_csv_is_read(tmp_path):
    (tmp_path / "plan.csv").write_text("date,spend_tv\n2024-01-01,10\n2024-01-08,20\n2024-01-15,30\n2024-01-22,40\n")
    sc = load_scenario(write(tmp_path, "ok", MARKET + TV + "plan: {csv: plan.csv}\n"))
    assert sc.plan.spend[:, 0].tolist() == [10, 20, 30, 40]


def test_several_problems_are_listed_together(tmp_path):
    """Problems in separate sections are reported together, one per line."""
    path = write(tmp_path, "two", "market: {population: 10000, agents: 1000, weeks: 4, sede: 3}\n"
                                  "channels: {tv: {cmp: 8}}\n")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert "2 problems" in msg
    assert "\n  market: unknown key 'sede' (did you mean 'seed'?)" in msg
    assert "\n  channels.tv: unknown key 'cmp' (did you mean 'cpm'?)" in msg


def test_shorter_horizon_keeps_events_inside_it():
    """``weeks=`` shortens a scenario: events after the new horizon drop out, events across it are cut."""
    sc = load_scenario(SCENARIOS / "retail.yaml", agents=1_000, weeks=26)
    assert sc.weeks == 26
    assert sc.structure.edge_multiplier.shape[0] == 26


# ---------------------------------------------------------------------------------------------
# the validate command


@pytest.mark.parametrize("name", ["misspelt_nested_key", "invalid_yaml_syntax", "persona_shares_not_one"])
def test_validate_bad_file_exits_2_with_message(tmp_path, capsys, name):
    text, fragments = CASES[name]
    path = write(tmp_path, name, text)
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("journeysim validate: error: ")
    for f in fragments:
        assert f in err
    assert "Traceback" not in err


def test_validate_console_script_prints_no_traceback(tmp_path):
    path = write(tmp_path, "bad", CASES["misspelt_top_level_key"][0])
    proc = subprocess.run([sys.executable, "-m", "journeysim.cli.main", "validate", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "did you mean 'channels'?" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_validate_missing_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: file not found" in capsys.readouterr().err


@pytest.mark.parametrize("name", EXAMPLES)
def test_validate_examples_exit_0(capsys, name):
    path = SCENARIOS / f"{name}.yaml"
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "valid scenario" in out
    assert err == ""
